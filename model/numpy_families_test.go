package model

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/pyoracle"
	"github.com/attnscope/attnscope/model/arch"
)

// famCase is one model checked against testdata/numpy_ref.py: a published
// config.json (testdata/configs) made tiny by overrides (width, layers,
// vocabulary; heads, KV heads, head_dim, windows and RoPE settings stay as
// published unless the case is about them), with random weights.
type famCase struct {
	name, config string
	set          map[string]any // overrides of config keys (nil value: delete)
	n, newTokens int
}

// tiny shrinks a decoder config of transformers' usual key names.
func tiny(extra map[string]any) map[string]any {
	m := map[string]any{"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "vocab_size": 97}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// longFactors returns n RoPE rescaling factors rising from 1 (a longrope
// short_factor/long_factor list of the published lists' form).
func longFactors(n int, top float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = 1 + (top-1)*float64(i)/float64(n-1)
	}
	return out
}

var famCases = []famCase{
	// Llama 3.2's llama3 RoPE at its published shapes (32 heads, 8 KV heads, head_dim 64).
	{"llama3-rope", "Llama-3.2-1B.json", tiny(nil), 20, 8},
	{"linear-rope", "Llama-3.2-1B.json", tiny(map[string]any{"rope_scaling": map[string]any{"rope_type": "linear", "factor": 4.0}}), 20, 8},
	// dynamic NTK: the prompt fits max_position_embeddings, generation runs past it.
	{"dynamic-rope", "Llama-3.2-1B.json", tiny(map[string]any{"rope_scaling": map[string]any{"rope_type": "dynamic", "factor": 2.0}, "max_position_embeddings": 16}), 12, 10},
	{"dynamic-rope-long-prompt", "Llama-3.2-1B.json", tiny(map[string]any{"rope_scaling": map[string]any{"rope_type": "dynamic", "factor": 3.0}, "max_position_embeddings": 16}), 24, 4},
	{"yarn-rope", "Llama-3.2-1B.json", tiny(map[string]any{"rope_scaling": map[string]any{"rope_type": "yarn", "factor": 8.0}, "max_position_embeddings": 64}), 20, 8},
	{"yarn-rope-mscale", "Llama-3.2-1B.json", tiny(map[string]any{"rope_scaling": map[string]any{"rope_type": "yarn", "factor": 16.0, "mscale": 1.0, "mscale_all_dim": 0.5, "beta_fast": 16.0, "beta_slow": 2.0, "truncate": false}, "max_position_embeddings": 32}), 20, 8},
	// Qwen2.5's model card adds this rope_scaling for long inputs (factor 4 over the original 32768).
	{"yarn-rope-qwen-card", "Qwen2-7B-Instruct.json", tiny(map[string]any{"head_dim": 128, "rope_scaling": map[string]any{"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}}), 20, 8},
	// longrope: short factors up to the original context (8 here), long factors beyond.
	{"longrope-short", "Llama-3.2-1B.json", tiny(map[string]any{"rope_scaling": map[string]any{"rope_type": "longrope", "short_factor": longFactors(32, 1.5), "long_factor": longFactors(32, 20)}, "original_max_position_embeddings": 32, "max_position_embeddings": 1024}), 20, 8},
	{"longrope-long", "Llama-3.2-1B.json", tiny(map[string]any{"rope_scaling": map[string]any{"rope_type": "longrope", "short_factor": longFactors(32, 1.5), "long_factor": longFactors(32, 20)}, "original_max_position_embeddings": 8, "max_position_embeddings": 256}), 20, 8},
	// Sliding windows: Mistral's published 4096 (no effect at this length), then a window of 6.
	{"mistral", "Mistral-7B-v0.1.json", tiny(map[string]any{"head_dim": 128}), 20, 8},
	{"mistral-window", "Mistral-7B-v0.1.json", tiny(map[string]any{"head_dim": 128, "sliding_window": 6}), 20, 10},
	{"qwen2", "Qwen2-7B-Instruct.json", tiny(map[string]any{"head_dim": 128}), 20, 8},
	// Qwen2 with use_sliding_window: layers from max_window_layers on slide.
	{"qwen2-window-layers", "Qwen2-7B-Instruct.json", tiny(map[string]any{"head_dim": 128, "num_hidden_layers": 3, "use_sliding_window": true, "sliding_window": 5, "max_window_layers": 1}), 20, 8},
	// GPT-Neo: no attention scaling, global and local layers (window 256 as published, then 5).
	{"gpt-neo", "gpt-neo-125m.json", neo(256), 20, 8},
	{"gpt-neo-local", "gpt-neo-125m.json", neo(5), 20, 10},
	// GPT-J and CodeGen: 16 heads as published, width 256 (head_dim 16), a quarter / half of each head rotated in pairs.
	{"gpt-j", "gpt-j-6b.json", gptjTiny(4), 20, 8},
	{"codegen", "codegen-350M-mono.json", gptjTiny(8), 20, 8},
	// RoBERTa / XLM-R: positions from pad_token_id + 1; a pad token inside the input keeps position pad_token_id.
	{"roberta", "roberta-base.json", tiny(map[string]any{"hidden_size": 96}), 20, 0},
	{"xlm-roberta-pad", "xlm-roberta-base.json", tiny(map[string]any{"hidden_size": 96}), 20, 0},
	// Phi-3-mini: 32 heads of 96 as published, its window of 2047, then a window of 7;
	// longrope on the same shapes (the 128k model's scaling type; its factor lists are not
	// reproduced here, these rise from 1 like them), original context 8 of 256.
	{"phi3", "Phi-3-mini-4k-instruct.json", tiny(map[string]any{"head_dim": 96}), 20, 8},
	{"phi3-window", "Phi-3-mini-4k-instruct.json", tiny(map[string]any{"head_dim": 96, "sliding_window": 7}), 20, 10},
	{"phi3-longrope", "Phi-3-mini-4k-instruct.json", tiny(map[string]any{"head_dim": 96, "rope_scaling": map[string]any{"type": "longrope", "short_factor": longFactors(48, 1.1), "long_factor": longFactors(48, 30)}, "original_max_position_embeddings": 8, "max_position_embeddings": 256}), 20, 8},
	// Gemma 2-2B: 8 heads of 256, 4 KV heads, soft-capping 50/30, query_pre_attn_scalar 256,
	// sandwich norms; layers alternate its 4096 window and global attention, then a window of 5.
	{"gemma2", "gemma-2-2b.json", tiny(nil), 20, 8},
	{"gemma2-window", "gemma-2-2b.json", tiny(map[string]any{"sliding_window": 5, "num_hidden_layers": 3}), 20, 10},
	// Gemma-2B: 8 heads of 256, one KV head.
	{"gemma", "gemma-2b.json", tiny(nil), 20, 8},
	// phi-2: 32 heads of 80, 40% of each rotated.
	{"phi-2", "phi-2.json", tiny(map[string]any{"head_dim": 80}), 20, 8},
}

// padAt puts the pad token (id 1) at a position of a case's input.
var padAt = map[string]int{"xlm-roberta-pad": 6}

func gptjTiny(rot int) map[string]any {
	return map[string]any{"n_embd": 256, "n_layer": 2, "vocab_size": 97, "n_inner": 96, "rotary_dim": rot}
}

// neo shrinks GPT-Neo-125M to two layers (one global, one local) of width 96 (12 heads of 8).
func neo(window int) map[string]any {
	return map[string]any{"hidden_size": 96, "num_layers": 2, "vocab_size": 97, "window_size": window, "attention_types": []any{[]any{[]string{"global", "local"}, 1}}}
}

func TestFamiliesAgainstNumPy(t *testing.T) {
	py := pyoracle.Python(t, "numpy")
	for i, fc := range famCases {
		t.Run(fc.name, func(t *testing.T) {
			dir := writeRandomModel(t, fc.config, fc.set, uint64(i+1))
			checkAgainstNumPy(t, py, dir, fc.n, fc.newTokens, uint64(i+100), padAt[fc.name])
		})
	}
}

// writeRandomModel writes config (with set applied) and random weights of its
// architecture's shapes into a new folder.
func writeRandomModel(t *testing.T, config string, set map[string]any, seed uint64) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "configs", config))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	dir := t.TempDir()
	cb, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cb, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteRandomWeights(dir, seed); err != nil {
		t.Fatal(err)
	}
	return dir
}

type numpyOut struct {
	Attentions [][][][]float64
	Hidden     [][][]float64
	Logits     [][]float64
	Generated  []int
	GenAtt     [][][][]float64 `json:"generation_attentions"`
	Rope       []struct {
		InvFreq []float64 `json:"inv_freq"`
		Scale   float64
	}
}

func runNumPy(t *testing.T, py string, req map[string]any) *numpyOut {
	t.Helper()
	in, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "testdata/numpy_ref.py")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("numpy_ref.py: %v\n%s", err, stderr.String())
	}
	var res numpyOut
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	return &res
}

func flatten[T any](x [][]T) []T {
	var out []T
	for _, r := range x {
		out = append(out, r...)
	}
	return out
}

// maxDiff64 is max |got − want| over float32 values and a float64 reference.
func maxDiff64(got []float32, want []float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var m float64
	for i := range got {
		m = math.Max(m, math.Abs(float64(got[i])-want[i]))
	}
	return m
}

// checkAgainstNumPy compares attention, hidden states and logits of one
// forward pass (random ids of length n), greedy generation ids and the RoPE
// frequencies with numpy_ref.py, within the reference tolerances of random
// models: 1e-5 absolute, logits 1e-4 relative to their scale.
func checkAgainstNumPy(t *testing.T, py, dir string, n, newTokens int, seed uint64, pad int) {
	t.Helper()
	m, err := Load(dir, LoadOptions{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cfg := m.Config()
	rng := rand.New(rand.NewPCG(seed, 3))
	ids := make([]int, n)
	for i := range ids {
		ids[i] = 3 + rng.IntN(cfg.VocabSize-3)
	}
	if pad > 0 {
		ids[pad] = 1
	}
	a, _ := Architecture(cfg)
	rot := a.RotaryDim()
	req := map[string]any{"dir": dir, "ids": ids}
	if a.Causal() {
		req["new"] = newTokens
	}
	seqs := []int{n, n + newTokens}
	if rot > 0 {
		req["rope_seq_lens"] = seqs
	}
	want := runNumPy(t, py, req)

	rec := newMemRecorder()
	out, err := m.Forward(context.Background(), Input{IDs: ids}, rec, ForwardOptions{Hidden: true, QKV: true, Logits: LogitsAll})
	if err != nil {
		t.Fatal(err)
	}
	const tol = 1e-5
	var worstAtt, worstHidden float64
	for l := range cfg.Layers {
		d := maxDiff64(rec.t[fmt.Sprintf("blocks.%d.attn.pattern", l)], flatten(flatten(want.Attentions[l])))
		worstAtt = math.Max(worstAtt, d)
	}
	names := []string{"embed"}
	for l := range cfg.Layers {
		names = append(names, fmt.Sprintf("blocks.%d.hook_resid_post", l))
	}
	if a.Causal() {
		names[len(names)-1] = "final_norm"
	}
	for i, name := range names {
		worstHidden = math.Max(worstHidden, maxDiff64(rec.t[name], flatten(want.Hidden[i])))
	}
	wl := flatten(want.Logits)
	var scale float64
	for _, v := range wl {
		scale = math.Max(scale, math.Abs(v))
	}
	dl := maxDiff64(out.Logits, wl)
	t.Logf("max abs diff: attention %.2g, hidden %.2g, logits %.2g (scale %.3g)", worstAtt, worstHidden, dl, scale)
	if worstAtt > tol || worstHidden > tol {
		t.Errorf("attention %.3g or hidden states %.3g beyond %g of NumPy", worstAtt, worstHidden, tol)
	}
	if dl > 1e-4*scale {
		t.Errorf("logits differ by %.3g > 1e-4 × %.3g", dl, scale)
	}
	if a.Causal() {
		grec := newMemRecorder()
		g, err := m.Generate(context.Background(), ids, GenerateOptions{MaxNewTokens: newTokens}, grec)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(g.IDs, want.Generated) {
			t.Errorf("generated %v, NumPy %v", g.IDs[n:], want.Generated[min(n, len(want.Generated)):])
		} else {
			var worst float64
			for l := range cfg.Layers {
				worst = math.Max(worst, maxDiff64(grec.t[fmt.Sprintf("blocks.%d.attn.pattern", l)], flatten(flatten(want.GenAtt[l]))))
			}
			if worst > tol {
				t.Errorf("generation attention: max abs diff %.3g > %g", worst, tol)
			}
		}
	}
	for i, r := range want.Rope {
		inv, sc := arch.InvFreq(cfg, rot, seqs[i])
		for j, w := range r.InvFreq {
			if math.Abs(float64(inv[j])-w) > 1e-6*math.Abs(w) {
				t.Errorf("seq %d inv_freq[%d] = %.9g, NumPy %.9g", seqs[i], j, inv[j], w)
				break
			}
		}
		if math.Abs(float64(sc)-r.Scale) > 1e-6 {
			t.Errorf("seq %d attention scaling %g, NumPy %g", seqs[i], sc, r.Scale)
		}
	}
}

// TestPublishedConfigs reads each published config.json of testdata/configs
// unchanged and checks what the runtime takes from it.
func TestPublishedConfigs(t *testing.T) {
	tests := []struct {
		file, typ, rope  string
		layers, heads    int
		kv, hd, rot, win int
		sliding          string // layers with the window: "all", "even", "odd" or "" (none)
	}{
		{"Llama-3.2-1B.json", "llama", "llama3", 16, 32, 8, 64, 64, 0, ""},
		{"Mistral-7B-v0.1.json", "mistral", "", 32, 32, 8, 128, 128, 4096, "all"},
		{"Qwen2-7B-Instruct.json", "qwen2", "", 28, 28, 4, 128, 128, 0, ""},
		{"gemma-2-2b.json", "gemma2", "", 26, 8, 4, 256, 256, 4096, "even"},
		{"gemma-2b.json", "gemma", "", 18, 8, 1, 256, 256, 0, ""},
		{"Phi-3-mini-4k-instruct.json", "phi3", "", 32, 32, 32, 96, 96, 2047, "all"},
		{"phi-2.json", "phi", "", 32, 32, 32, 80, 32, 0, ""},
		{"gpt-neo-125m.json", "gpt_neo", "", 12, 12, 12, 64, 0, 256, "odd"},
		{"gpt-j-6b.json", "gptj", "", 28, 16, 16, 256, 64, 0, ""},
		{"codegen-350M-mono.json", "codegen", "", 20, 16, 16, 64, 32, 0, ""},
		{"roberta-base.json", "roberta", "", 12, 12, 12, 64, 0, 0, ""},
		{"xlm-roberta-base.json", "xlm-roberta", "", 12, 12, 12, 64, 0, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "configs", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := checkpoint.ParseConfig(b)
			if err != nil {
				t.Fatal(err)
			}
			c, err := ParseConfig(raw)
			if err != nil {
				t.Fatal(err)
			}
			a, err := Architecture(c)
			if err != nil {
				t.Fatal(err)
			}
			got := []any{c.ModelType, c.Rope.Type, c.Layers, c.Heads, c.KVHeads, c.HeadDim, a.RotaryDim(), c.SlidingWindow}
			want := []any{tc.typ, tc.rope, tc.layers, tc.heads, tc.kv, tc.hd, tc.rot, tc.win}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("type, rope, layers, heads, kv, head_dim, rotary, window = %v, want %v", got, want)
			}
			for l := range c.Layers {
				want := map[string]bool{"all": true, "even": l%2 == 0, "odd": l%2 == 1}[tc.sliding]
				if w := c.Window(l); (w > 0) != want || w > 0 && w != tc.win {
					t.Errorf("layer %d: window %d, want sliding %v", l, w, want)
				}
			}
		})
	}
}

// TestFamilyConfigErrors: bad values in the new families' configs are refused
// with the file and field named.
func TestFamilyConfigErrors(t *testing.T) {
	tests := []struct {
		config string
		set    map[string]any
		want   string
	}{
		{"Llama-3.2-1B.json", map[string]any{"rope_scaling": map[string]any{"rope_type": "su2", "factor": 2.0}}, `field rope_scaling.rope_type: "su2" is not supported (expected one of default, linear, dynamic, yarn, longrope, llama3)`},
		{"Llama-3.2-1B.json", map[string]any{"rope_scaling": nil, "rope_parameters": map[string]any{"rope_type": "yarn", "rope_theta": 1e4}}, "field rope_parameters.factor is missing or not positive (rope_type yarn needs it)"},
		{"Phi-3-mini-4k-instruct.json", map[string]any{"rope_scaling": map[string]any{"type": "longrope", "short_factor": []float64{1, 2}, "long_factor": []float64{1, 2}}}, "field rope_scaling.short_factor has 2 values, expected 48"},
		{"Mistral-7B-v0.1.json", map[string]any{"sliding_window": 0.5}, "field sliding_window: expected an integer"},
		{"gemma-2-2b.json", map[string]any{"layer_types": []string{"sliding_attention"}}, "field layer_types: 1 entries for num_hidden_layers 26"},
		{"gemma-2-2b.json", map[string]any{"attention_bias": true}, "field attention_bias: true is not supported"},
		{"gpt-neo-125m.json", map[string]any{"attention_types": []any{[]any{[]string{"global", "sparse"}, 6}}}, `field attention_types: kind "sparse" is not supported`},
		{"gpt-neo-125m.json", map[string]any{"attention_types": []any{[]any{[]string{"global", "local"}, 5}}}, "field attention_types: describes 10 layers, num_layers is 12"},
		{"gpt-j-6b.json", map[string]any{"rotary_dim": 512}, "field rotary_dim: 512 is not an even number in [2, 256]"},
		{"codegen-350M-mono.json", map[string]any{"n_head": 2, "n_embd": 128}, "field n_head: CodeGen's fused qkv_proj needs a multiple of 4 heads, got 2"},
		{"roberta-base.json", map[string]any{"max_position_embeddings": 2}, "field max_position_embeddings: 2 leaves no position after pad_token_id 1"},
		{"phi-2.json", map[string]any{"qk_layernorm": true}, "field qk_layernorm: true is not supported"},
	}
	for _, tc := range tests {
		b, _ := os.ReadFile(filepath.Join("testdata", "configs", tc.config))
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for k, v := range tc.set {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		dir := t.TempDir()
		b, _ = json.Marshal(m)
		if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir, LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), filepath.Join(dir, "config.json")) {
			t.Errorf("%s with %v: error %v, want the file and %q", tc.config, tc.set, err, tc.want)
		}
	}
}
