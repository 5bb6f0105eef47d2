package capture

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/store"
)

// longContextModel links the files of reference model name into a temporary
// folder whose config.json allows n positions (RoPE families: the weights do not
// depend on the context length); it returns the folder and the context it allows.
func longContextModel(t *testing.T, name string, n int) (string, int) {
	t.Helper()
	ctxLen := 0
	dir := refdata.ModelWithConfig(t, name, func(cfg map[string]any) {
		for _, k := range []string{"max_position_embeddings", "n_positions"} {
			if v, ok := cfg[k].(float64); ok {
				ctxLen = int(v)
			}
		}
		switch cfg["model_type"] {
		case "llama", "qwen2", "mistral", "gpt_neox":
			cfg["max_position_embeddings"] = n
			ctxLen = n
		}
	})
	return dir, ctxLen
}

// longText is pseudo-code long enough to fill any context used here.
func longText(words int) string {
	rng := rand.New(rand.NewPCG(7, 7))
	vocab := []string{"def", "return", "x", "y", "(", ")", ":", "+", "=", "if", "else", "for", "in", "range", "print", "self", "1", "2", "\n", "    ", "foo", "bar", "_", ",", "."}
	var sb strings.Builder
	for range words {
		sb.WriteString(vocab[rng.IntN(len(vocab))])
		sb.WriteByte(' ')
	}
	return sb.String()
}

// TestQKTilesMatchFullCapture: for every reference model, a --store qk capture
// (blockwise attention, queries, keys and log-sum-exps stored) serves tiles equal
// to the float64 softmax of the stored queries and keys within 1e-12 and to the
// attention a full capture materialises within 1e-6, both captured with
// Float64Attention (scores, softmax and pattern·v in float64, rounded to float32), over every layer and head of the whole matrix, read
// in tiles that straddle the blocks. RoPE families run at 2,048 tokens (their
// config's context raised; weights unchanged), GPT-2 and BERT at their 512
// learned positions (TestQKTilesEveryFamily covers them at 2,048). Tiles outside
// the matrix are refused.
func TestQKTilesMatchFullCapture(t *testing.T) {
	models := []string{"tiny-gpt2", "tiny-bert", "tiny-llama", "tiny-qwen2", "tiny-gpt_neox", "code-gpt2-mini", "code-llama-mini", "code-bert-mini"}
	if testing.Short() {
		models = []string{"tiny-llama", "tiny-gpt2"}
	}
	text := longText(6000)
	for _, name := range models {
		t.Run(name, func(t *testing.T) {
			dir, n := longContextModel(t, name, 2048)
			in := []Input{{ID: "long", Text: text}}
			full := filepath.Join(t.TempDir(), "full")
			qk := filepath.Join(t.TempDir(), "qk")
			var notes []string
			if _, err := Run(context.Background(), full, in, Options{ModelDir: dir, Truncate: "right", Float64Attention: true, Command: []string{"test"}, Info: func(string) {}}); err != nil {
				t.Fatal(err)
			}
			if _, err := Run(context.Background(), qk, in, Options{ModelDir: dir, Truncate: "right", QK: true, Float64Attention: true, Command: []string{"test"}, Info: func(m string) { notes = append(notes, m) }}); err != nil {
				t.Fatal(err)
			}
			if len(notes) != 1 || !strings.Contains(notes[0], "of memory needed for") {
				t.Errorf("memory notice: %q", notes)
			}
			tiles, info := checkQKTiles(t, full, qk, "long", n)
			defer tiles.Close()
			for _, bad := range [][6]int{{info.Layers, 0, 0, 1, 0, 1}, {0, info.Heads, 0, 1, 0, 1}, {0, 0, 0, n + 1, 0, 1}, {0, 0, 0, 1, -1, 1}, {0, 0, 5, 5, 0, 1}} {
				if _, err := tiles.Tile(bad[0], bad[1], bad[2], bad[3], bad[4], bad[5]); err == nil || !strings.Contains(err.Error(), "tile:") {
					t.Errorf("tile %v: error %v, want a tile error", bad, err)
				}
			}
		})
	}
}

// checkQKTiles opens sample id of the full and qk runs and checks that the qk
// run's tiles, read in tiles that straddle the capture's blocks, equal the
// float64 softmax of its stored queries and keys (ExactRow) within 1e-12 and
// the attention the full run materialised within 1e-6, over every layer and
// head of the n×n matrix. It returns the open reader and its info.
func checkQKTiles(t *testing.T, full, qk, id string, n int) (*store.QKReader, store.TensorsInfo) {
	t.Helper()
	tiles, info, _ := qkTiles(t, full, qk, id, n, 1e-6)
	return tiles, info
}

// qkTiles is checkQKTiles with tol the largest difference allowed from the
// materialised attention (+Inf: none checked); it also returns the largest
// difference found.
func qkTiles(t *testing.T, full, qk, id string, n int, tol float64) (*store.QKReader, store.TensorsInfo, float64) {
	t.Helper()
	fr, err := store.Open(full)
	if err != nil {
		t.Fatal(err)
	}
	qr, err := store.Open(qk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(qr.AttentionPath(id)); !os.IsNotExist(err) {
		t.Errorf("a qk run has %s (err %v)", qr.AttentionPath(id), err)
	}
	tiles, err := qr.OpenQK(id)
	if err != nil {
		t.Fatal(err)
	}
	info := tiles.Info()
	if info.Tokens != n {
		t.Fatalf("qk run has %d tokens, want the context %d", info.Tokens, n)
	}
	worstMat, worstExact := 0.0, 0.0
	const tr, tc = 700, 900 // tiles not aligned with the capture's blocks
	for l := range info.Layers {
		att, err := fr.AttentionLayer(id, l)
		if err != nil {
			t.Fatal(err)
		}
		for h := range info.Heads {
			for r0 := 0; r0 < n; r0 += tr {
				r1 := min(n, r0+tr)
				band := make([]float64, (r1-r0)*n) // rows [r0, r1) assembled from tiles
				for c0 := 0; c0 < n; c0 += tc {
					c1 := min(n, c0+tc)
					tile, err := tiles.Tile(l, h, r0, r1, c0, c1)
					if err != nil {
						t.Fatal(err)
					}
					for i := range r1 - r0 {
						copy(band[i*n+c0:i*n+c1], tile.Data[i*(c1-c0):(i+1)*(c1-c0)])
					}
				}
				for i := r0; i < r1; i++ {
					exact, err := tiles.ExactRow(l, h, i)
					if err != nil {
						t.Fatal(err)
					}
					for j := range n {
						got, mat := band[(i-r0)*n+j], att.Data[(h*n+i)*n+j]
						dExact, dMat := math.Abs(got-exact[j]), math.Abs(got-mat)
						if dExact > 1e-12 || dMat > tol {
							t.Fatalf("layer %d head %d [%d, %d]: tile %.9g, materialised %.9g, float64 softmax of the stored q, k %.9g", l, h, i, j, got, mat, exact[j])
						}
						worstMat, worstExact = max(worstMat, dMat), max(worstExact, dExact)
					}
				}
			}
		}
	}
	t.Logf("%d tokens, %d layers × %d heads (%d kv heads): largest difference from the materialised attention %.3g, from the float64 softmax %.3g", n, info.Layers, info.Heads, info.KVHeads, worstMat, worstExact)
	return tiles, info, worstMat
}

// TestQKRefusesMixing: a qk capture into a full run (and back) is refused.
func TestQKRefusesMixing(t *testing.T) {
	dir := refdata.Path(t, "models", "tiny-gpt2")
	out := filepath.Join(t.TempDir(), "run")
	in := []Input{{ID: "a", Text: "def f(x): return x"}}
	if _, err := Run(context.Background(), out, in, Options{ModelDir: dir, Command: []string{"test"}, Info: func(string) {}}); err != nil {
		t.Fatal(err)
	}
	in[0].ID = "b"
	_, err := Run(context.Background(), out, in, Options{ModelDir: dir, QK: true, Command: []string{"test"}, Info: func(string) {}})
	if err == nil || !strings.Contains(err.Error(), `stored as "full"`) {
		t.Fatalf("error %v, want a refusal naming the storage", err)
	}
}

// TestQKRefusesUnsupported: --store qk is refused with one error, before the
// model is loaded or anything is written, together with an intervention (it
// edits the scores or pattern blockwise attention never materialises).
func TestQKRefusesUnsupported(t *testing.T) {
	ivPath := filepath.Join(t.TempDir(), "iv.yaml")
	if err := os.WriteFile(ivPath, []byte("edits:\n  - hook: attn.hook_z\n    op: zero\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	iv, err := model.ReadIntervention(ivPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		opts Options
		want string
	}{
		{"intervention", Options{ModelDir: refdata.Path(t, "models", "tiny-llama"), Intervention: iv}, "interventions edit the attention scores and pattern"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			c.opts.QK, c.opts.Command, c.opts.Info = true, []string{"test"}, func(string) {}
			_, err := Run(context.Background(), out, []Input{{ID: "a", Text: "def f(x): return x"}}, c.opts)
			if err == nil || !strings.Contains(err.Error(), "capture: model ") || !strings.Contains(err.Error(), "blockwise attention (--store qk) is not available: "+c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if _, serr := os.Stat(out); !os.IsNotExist(serr) {
				t.Errorf("the refused capture left %s (stat: %v)", out, serr)
			}
		})
	}
}

// randomLongModel writes a config (a published one of model/testdata/configs
// by file name, or the config.json at an absolute path) with tiny-llama's
// vocabulary and special tokens and then set applied, random weights of its
// shapes, and tiny-llama's tokenizer (the vocabulary resized to it) into a new
// folder.
func randomLongModel(t *testing.T, config string, set map[string]any) string {
	t.Helper()
	path := config
	if !filepath.IsAbs(path) {
		path = filepath.Join("..", "model", "testdata", "configs", config)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	tok := refdata.Path(t, "models", "tiny-llama")
	var tcfg map[string]any
	if raw, err = os.ReadFile(filepath.Join(tok, "config.json")); err == nil {
		err = json.Unmarshal(raw, &tcfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	cfg["vocab_size"], cfg["bos_token_id"], cfg["eos_token_id"], cfg["pad_token_id"] = tcfg["vocab_size"], tcfg["bos_token_id"], tcfg["eos_token_id"], nil
	for k, v := range set {
		cfg[k] = v
	}
	dir := t.TempDir()
	raw, _ = json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		if err := os.Symlink(filepath.Join(tok, f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := model.WriteRandomWeights(dir, 3); err != nil {
		t.Fatal(err)
	}
	return dir
}

// windowCase is a random model at a published config's shapes with a sliding
// window or non-default scores (TestQKTilesWindowsAndScales).
type windowCase struct {
	name, config string
	set          map[string]any
	windows      []int
}

// windowCases are the models of TestQKTilesWindowsAndScales at n tokens with
// windows of w keys.
func windowCases(n, w int) []windowCase {
	return []windowCase{
		{"mistral", "Mistral-7B-v0.1.json", map[string]any{"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 16, "sliding_window": w, "max_position_embeddings": n}, []int{w, w}},
		{"qwen2", "Qwen2-7B-Instruct.json", map[string]any{"hidden_size": 56, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 7, "num_key_value_heads": 1, "head_dim": 16, "use_sliding_window": true, "sliding_window": w, "max_window_layers": 1, "max_position_embeddings": n}, []int{0, w}},
		{"gemma2", "gemma-2-2b.json", map[string]any{"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "head_dim": 32, "sliding_window": w, "attn_logit_softcapping": 1.0, "query_pre_attn_scalar": 144, "max_position_embeddings": n}, []int{w, 0}},
		{"gpt-neo", "gpt-neo-125m.json", map[string]any{"hidden_size": 96, "num_layers": 2, "window_size": w, "attention_types": []any{[]any{[]string{"global", "local"}, 1}}}, []int{0, w}},
	}
}

// TestQKTilesWindowsAndScales: --store qk captures of random models at the
// shapes of the published Mistral-7B, Qwen2-7B, Gemma-2-2B and GPT-Neo-125M
// configs (heads and KV heads in the published ratio, shrunk widths, two
// layers) with sliding windows of 700 keys at 2,048 tokens (shorter than the
// context and not aligned with the capture's 512×2,048 blocks, so that whole
// key blocks are skipped), GPT-Neo's unscaled scores and Gemma 2's scale and
// soft-capping (at 1, so that it bends the scores) serve tiles equal to the
// attention a full capture materialises within 1e-6 (checkQKTiles; both with
// Float64Attention), entries
// outside the window exactly 0, and hidden states equal to the full capture's
// within 1e-5 of their largest value.
func TestQKTilesWindowsAndScales(t *testing.T) {
	const n, w = 2048, 700
	cases := windowCases(n, w)
	if testing.Short() {
		cases = cases[2:3]
	}
	text := longText(6000)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := randomLongModel(t, c.config, c.set)
			full, qk := captureFullAndQK(t, dir, text, true)
			tiles, info := checkQKTiles(t, full, qk, "long", n)
			defer tiles.Close()
			if !slices.Equal(info.Windows, c.windows) {
				t.Errorf("sample.json records windows %v, want %v", info.Windows, c.windows)
			}
			for l, wl := range c.windows {
				if wl == 0 {
					continue
				}
				tile, err := tiles.Tile(l, 0, n-1, n, 0, n)
				if err != nil {
					t.Fatal(err)
				}
				sum := 0.0
				for j, p := range tile.Data {
					if j <= n-1-wl && p != 0 {
						t.Fatalf("layer %d: last row's weight on key %d outside the window of %d is %g", l, j, wl, p)
					}
					sum += p
				}
				if math.Abs(sum-1) > 1e-9 {
					t.Errorf("layer %d: last row sums to %.12g", l, sum)
				}
			}
			fr, _ := store.Open(full)
			qr, _ := store.Open(qk)
			names, err := fr.HiddenNames("long")
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range names {
				a, err := fr.Hidden("long", name)
				if err != nil {
					t.Fatal(err)
				}
				b, err := qr.Hidden("long", name)
				if err != nil {
					t.Fatal(err)
				}
				top, worst := 0.0, 0.0
				for i := range a.Data {
					top, worst = max(top, math.Abs(a.Data[i])), max(worst, math.Abs(a.Data[i]-b.Data[i]))
				}
				if worst > 1e-5*max(1, top) {
					t.Errorf("%s: the qk capture's hidden state differs from the full capture's by %g (largest value %g)", name, worst, top)
				}
			}
		})
	}
}

// TestQKTilesEveryFamily: for every model type of the registry
// (model.ModelTypes; those with windows and non-default scores through
// windowCases), a --store qk capture of a random two-layer model at a published
// or reference config's shapes (shrunk widths, a few heads, grouped-query heads
// where the family has them) serves tiles equal to the attention a full capture
// materialises within 1e-6 at 2,048 tokens (checkQKTiles; both with
// Float64Attention): learned positions
// (GPT-2, BERT, RoBERTa, XLM-R) raised to 2,048, GPT-J's and CodeGen's
// interleaved partial RoPE, phi-2's partial RoPE, Phi-3's published window of
// 2,047 keys, Llama 3.2's llama3 RoPE scaling, Gemma's single KV head (contexts
// longer than 2,048 lowered to it, so that the text is cut to 2,048 tokens).
func TestQKTilesEveryFamily(t *testing.T) {
	const n = 2048
	ref := func(name string) string { return refdata.Path(t, "models", name, "config.json") }
	heads := func(h, kv, hd int) map[string]any {
		return map[string]any{"hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": h, "num_key_value_heads": kv, "head_dim": hd}
	}
	with := func(m map[string]any, kv ...any) map[string]any {
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name, config string
		set          map[string]any
	}{
		{"gpt2", ref("tiny-gpt2"), map[string]any{"n_embd": 32, "n_head": 2, "n_layer": 2, "n_positions": n}},
		{"bert", ref("tiny-bert"), map[string]any{"hidden_size": 32, "intermediate_size": 48, "num_attention_heads": 2, "num_hidden_layers": 2, "max_position_embeddings": n, "pad_token_id": 0}},
		{"roberta", "roberta-base.json", with(heads(2, 2, 16), "max_position_embeddings", n+2, "pad_token_id", 1)},
		{"xlm-roberta", "xlm-roberta-base.json", with(heads(2, 2, 16), "max_position_embeddings", n+2, "pad_token_id", 1)},
		{"llama3-rope", "Llama-3.2-1B.json", with(heads(4, 2, 16), "hidden_size", 64, "max_position_embeddings", n)},
		{"gpt_neox", ref("tiny-gpt_neox"), with(heads(2, 2, 16), "max_position_embeddings", n)},
		{"gptj", "gpt-j-6b.json", map[string]any{"n_embd": 32, "n_head": 2, "n_layer": 2, "n_inner": 48, "rotary_dim": 4}},
		{"codegen", "codegen-350M-mono.json", map[string]any{"n_embd": 64, "n_head": 4, "n_layer": 2, "n_inner": 48, "rotary_dim": 8}},
		{"phi", "phi-2.json", heads(2, 2, 16)},
		{"phi3", "Phi-3-mini-4k-instruct.json", with(heads(2, 2, 16), "max_position_embeddings", n)},
		{"gemma", "gemma-2b.json", with(heads(2, 1, 16), "max_position_embeddings", n)},
	}
	if testing.Short() {
		cases = []struct {
			name, config string
			set          map[string]any
		}{cases[6], cases[9]}
	}
	covered := map[string]bool{}
	for _, c := range windowCases(n, 700) {
		covered[configModelType(t, filepath.Join("..", "model", "testdata", "configs", c.config))] = true
	}
	text := longText(6000)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := randomLongModel(t, c.config, c.set)
			covered[configModelType(t, filepath.Join(dir, "config.json"))] = true
			full, qk := captureFullAndQK(t, dir, text, false)
			tiles, _ := checkQKTiles(t, full, qk, "long", n)
			tiles.Close()
		})
	}
	if !testing.Short() {
		for _, mt := range model.ModelTypes() {
			if !covered[mt] {
				t.Errorf("model type %q has no case at %d tokens", mt, n)
			}
		}
	}
}

// captureFullAndQK captures text as sample "long" of the model in dir twice, with
// full and with qk storage, both with float64 attention and right truncation
// (and hidden states when asked), and returns the two run folders.
func captureFullAndQK(t *testing.T, dir, text string, hidden bool) (full, qk string) {
	t.Helper()
	full, qk = filepath.Join(t.TempDir(), "full"), filepath.Join(t.TempDir(), "qk")
	for _, o := range []Options{{}, {QK: true}} {
		out := full
		if o.QK {
			out = qk
		}
		o.ModelDir, o.Truncate, o.Hidden, o.Float64Attention, o.Command, o.Info = dir, "right", hidden, true, []string{"test"}, func(string) {}
		if _, err := Run(context.Background(), out, []Input{{ID: "long", Text: text}}, o); err != nil {
			t.Fatal(err)
		}
	}
	return full, qk
}

// configModelType reads the model_type of the config.json at path.
func configModelType(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ModelType string `json:"model_type"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.ModelType
}

// TestAttentionPrecision: on the trained code-gpt2-mini at its 512 positions, a
// capture with the default precision records attention_precision "float32" in
// run.json and materialises a pattern that differs from the float64 capture's
// (the option changes the computation), while with Float64Attention on both the
// full and the qk capture the tiles equal the materialised attention within 1e-6
// (float32 need not: its softmax is ~2e-6 from the float64 one at logits ~30, and
// the difference is only logged). Resuming a run at the other precision is
// refused.
func TestAttentionPrecision(t *testing.T) {
	dir, n := longContextModel(t, "code-gpt2-mini", 2048)
	in := []Input{{ID: "long", Text: longText(6000)}}
	runs := map[string]string{}
	for _, f64 := range []bool{false, true} {
		prec := attentionPrecision(f64)
		for _, qk := range []bool{false, true} {
			out := filepath.Join(t.TempDir(), fmt.Sprintf("%s-qk%v", prec, qk))
			o := Options{ModelDir: dir, Truncate: "right", QK: qk, Float64Attention: f64, Command: []string{"test"}, Info: func(string) {}}
			if _, err := Run(context.Background(), out, in, o); err != nil {
				t.Fatal(err)
			}
			r, err := store.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			if r.Meta.AttentionPrecision != prec {
				t.Errorf("run.json attention_precision %q, want %q", r.Meta.AttentionPrecision, prec)
			}
			runs[fmt.Sprintf("%s-qk%v", prec, qk)] = out
		}
	}
	t32, _, d32 := qkTiles(t, runs["float32-qkfalse"], runs["float32-qktrue"], "long", n, math.Inf(1))
	t32.Close()
	t64, _, d64 := qkTiles(t, runs["float64-qkfalse"], runs["float64-qktrue"], "long", n, 1e-6)
	t64.Close()
	t.Logf("largest tile difference from the materialised attention: float32 %.3g, float64 %.3g", d32, d64)
	a32, err := store.Open(runs["float32-qkfalse"])
	if err != nil {
		t.Fatal(err)
	}
	a64, err := store.Open(runs["float64-qkfalse"])
	if err != nil {
		t.Fatal(err)
	}
	p32, err := a32.AttentionLayer("long", 1)
	if err != nil {
		t.Fatal(err)
	}
	p64, err := a64.AttentionLayer("long", 1)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(p32.Data, p64.Data) {
		t.Error("float32 and float64 attention captured the same layer-1 pattern bit for bit")
	}
	in[0].ID = "other"
	_, err = Run(context.Background(), runs["float32-qkfalse"], in, Options{ModelDir: dir, Truncate: "right", Float64Attention: true, Command: []string{"test"}, Info: func(string) {}})
	if err == nil || !strings.Contains(err.Error(), "attention precision is float32, this capture's float64") {
		t.Errorf("resuming a float32 run in float64: error %v, want a refusal naming the precisions", err)
	}
}
