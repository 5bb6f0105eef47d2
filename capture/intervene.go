package capture

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/model/arch"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tokenizer"
)

// forwardOptions are the forward-pass settings of a capture.
func forwardOptions(opts Options) model.ForwardOptions {
	fo := model.ForwardOptions{Hidden: opts.Hidden, QKV: opts.QKV, QK: opts.QK}
	if opts.Intervention != nil {
		fo.Intervention = opts.Intervention.Intervention
	}
	return fo
}

// prepareIntervention loads the model (into *m, if not yet loaded), runs each
// patch edit's source text to collect the activations it copies, checks the
// edits against the model and the inputs' lengths, and returns run.json's
// record of the file. Nothing is written.
func prepareIntervention(ctx context.Context, m *model.Model, tk *tokenizer.Tokenizer, work []prepared, opts Options) (*store.InterventionInfo, error) {
	f := opts.Intervention
	if opts.Generate != nil {
		if err := f.Explain(generateCheck(f, opts.Hidden || opts.QKV)); err != nil {
			return nil, err
		}
	}
	yaml, err := os.ReadFile(f.Path)
	if err != nil {
		return nil, err
	}
	if *m == nil {
		if *m, err = model.Load(opts.ModelDir, model.LoadOptions{Backend: opts.Backend, Strict: opts.Strict, Warn: opts.Warn, Float64Attention: opts.Float64Attention}); err != nil {
			return nil, err
		}
	}
	sources := map[string]model.Activations{}
	for i, text := range f.SourceTexts {
		if text == "" {
			continue
		}
		acts, ok := sources[text]
		if !ok {
			enc, err := tk.Encode(text, true)
			if err != nil {
				return nil, f.Explain(&model.EditError{Index: i, Field: "source_text", Msg: fmt.Sprintf("cannot tokenize: %v", err)})
			}
			for _, p := range work {
				if len(p.enc.IDs) != len(enc.IDs) {
					return nil, f.Explain(&model.EditError{Index: i, Field: "source_text", Msg: fmt.Sprintf(
						"the source text has %d tokens, input %s has %d: activation patching needs inputs of the source's length", len(enc.IDs), describe(p.in), len(p.enc.IDs))})
				}
			}
			acts = model.Activations{}
			if _, err := (*m).Forward(ctx, model.Input{IDs: enc.IDs}, acts, model.ForwardOptions{Hidden: true, QKV: true, Internals: true}); err != nil {
				return nil, fmt.Errorf("run the source text of %s: %w", f.Path, err)
			}
			sources[text] = acts
		}
		f.Edits[i].Source = acts
	}
	if err := runSources(f, (*m).Config(), work); err != nil {
		return nil, err
	}
	if err := f.Explain(f.Check((*m).Config())); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(yaml)
	return &store.InterventionInfo{File: f.Path, Name: f.Name, SHA256: hex.EncodeToString(sum[:]), YAML: string(yaml)}, nil
}

// generateCheck refuses the edits a generating capture cannot reproduce:
// patches (their source covers the prompt, the generated tokens have none)
// and, when hidden states or Q/K/V are recorded (one forward pass over the
// generated sequence, recomputing what the decode steps computed), noise,
// whose draws in that pass differ from the decode steps'.
func generateCheck(f *model.InterventionFile, recompute bool) error {
	for i, e := range f.Edits {
		switch {
		case e.Op == model.OpPatch:
			return &model.EditError{Index: i, Field: "op", Msg: "op patch cannot be combined with --generate: the source covers the prompt, the generated tokens have no source activations"}
		case e.Op == model.OpNoise && recompute:
			return &model.EditError{Index: i, Field: "op", Msg: "op noise cannot be combined with --generate and --hidden or --qkv: the forward pass that records them would draw other noise than the decode steps"}
		}
	}
	return nil
}

// runSources fills the Source of each patch edit with a source_run from that
// stored run, checking that it holds the edit's hook on the edit's layers and
// that every input has its length.
func runSources(f *model.InterventionFile, cfg *arch.Config, work []prepared) error {
	type key struct{ dir, id string }
	loaded := map[key]model.Activations{}
	for i, src := range f.SourceRuns {
		if src.Dir == "" {
			continue
		}
		e := &f.Edits[i]
		acts, ok := loaded[key{src.Dir, src.Sample}]
		if !ok {
			var n int
			var err error
			if acts, n, err = RunSource(src.Dir, src.Sample, cfg, i); err != nil {
				return f.Explain(err)
			}
			for _, p := range work {
				if len(p.enc.IDs) != n {
					return f.Explain(&model.EditError{Index: i, Field: "source_run", Msg: fmt.Sprintf(
						"the source sample in %s has %d tokens, input %s has %d: activation patching needs inputs of the source's length", src.Dir, n, describe(p.in), len(p.enc.IDs))})
				}
			}
			loaded[key{src.Dir, src.Sample}] = acts
		}
		layers := e.Layers
		if layers == nil {
			for l := range cfg.Layers {
				layers = append(layers, l)
			}
		}
		for _, l := range layers {
			if name := model.SourceName(e.Hook, l); name != "" && acts[name].Data == nil {
				return f.Explain(&model.EditError{Index: i, Field: "hook", Msg: fmt.Sprintf(
					"the run %s stores no %s to patch %s from (a capture stores the attention pattern, with --hidden the residual stream, with --qkv queries, keys and values)", src.Dir, name, e.Hook)})
			}
		}
		e.Source = acts
	}
	return nil
}
