package model

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/model/arch"
)

// convert writes the reference model src into a new folder: tensors stored
// with dtype (values rounded through it when asF32 is set, then stored as
// F32), split into shards files when shards > 1. It can also drop a tensor
// or change a shape through edit.
func convert(t *testing.T, src string, dtype checkpoint.DType, asF32 bool, shards int, edit func(name string, info *checkpoint.TensorInfo, data []float32) ([]float32, bool)) string {
	t.Helper()
	dst := t.TempDir()
	cfg, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := checkpoint.OpenWeights(src)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	names := w.Names()
	weightMap := map[string]string{}
	for s := range shards {
		file := "model.safetensors"
		if shards > 1 {
			file = fmt.Sprintf("model-%05d-of-%05d.safetensors", s+1, shards)
		}
		var infos []checkpoint.TensorInfo
		var datas [][]float32
		for i, n := range names {
			if i%shards != s {
				continue
			}
			info, _ := w.Info(n)
			data, err := w.Float32(n, nil)
			if err != nil {
				t.Fatal(err)
			}
			ti := checkpoint.TensorInfo{Name: n, DType: dtype, Shape: info.Shape}
			if asF32 {
				for j, v := range data {
					switch dtype {
					case checkpoint.F16:
						data[j] = checkpoint.HalfToFloat32(checkpoint.Float32ToHalf(v))
					case checkpoint.BF16:
						data[j] = float32frombf16(checkpoint.Float32ToBF16(v))
					}
				}
				ti.DType = checkpoint.F32
			}
			if edit != nil {
				var keep bool
				if data, keep = edit(n, &ti, data); !keep {
					continue
				}
			}
			infos = append(infos, ti)
			datas = append(datas, data)
			weightMap[n] = file
		}
		if err := checkpoint.WriteSafetensors(filepath.Join(dst, file), infos, datas, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
	}
	if shards > 1 {
		b, _ := json.Marshal(map[string]any{"metadata": map[string]any{}, "weight_map": weightMap})
		if err := os.WriteFile(filepath.Join(dst, "model.safetensors.index.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func float32frombf16(h uint16) float32 {
	return bitsToFloat(uint32(h) << 16)
}

// forwardAll returns every recorded tensor of one forward pass and its logits.
func forwardAll(t *testing.T, dir string, ids []int) (*memRecorder, []float32) {
	t.Helper()
	m, err := Load(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rec := newMemRecorder()
	out, err := m.Forward(context.Background(), Input{IDs: ids}, rec, ForwardOptions{Hidden: true, QKV: true, Logits: LogitsAll})
	if err != nil {
		t.Fatal(err)
	}
	return rec, out.Logits
}

func sameRecords(t *testing.T, what string, a, b *memRecorder, la, lb []float32) {
	t.Helper()
	if len(a.order) != len(b.order) || len(a.order) == 0 {
		t.Fatalf("%s: %d vs %d tensors recorded", what, len(a.order), len(b.order))
	}
	for _, n := range a.order {
		if d := maxAbsDiff(a.t[n], b.t[n]); d != 0 || len(a.t[n]) != len(b.t[n]) {
			t.Errorf("%s: %s differs by %g", what, n, d)
		}
	}
	if d := maxAbsDiff(la, lb); d != 0 {
		t.Errorf("%s: logits differ by %g", what, d)
	}
}

// TestConvertedCheckpoints: a sharded copy gives bitwise the same numbers as
// the single file; F16 and BF16 files give bitwise the numbers of an F32 file
// holding the same rounded values (so the half-precision decoding is exact).
func TestConvertedCheckpoints(t *testing.T) {
	for _, name := range []string{"tiny-llama", "tiny-bert"} {
		t.Run(name, func(t *testing.T) {
			src := refdata.Path(t, "models", name)
			ids := []int{1, 5, 9, 200, 31, 7, 4000, 12}
			base, baseLogits := forwardAll(t, src, ids)
			sh, shLogits := forwardAll(t, convert(t, src, checkpoint.F32, false, 3, nil), ids)
			sameRecords(t, "sharded", base, sh, baseLogits, shLogits)
			for _, dt := range []checkpoint.DType{checkpoint.F16, checkpoint.BF16} {
				half, hl := forwardAll(t, convert(t, src, dt, false, 2, nil), ids)
				rounded, rl := forwardAll(t, convert(t, src, dt, true, 1, nil), ids)
				sameRecords(t, string(dt), half, rounded, hl, rl)
				// and the rounded model stays close to the original
				if d := maxAbsDiff(half.t["blocks.0.attn.pattern"], base.t["blocks.0.attn.pattern"]); d > 0.05 {
					t.Errorf("%s attention far from F32: %g", dt, d)
				}
			}
		})
	}
}

func TestBadModels(t *testing.T) {
	src := refdata.Path(t, "models", "tiny-gpt2")
	missing := convert(t, src, checkpoint.F32, false, 1, func(n string, _ *checkpoint.TensorInfo, d []float32) ([]float32, bool) {
		return d, n != "transformer.h.1.attn.c_proj.weight"
	})
	wrong := convert(t, src, checkpoint.F32, false, 1, func(n string, ti *checkpoint.TensorInfo, d []float32) ([]float32, bool) {
		if n == "transformer.h.0.mlp.c_fc.weight" {
			ti.Shape = []int{256, 64}
		}
		return d, true
	})
	unknown := t.TempDir()
	os.WriteFile(filepath.Join(unknown, "config.json"), []byte(`{"model_type":"mamba","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2}`), 0o644)
	trunc := convert(t, src, checkpoint.F32, false, 1, nil)
	p := filepath.Join(trunc, "model.safetensors")
	st, _ := os.Stat(p)
	os.Truncate(p, st.Size()-100)
	noWeights := t.TempDir()
	cfg, _ := os.ReadFile(filepath.Join(src, "config.json"))
	os.WriteFile(filepath.Join(noWeights, "config.json"), cfg, 0o644)
	tests := []struct {
		name, dir string
		want      []string
	}{
		{"missing tensor", missing, []string{"model.safetensors", "transformer.h.1.attn.c_proj.weight", "missing"}},
		{"wrong shape", wrong, []string{"model.safetensors", "transformer.h.0.mlp.c_fc.weight", "expected [64 256]"}},
		{"unknown model_type", unknown, []string{"config.json", "model_type", "mamba"}},
		{"truncated", trunc, []string{"model.safetensors", "outside the data section"}},
		{"no weights", noWeights, []string{noWeights, "no model.safetensors"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.dir, LoadOptions{})
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestBadInputs(t *testing.T) {
	m, err := Load(refdata.Path(t, "models", "tiny-gpt2"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	long := make([]int, 513)
	ctx := context.Background()
	tests := []struct {
		name string
		in   Input
		want string
	}{
		{"too long", Input{IDs: long}, "more than the model's context of 512"},
		{"empty", Input{}, "no tokens"},
		{"bad id", Input{IDs: []int{1, 4096}}, "outside the vocabulary"},
		{"mask length", Input{IDs: []int{1, 2}, AttentionMask: []int{1}}, "attention mask"},
	}
	for _, tc := range tests {
		if _, err := m.Forward(ctx, tc.in, nil, ForwardOptions{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := m.Generate(ctx, make([]int, 505), GenerateOptions{MaxNewTokens: 12}, nil); err == nil || !strings.Contains(err.Error(), "exceeds the model's context") {
		t.Errorf("generation past the context: %v", err)
	}
	closed, err := Load(refdata.Path(t, "models", "tiny-gpt2"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	if err := closed.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := closed.Forward(ctx, Input{IDs: []int{1}}, nil, ForwardOptions{}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Forward after Close: %v", err)
	}
	bm, err := Load(refdata.Path(t, "models", "tiny-bert"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer bm.Close()
	if _, err := bm.Generate(ctx, []int{1, 2}, GenerateOptions{MaxNewTokens: 2}, nil); err == nil || !strings.Contains(err.Error(), "not a decoder") {
		t.Errorf("BERT generate: %v", err)
	}
}

// TestBucketing: many lengths compile only a handful of graphs, and the
// padded runs give the numbers of the exact-length reference (checked in
// TestReferenceModels, whose lengths are not bucket sizes).
func TestBucketing(t *testing.T) {
	m, err := Load(refdata.Path(t, "models", "tiny-gpt2"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for n := 1; n <= 64; n++ {
		ids := make([]int, n)
		if _, err := m.Forward(context.Background(), Input{IDs: ids}, nil, ForwardOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// buckets 16, 32, 48, 64: embed + block graph each
	if g := m.CompiledGraphs(); g != 8 {
		t.Errorf("64 lengths compiled %d graphs, want 8 (4 buckets × embed, block)", g)
	}
	tests := []struct{ n, want int }{{1, 16}, {16, 16}, {17, 32}, {33, 48}, {49, 64}, {65, 96}, {100, 128}, {129, 192}, {200, 256}, {300, 384}, {500, 512}, {513, 768}}
	for _, tc := range tests {
		if got := bucket(tc.n, 0); got != tc.want {
			t.Errorf("bucket(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
	if got := bucket(500, 505); got != 505 {
		t.Errorf("bucket capped at the context: %d", got)
	}
}

func bitsToFloat(b uint32) float32 { return math.Float32frombits(b) }

// TestMistralConfig: a Mistral config over Llama weights runs the Llama
// architecture (same numbers), and inputs beyond its sliding window run under the window.
func TestMistralConfig(t *testing.T) {
	src := refdata.Path(t, "models", "tiny-llama")
	dst := convert(t, src, checkpoint.F32, false, 1, nil)
	var cfg map[string]any
	b, _ := os.ReadFile(filepath.Join(dst, "config.json"))
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["model_type"] = "mistral"
	cfg["architectures"] = []string{"MistralForCausalLM"}
	cfg["sliding_window"] = 8
	b, _ = json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dst, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	ids := []int{1, 50, 60, 70, 80}
	want, wl := forwardAll(t, src, ids)
	got, gl := forwardAll(t, dst, ids)
	sameRecords(t, "mistral", want, got, wl, gl)
	m, err := Load(dst, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// Beyond the window, query i sees keys i−7..i only (TestFamiliesAgainstNumPy checks the values).
	rec := newMemRecorder()
	n := 12
	if _, err := m.Forward(context.Background(), Input{IDs: make([]int, n)}, rec, ForwardOptions{}); err != nil {
		t.Fatalf("beyond the window: %v", err)
	}
	p := rec.t["blocks.0.attn.pattern"]
	for i := range n {
		var sum float32
		for j := range n {
			v := p[i*n+j]
			sum += v
			if (j > i || j <= i-8) != (v == 0) {
				t.Fatalf("row %d key %d: probability %g", i, j, v)
			}
		}
		if math.Abs(float64(sum)-1) > 1e-6 {
			t.Fatalf("row %d sums to %g", i, sum)
		}
	}
}

// TestArchitectureForEveryModelType: every model_type checkpoint.ParseConfig accepts has
// an architecture, and the list in the error is checkpoint's.
func TestArchitectureForEveryModelType(t *testing.T) {
	for _, mt := range ModelTypes() {
		if a, err := Architecture(&arch.Config{ModelType: mt}); err != nil || a == nil {
			t.Errorf("model_type %q: no architecture (%v)", mt, err)
		}
	}
	_, err := Architecture(&arch.Config{ModelType: "gpt3"})
	if err == nil || !strings.Contains(err.Error(), strings.Join(ModelTypes(), ", ")) {
		t.Errorf("unknown model_type: error %v does not list %v", err, ModelTypes())
	}
}

// TestUnusedTensors: a checkpoint with more layers than its config.json loads
// with a warning naming the unused tensors and the layer count (as
// transformers warns), and is refused with Strict; a checkpoint whose tensors
// are all used loads without a warning.
func TestUnusedTensors(t *testing.T) {
	src := refdata.Path(t, "models", "tiny-gpt2")
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(src, "model.safetensors"), filepath.Join(dir, "model.safetensors")); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	b, _ := os.ReadFile(filepath.Join(src, "config.json"))
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["n_layer"] = 2 // the checkpoint has 3
	b, _ = json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	var warnings []string
	warn := func(msg string) { warnings = append(warnings, msg) }
	m, err := Load(dir, LoadOptions{Warn: warn})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if len(warnings) != 1 {
		t.Fatalf("warnings %q, want one", warnings)
	}
	for _, want := range []string{"model.safetensors", "12 tensors are not used", "transformer.h.2.", "layers up to 2", "n_layer is 2"} {
		if !strings.Contains(warnings[0], want) {
			t.Errorf("warning %q does not mention %q", warnings[0], want)
		}
	}
	if _, err := Load(dir, LoadOptions{Strict: true, Warn: warn}); err == nil || !strings.Contains(err.Error(), "n_layer is 2") || !strings.Contains(err.Error(), "strict") {
		t.Errorf("strict load: %v", err)
	}
	warnings = nil
	m, err = Load(src, LoadOptions{Strict: true, Warn: warn})
	if err != nil {
		t.Fatalf("strict load of a complete checkpoint: %v", err)
	}
	m.Close()
	if len(warnings) != 0 {
		t.Errorf("complete checkpoint warned %q", warnings)
	}
}
