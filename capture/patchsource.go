package capture

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/model/arch"
	"github.com/attnscope/attnscope/store"
)

// RunSource reads the activations a patch edit copies from sample id of the
// run folder dir ("" when the run has one sample), captured earlier from a
// model of config cfg: the attention (attn.hook_pattern), with --hidden the
// embedding and residual stream (hook_resid_pre, hook_resid_post), with --qkv
// the queries, keys and values (keys and values back to cfg.KVHeads heads).
// It returns them with the sample's token count; a tensor whose shape is not
// the model's for that count is an error naming its file. The returned
// errors are *model.EditError for edit index i (fields source_run,
// source_sample).
func RunSource(dir, id string, cfg *arch.Config, i int) (model.Activations, int, error) {
	bad := func(field, format string, args ...any) error {
		return &model.EditError{Index: i, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	run, err := store.Open(dir)
	if err != nil {
		return nil, 0, bad("source_run", "%v", err)
	}
	ids, err := run.Samples()
	if err != nil {
		return nil, 0, bad("source_run", "%v", err)
	}
	switch {
	case id == "" && len(ids) != 1:
		return nil, 0, bad("source_run", "run %s has %d finished samples; name one with source_sample", dir, len(ids))
	case id == "":
		id = ids[0]
	case !slices.Contains(ids, id):
		return nil, 0, bad("source_sample", "run %s has no finished sample %q (its samples: %s)", dir, id, strings.Join(ids, ", "))
	}
	if s, err := run.Sample(id); err == nil && s.QK != nil {
		return nil, 0, bad("source_run", "sample %q of run %s was captured with --store qk, which keeps no attention pattern to patch", id, dir)
	}
	acts := model.Activations{}
	n := -1
	for _, file := range []string{run.AttentionPath(id), run.HiddenPath(id), run.QKVPath(id)} {
		if err := readSource(file, cfg, acts, &n); err != nil {
			return nil, 0, bad("source_run", "%v", err)
		}
	}
	return acts, n, nil
}

// readSource adds the tensors of one sample file (absent: none) to acts,
// checking their shapes against cfg at the sample's token count *n (set by
// the first tensor read).
func readSource(path string, cfg *arch.Config, acts model.Activations, n *int) error {
	st, err := checkpoint.OpenSafetensors(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer st.Close()
	for _, name := range st.Names() {
		if name == store.FinalNormName {
			continue
		}
		data, shape, err := st.Float32(name)
		if err != nil {
			return err
		}
		if *n < 0 && len(shape) >= 2 {
			*n = shape[len(shape)-2]
		}
		want := sourceShape(name, cfg, *n)
		if want == nil {
			continue // a tensor no hook patches
		}
		if !slices.Equal(shape, want) {
			return fmt.Errorf("%s holds %s of shape %v, the model's at the sample's %d tokens is %v (a run of another model?)", filepath.Clean(path), name, shape, *n, want)
		}
		if (strings.HasSuffix(name, ".attn.hook_k") || strings.HasSuffix(name, ".attn.hook_v")) && cfg.KVHeads < cfg.Heads {
			// The store repeats each kv head for its query heads (repeat_kv).
			g, size := cfg.Heads/cfg.KVHeads, *n*cfg.HeadDim
			kv := make([]float32, 0, cfg.KVHeads*size)
			for j := range cfg.KVHeads {
				kv = append(kv, data[j*g*size:(j*g+1)*size]...)
			}
			data, shape = kv, []int{cfg.KVHeads, *n, cfg.HeadDim}
		}
		acts[name] = model.Activation{Shape: shape, Data: data}
	}
	return nil
}

// sourceShape is the stored shape of tensor name for n tokens (nil: not a
// patch source).
func sourceShape(name string, cfg *arch.Config, n int) []int {
	switch {
	case name == store.EmbedName || strings.HasSuffix(name, ".hook_resid_post"):
		return []int{n, cfg.Hidden}
	case strings.HasSuffix(name, ".attn.pattern"):
		return []int{cfg.Heads, n, n}
	case strings.HasSuffix(name, ".attn.hook_q"), strings.HasSuffix(name, ".attn.hook_k"), strings.HasSuffix(name, ".attn.hook_v"):
		return []int{cfg.Heads, n, cfg.HeadDim}
	}
	return nil
}
