package capture

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
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
// attention a full capture materialises within 1e-6 — or, on the trained models
// (logits up to ~30), within the materialised float32 softmax's own distance from
// that float64 softmax (up to 2.3e-6 measured) — over every layer and head of the
// whole matrix, read in tiles that straddle the blocks. RoPE families
// run at 2,048 tokens (their config's context raised; weights unchanged), GPT-2 and
// BERT at their 512 learned positions. Tiles outside the matrix are refused.
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
			if _, err := Run(context.Background(), full, in, Options{ModelDir: dir, Truncate: "right", Command: []string{"test"}, Info: func(string) {}}); err != nil {
				t.Fatal(err)
			}
			if _, err := Run(context.Background(), qk, in, Options{ModelDir: dir, Truncate: "right", QK: true, Command: []string{"test"}, Info: func(m string) { notes = append(notes, m) }}); err != nil {
				t.Fatal(err)
			}
			if len(notes) != 1 || !strings.Contains(notes[0], "of memory needed for") {
				t.Errorf("memory notice: %q", notes)
			}
			fr, err := store.Open(full)
			if err != nil {
				t.Fatal(err)
			}
			qr, err := store.Open(qk)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(qr.AttentionPath("long")); !os.IsNotExist(err) {
				t.Errorf("a qk run has %s (err %v)", qr.AttentionPath("long"), err)
			}
			tiles, err := qr.OpenQK("long")
			if err != nil {
				t.Fatal(err)
			}
			defer tiles.Close()
			info := tiles.Info()
			if info.Tokens != n {
				t.Fatalf("qk run has %d tokens, want the context %d", info.Tokens, n)
			}
			worstMat, worstExact := 0.0, 0.0
			const tr, tc = 700, 900 // tiles not aligned with the capture's blocks
			for l := range info.Layers {
				att, err := fr.AttentionLayer("long", l)
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
								// The tile is float64-exact for the stored q and k; the
								// materialised float32 softmax carries its own rounding.
								if dExact > 1e-12 || dMat > max(1e-6, math.Abs(mat-exact[j])+1e-12) {
									t.Fatalf("layer %d head %d [%d, %d]: tile %.9g, materialised %.9g, float64 softmax of the stored q, k %.9g", l, h, i, j, got, mat, exact[j])
								}
								worstMat, worstExact = max(worstMat, dMat), max(worstExact, dExact)
							}
						}
					}
				}
			}
			t.Logf("%d tokens, %d layers × %d heads (%d kv heads): largest difference from the materialised attention %.3g, from the float64 softmax %.3g", n, info.Layers, info.Heads, info.KVHeads, worstMat, worstExact)
			for _, bad := range [][6]int{{info.Layers, 0, 0, 1, 0, 1}, {0, info.Heads, 0, 1, 0, 1}, {0, 0, 0, n + 1, 0, 1}, {0, 0, 0, 1, -1, 1}, {0, 0, 5, 5, 0, 1}} {
				if _, err := tiles.Tile(bad[0], bad[1], bad[2], bad[3], bad[4], bad[5]); err == nil || !strings.Contains(err.Error(), "tile:") {
					t.Errorf("tile %v: error %v, want a tile error", bad, err)
				}
			}
		})
	}
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
// model is loaded or anything is written, for a family whose scores are not
// q·kᵀ/√head_dim (GPT-Neo: its published config, no weights needed), for
// sliding-window layers (tiny-qwen2 with use_sliding_window) and together with
// an intervention.
func TestQKRefusesUnsupported(t *testing.T) {
	neo := t.TempDir()
	raw, err := os.ReadFile(filepath.Join("..", "model", "testdata", "configs", "gpt-neo-125m.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(neo, "config.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	window, _ := longContextModel(t, "tiny-qwen2", 512)
	raw, err = os.ReadFile(filepath.Join(window, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["use_sliding_window"], cfg["sliding_window"], cfg["max_window_layers"] = true, 8, 1
	delete(cfg, "layer_types")
	raw, _ = json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(window, "config.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
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
		{"gpt-neo", Options{ModelDir: neo}, "the gpt_neo architecture's attention scores are not q·kᵀ/√head_dim"},
		{"window", Options{ModelDir: window}, "the qwen2 model uses sliding-window attention (a window of 8 keys on 2 of 3 layers)"},
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
