package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/attnscope/attnscope/internal/pyoracle"
	"github.com/attnscope/attnscope/tensor"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/store"
)

type refCase struct {
	Text       string   `json:"text"`
	IDs        []int    `json:"ids"`
	Tokens     []string `json:"tokens"`
	Offsets    [][2]int `json:"offsets"`
	Generation *struct {
		MaxNewTokens int   `json:"max_new_tokens"`
		GeneratedIDs []int `json:"generated_ids"`
	} `json:"generation"`
}

func loadCases(t *testing.T, dir string) []refCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []refCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Cases
}

func maxDiff(t *testing.T, got []float32, want []float32) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d values, want %d", len(got), len(want))
	}
	m := 0.0
	for i := range got {
		m = math.Max(m, math.Abs(float64(got[i])-float64(want[i])))
	}
	return m
}

// leftovers lists temporary files (atomicfile's ".*.tmp-*") under dir.
func leftovers(t *testing.T, dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp-") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestCaptureMatchesReference captures the reference texts with hidden states and
// compares attention and hidden states with transformers' (reference.safetensors):
// 1e-5 for random models, 1e-4 for trained ones.
func TestCaptureMatchesReference(t *testing.T) {
	for _, m := range []struct {
		name string
		tol  float64
	}{
		{"tiny-gpt2", 1e-5}, {"tiny-bert", 1e-5}, {"tiny-llama", 1e-5}, {"tiny-qwen2", 1e-5}, {"tiny-gpt_neox", 1e-5},
		{"code-gpt2-mini", 1e-4}, {"code-llama-mini", 1e-4}, {"code-bert-mini", 1e-4},
	} {
		t.Run(m.name, func(t *testing.T) {
			dir := refdata.Path(t, "models", m.name)
			cases := loadCases(t, dir)
			if testing.Short() {
				cases = cases[:1]
			}
			var inputs []Input
			for i, c := range cases {
				inputs = append(inputs, Input{ID: fmt.Sprintf("case%d", i), Text: c.Text})
			}
			out := filepath.Join(t.TempDir(), "run")
			sum, err := Run(context.Background(), out, inputs, Options{ModelDir: dir, Hidden: true, QKV: true, Command: []string{"test"}})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Captured != len(cases) || sum.Skipped != 0 {
				t.Errorf("summary %+v", sum)
			}
			ref, err := checkpoint.OpenSafetensors(filepath.Join(dir, "reference.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			run, err := store.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := model.ReadConfig(dir)
			if err != nil {
				t.Fatal(err)
			}
			a, err := model.Architecture(cfg)
			if err != nil {
				t.Fatal(err)
			}
			causal := a.Causal()
			if !run.Meta.QKV {
				t.Error("run.json does not record qkv")
			}
			if run.Meta.EndTime == nil || run.Meta.Model.ModelType == "" || len(run.Meta.Model.Files) < 2 {
				t.Errorf("run.json provenance incomplete: %+v", run.Meta)
			}
			for i, c := range cases {
				id := fmt.Sprintf("case%d", i)
				s, err := run.Sample(id)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(s.IDs, c.IDs) || !reflect.DeepEqual(s.Tokens, c.Tokens) || !reflect.DeepEqual(s.Offsets, c.Offsets) {
					t.Errorf("%s: tokens differ from the reference", id)
				}
				att, err := run.Attention(id)
				if err != nil {
					t.Fatal(err)
				}
				want, shape, _ := ref.Float32(fmt.Sprintf("case%d.attentions", i))
				if !reflect.DeepEqual(att.Shape, shape) {
					t.Fatalf("%s: attention shape %v, reference %v", id, att.Shape, shape)
				}
				if d := maxDiff(t, att.Float32(), want); d > m.tol {
					t.Errorf("%s: attention differs from the reference by %g (tolerance %g)", id, d, m.tol)
				}
				hs, hshape, _ := ref.Float32(fmt.Sprintf("case%d.hidden_states", i))
				layers, n, width := hshape[0]-1, hshape[1], hshape[2]
				for k := 0; k <= layers; k++ {
					name := store.EmbedName
					switch {
					case k == layers && !strings.Contains(m.name, "bert"):
						name = store.FinalNormName
					case k > 0:
						name = store.ResidName(k - 1)
					}
					h, err := run.Hidden(id, name)
					if err != nil {
						t.Fatal(err)
					}
					if d := maxDiff(t, h.Float32(), hs[k*n*width:(k+1)*n*width]); d > m.tol {
						t.Errorf("%s: hidden %s differs by %g", id, name, d)
					}
				}
				checkQKV(t, run, id, causal, want, m.tol)
			}
			if l := leftovers(t, out); len(l) != 0 {
				t.Errorf("temporary files left: %v", l)
			}
			// A rerun skips every finished sample and leaves the files untouched.
			before, _ := os.ReadFile(run.AttentionPath("case0"))
			sum, err = Run(context.Background(), out, inputs, Options{ModelDir: dir, Hidden: true, QKV: true})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Skipped != len(cases) || sum.Captured != 0 {
				t.Errorf("rerun summary %+v", sum)
			}
			after, _ := os.ReadFile(run.AttentionPath("case0"))
			if string(before) != string(after) {
				t.Error("rerun rewrote a finished sample")
			}
			// Resuming with other settings is refused.
			if _, err := Run(context.Background(), out, inputs, Options{ModelDir: dir, FP16: true, Hidden: true, QKV: true}); err == nil || !strings.Contains(err.Error(), "float32") {
				t.Errorf("resume with --fp16: %v", err)
			}
			if _, err := Run(context.Background(), out, inputs, Options{ModelDir: dir, Hidden: true}); err == nil || !strings.Contains(err.Error(), "qkv") {
				t.Errorf("resume without --qkv: %v", err)
			}
		})
	}
}

// checkQKV recomputes every layer's attention of sample id from its stored
// queries and keys, in float64: softmax(q·kᵀ/√head_dim + mask) with the causal
// mask for decoders and none for an unpadded encoder input. It must equal the
// stored pattern and transformers' attention (ref [L, H, N, N]) within tol.
func checkQKV(t *testing.T, run *store.Run, id string, causal bool, ref []float32, tol float64) {
	t.Helper()
	s, err := run.Sample(id)
	if err != nil {
		t.Fatal(err)
	}
	if s.QKV == nil || s.QKV.Layers != s.Attention.Layers || s.QKV.Heads != s.Attention.Heads || s.QKV.Tokens != s.Attention.Query {
		t.Fatalf("%s: sample.json qkv %+v does not match its attention %+v", id, s.QKV, s.Attention)
	}
	off := 0
	for l := range s.QKV.Layers {
		q, k, v, err := run.QKV(id, l)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(v.Shape, q.Shape) || len(q.Shape) != 3 {
			t.Fatalf("%s layer %d: v %v, q %v", id, l, v.Shape, q.Shape)
		}
		att, err := run.AttentionLayer(id, l)
		if err != nil {
			t.Fatal(err)
		}
		heads, n, hd := q.Shape[0], q.Shape[1], q.Shape[2]
		got := make([]float32, 0, heads*n*n)
		scores := make([]float64, n)
		for h := range heads {
			for i := range n {
				top := math.Inf(-1)
				for j := range n {
					scores[j] = math.Inf(-1)
					if causal && j > i {
						continue
					}
					dot := 0.0
					for d := range hd {
						dot += q.Data[(h*n+i)*hd+d] * k.Data[(h*n+j)*hd+d]
					}
					scores[j] = dot / math.Sqrt(float64(hd))
					top = math.Max(top, scores[j])
				}
				sum := 0.0
				for j := range n {
					scores[j] = math.Exp(scores[j] - top)
					sum += scores[j]
				}
				for j := range n {
					got = append(got, float32(scores[j]/sum))
				}
			}
		}
		if d := maxDiff(t, got, att.Float32()); d > tol {
			t.Errorf("%s layer %d: softmax(QKᵀ/√d + mask) from the stored Q, K differs from the stored pattern by %g (tolerance %g)", id, l, d, tol)
		}
		if d := maxDiff(t, got, ref[off:off+len(got)]); d > tol {
			t.Errorf("%s layer %d: softmax(QKᵀ/√d + mask) from the stored Q, K differs from transformers' attention by %g (tolerance %g)", id, l, d, tol)
		}
		off += len(got)
	}
}

// TestCaptureGeneration checks greedy generation on every decoder: generated ids
// and the assembled generation attention equal transformers'.
func TestCaptureGeneration(t *testing.T) {
	for _, m := range []struct {
		name string
		tol  float64
	}{
		{"tiny-gpt2", 1e-5}, {"tiny-llama", 1e-5}, {"tiny-qwen2", 1e-5}, {"tiny-gpt_neox", 1e-5},
		{"code-gpt2-mini", 1e-4}, {"code-llama-mini", 1e-4},
	} {
		t.Run(m.name, func(t *testing.T) {
			dir := refdata.Path(t, "models", m.name)
			cases := loadCases(t, dir)
			var inputs []Input
			for i, c := range cases {
				inputs = append(inputs, Input{ID: fmt.Sprintf("gen%d", i), Text: c.Text})
			}
			out := filepath.Join(t.TempDir(), "run")
			g := &model.GenerateOptions{MaxNewTokens: cases[0].Generation.MaxNewTokens}
			if _, err := Run(context.Background(), out, inputs, Options{ModelDir: dir, Generate: g, Hidden: true, QKV: true}); err != nil {
				t.Fatal(err)
			}
			run, _ := store.Open(out)
			if run.Meta.Generation == nil || run.Meta.Generation.MaxNewTokens != 12 || run.Meta.Generation.DoSample {
				t.Errorf("generation settings %+v", run.Meta.Generation)
			}
			ref, _ := checkpoint.OpenSafetensors(filepath.Join(dir, "reference.safetensors"))
			defer ref.Close()
			for i, c := range cases {
				id := fmt.Sprintf("gen%d", i)
				s, err := run.Sample(id)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(s.IDs, c.Generation.GeneratedIDs) {
					t.Errorf("%s: generated ids %v, want %v", id, s.IDs, c.Generation.GeneratedIDs)
				}
				if s.PromptLen != len(c.IDs) || len(s.Generated) != len(s.IDs)-len(c.IDs) || len(s.Offsets) != len(s.IDs) || len(s.Tokens) != len(s.IDs) {
					t.Errorf("%s: prompt %d, generated %d, offsets %d, ids %d", id, s.PromptLen, len(s.Generated), len(s.Offsets), len(s.IDs))
				}
				for _, gt := range s.Generated {
					if !(gt.Prob > 0 && gt.Prob <= 1) {
						t.Errorf("%s: generated token %+v: probability outside (0, 1]", id, gt)
					}
				}
				if !strings.HasPrefix(s.Text, c.Text) || s.PromptText != c.Text {
					t.Errorf("%s: text %q does not start with the prompt", id, s.Text)
				}
				for k, o := range s.Offsets {
					if o[0] > o[1] || o[1] > len([]rune(s.Text)) || (k >= s.PromptLen && o[0] < len([]rune(c.Text))) {
						t.Errorf("%s: token %d offsets %v outside the text", id, k, o)
					}
				}
				want, shape, err := ref.Float32(fmt.Sprintf("case%d.generation_attentions", i))
				if err != nil {
					t.Fatal(err)
				}
				att, err := run.Attention(id)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(att.Shape, shape) {
					t.Fatalf("%s: shape %v, reference %v", id, att.Shape, shape)
				}
				if d := maxDiff(t, att.Float32(), want); d > m.tol {
					t.Errorf("%s: generation attention differs by %g", id, d)
				}
				// The queries and keys of the generated positions give back the
				// assembled generation attention (causal over all M positions).
				checkQKV(t, run, id, true, want, m.tol)
				h, err := run.Hidden(id, store.ResidName(0))
				if err != nil || h.Shape[0] != shape[2] {
					t.Fatalf("%s: hidden of a generation: %v (want %d rows)", id, err, shape[2])
				}
				// The prompt's rows equal the forward pass's hidden states.
				hs, hshape, _ := ref.Float32(fmt.Sprintf("case%d.hidden_states", i))
				n, width := hshape[1], hshape[2]
				if d := maxDiff(t, h.Float32()[:n*width], hs[n*width:2*n*width]); d > m.tol {
					t.Errorf("%s: prompt rows of blocks.0.hook_resid_post differ by %g", id, d)
				}
			}
		})
	}
}

func TestCaptureErrors(t *testing.T) {
	dir := refdata.Path(t, "models", "tiny-gpt2")
	out := filepath.Join(t.TempDir(), "run")
	long := strings.Repeat("x = 1 + 2\n", 400)
	_, err := Run(context.Background(), out, []Input{{ID: "long", Text: long}}, Options{ModelDir: dir})
	if err == nil || !strings.Contains(err.Error(), "exceed the model's context") {
		t.Fatalf("long input: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed input check created %s", out)
	}
	if _, err := Run(context.Background(), out, []Input{{ID: "a/b", Text: "x"}}, Options{ModelDir: dir}); err == nil {
		t.Error("bad sample id accepted")
	}
	if _, err := Run(context.Background(), out, []Input{{ID: "a", Text: "x"}}, Options{ModelDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("missing model: %v", err)
	}
	bert := refdata.Path(t, "models", "tiny-bert")
	if _, err := Run(context.Background(), out, []Input{{ID: "a", Text: "x"}}, Options{ModelDir: bert, Generate: &model.GenerateOptions{MaxNewTokens: 2}}); err == nil || !strings.Contains(err.Error(), "decoder") {
		t.Errorf("generation with BERT: %v", err)
	}
	// A corrupt checkpoint (truncated weights) fails before the run folder exists.
	bad := t.TempDir()
	for _, name := range []string{"config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "model.safetensors" {
			b = b[:len(b)/2]
		}
		if err := os.WriteFile(filepath.Join(bad, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err = Run(context.Background(), out, []Input{{ID: "a", Text: "x"}}, Options{ModelDir: bad})
	if err == nil || !strings.Contains(err.Error(), "model.safetensors") {
		t.Errorf("truncated checkpoint: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a corrupt checkpoint left a run folder at %s", out)
	}
}

// TestCaptureCancel interrupts a capture after its first sample: the finished
// sample stays, nothing half-written remains, and a rerun completes the rest.
func TestCaptureCancel(t *testing.T) {
	dir := refdata.Path(t, "models", "tiny-gpt2")
	out := filepath.Join(t.TempDir(), "run")
	inputs := []Input{{ID: "a", Text: "def f(x):"}, {ID: "b", Text: "return x"}, {ID: "c", Text: "pass"}}
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Run(ctx, out, inputs, Options{ModelDir: dir, FP16: true, Progress: func(done, total int, id string, skipped bool, _ time.Duration) {
		if done == 1 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	run, _ := store.Open(out)
	ids, _ := run.Samples()
	if !reflect.DeepEqual(ids, []string{"a"}) {
		t.Errorf("samples after cancel: %v", ids)
	}
	if l := leftovers(t, out); len(l) != 0 {
		t.Errorf("temporary files left: %v", l)
	}
	sum, err := Run(context.Background(), out, inputs, Options{ModelDir: dir, FP16: true})
	if err != nil || sum.Skipped != 1 || sum.Captured != 2 {
		t.Fatalf("resume: %+v %v", sum, err)
	}
	s, _ := run.Sample("b")
	if s.Attention == nil || s.Attention.DType != "F16" {
		t.Errorf("fp16 sample: %+v", s.Attention)
	}
}

// TestCaptureNumpyReads checks that numpy reads a captured run's files with the
// safetensors layout (8-byte header length, JSON header, little-endian data).
func TestCaptureNumpyReads(t *testing.T) {
	py := pyoracle.Python(t, "numpy")
	dir := refdata.Path(t, "models", "tiny-gpt2")
	out := filepath.Join(t.TempDir(), "run")
	if _, err := Run(context.Background(), out, []Input{{ID: "s", Text: "def add(a, b):\n    return a + b\n"}}, Options{ModelDir: dir, Hidden: true}); err != nil {
		t.Fatal(err)
	}
	script := `
import json, struct, sys, numpy as np
def load(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        b, e = info['data_offsets']
        dt = {'F32': '<f4', 'F16': '<f2'}[info['dtype']]
        out[name] = np.frombuffer(data[b:e], dtype=dt).reshape(info['shape'])
    return out
run = sys.argv[1]
meta = json.load(open(run + '/run.json'))
s = json.load(open(run + '/samples/s/sample.json'))
att = load(run + '/samples/s/attention.safetensors')
hid = load(run + '/samples/s/hidden.safetensors')
n = len(s['ids'])
a = np.stack([att['blocks.%d.attn.pattern' % l] for l in range(3)])
assert a.shape == (3, 4, n, n), a.shape
assert np.allclose(a.sum(-1), 1, atol=1e-5)
assert np.allclose(np.triu(a, 1), 0)
assert hid['embed'].shape == (n, 64) and 'final_norm' in hid
assert meta['model']['model_type'] == 'gpt2'
print('ok')
`
	if b, err := exec.Command(py, "-c", script, out).CombinedOutput(); err != nil || !strings.Contains(string(b), "ok") {
		t.Fatalf("numpy: %v\n%s", err, b)
	}
}

// TestHashModelFollowsLinks checks that a model folder of symbolic links (the
// Hugging Face cache layout) is hashed through the links.
func TestHashModelFollowsLinks(t *testing.T) {
	src := refdata.Path(t, "models", "tiny-gpt2")
	dir := t.TempDir()
	for _, n := range []string{"config.json", "model.safetensors", "tokenizer.json", "reference.json"} {
		if err := os.Symlink(filepath.Join(src, n), filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	files, err := HashModel(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
		if len(f.SHA256) != 64 || f.Size == 0 {
			t.Errorf("%+v", f)
		}
	}
	if !reflect.DeepEqual(names, []string{"config.json", "model.safetensors", "tokenizer.json"}) {
		t.Errorf("hashed %v", names)
	}
}

// TestCaptureBatchMatchesSingle captures the reference texts (of different
// lengths) in right-padded batches and one at a time: every stored tensor has
// the sample's own length and equals the unbatched capture within 1e-5.
func TestCaptureBatchMatchesSingle(t *testing.T) {
	for _, name := range []string{"tiny-gpt2", "tiny-bert", "tiny-llama", "tiny-gpt_neox"} {
		t.Run(name, func(t *testing.T) {
			dir := refdata.Path(t, "models", name)
			var inputs []Input
			lengths := map[int]bool{}
			for i, c := range loadCases(t, dir) {
				inputs = append(inputs, Input{ID: fmt.Sprintf("case%d", i), Text: c.Text})
				lengths[len(c.IDs)] = true
			}
			if len(inputs) < 3 || len(lengths) < 2 {
				t.Fatalf("%d reference texts of %d lengths: the test needs texts of different lengths", len(inputs), len(lengths))
			}
			single, batched := filepath.Join(t.TempDir(), "single"), filepath.Join(t.TempDir(), "batched")
			if _, err := Run(context.Background(), single, inputs, Options{ModelDir: dir, Hidden: true, QKV: true}); err != nil {
				t.Fatal(err)
			}
			sum, err := Run(context.Background(), batched, inputs, Options{ModelDir: dir, Hidden: true, QKV: true, BatchSize: 3})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Captured != len(inputs) {
				t.Errorf("summary %+v", sum)
			}
			rs, _ := store.Open(single)
			rb, _ := store.Open(batched)
			for i := range inputs {
				id := fmt.Sprintf("case%d", i)
				ss, _ := rs.Sample(id)
				sb, err := rb.Sample(id)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(ss.IDs, sb.IDs) || !reflect.DeepEqual(ss.Attention, sb.Attention) || !reflect.DeepEqual(ss.Hidden, sb.Hidden) || !reflect.DeepEqual(ss.QKV, sb.QKV) {
					t.Errorf("%s: sample.json differs: %+v %+v, batched %+v %+v", id, ss.Attention, ss.QKV, sb.Attention, sb.QKV)
				}
				as, _ := rs.Attention(id)
				ab, err := rb.Attention(id)
				if err != nil {
					t.Fatal(err)
				}
				if d := maxDiff(t, ab.Float32(), as.Float32()); d > 1e-5 {
					t.Errorf("%s: batched attention differs by %g", id, d)
				}
				names, _ := rs.HiddenNames(id)
				for _, hn := range names {
					hs, _ := rs.Hidden(id, hn)
					hb, err := rb.Hidden(id, hn)
					if err != nil {
						t.Fatal(err)
					}
					if d := maxDiff(t, hb.Float32(), hs.Float32()); d > 1e-5 {
						t.Errorf("%s: batched hidden %s differs by %g", id, hn, d)
					}
				}
				for l := range ss.Attention.Layers {
					qs, ks, vs, _ := rs.QKV(id, l)
					qb, kb, vb, err := rb.QKV(id, l)
					if err != nil {
						t.Fatal(err)
					}
					for k, pair := range [][2]*tensor.Tensor{{qs, qb}, {ks, kb}, {vs, vb}} {
						if d := maxDiff(t, pair[1].Float32(), pair[0].Float32()); d > 1e-5 {
							t.Errorf("%s layer %d: batched %s differs by %g", id, l, []string{"q", "k", "v"}[k], d)
						}
					}
				}
			}
		})
	}
}
