package derive_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/attnscope/attnscope/capture"
	"github.com/attnscope/attnscope/derive"
	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/store"
)

// TestCaptureAndDeriveNewFamilies captures a text with queries, keys, values and
// hidden states from a random model of each family added with model/arch's
// generic runner (published configs, shrunk; a sliding window shorter than the
// text where the family has one) and runs every pass of derive-all.yaml on it.
func TestCaptureAndDeriveNewFamilies(t *testing.T) {
	if testing.Short() {
		t.Skip("captures and derives one sample per family; skipped with -short")
	}
	tok := refdata.Path(t, "tokenizers", "gpt2-bpe")
	small := map[string]any{"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "vocab_size": 4096}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range small {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	gptj := map[string]any{"n_embd": 128, "n_layer": 2, "vocab_size": 4096, "n_inner": 96, "rotary_dim": 4}
	cases := []struct {
		config string
		set    map[string]any
	}{
		{"Llama-3.2-1B.json", small},
		{"Mistral-7B-v0.1.json", with(map[string]any{"head_dim": 128, "sliding_window": 4})},
		{"gemma-2-2b.json", with(map[string]any{"sliding_window": 4})},
		{"gemma-2b.json", small},
		{"Phi-3-mini-4k-instruct.json", with(map[string]any{"head_dim": 96, "sliding_window": 4})},
		{"phi-2.json", with(map[string]any{"head_dim": 80})},
		{"gpt-neo-125m.json", map[string]any{"hidden_size": 96, "num_layers": 2, "vocab_size": 4096, "window_size": 4, "attention_types": []any{[]any{[]string{"global", "local"}, 1}}}},
		{"gpt-j-6b.json", gptj},
		{"codegen-350M-mono.json", gptj},
		{"roberta-base.json", with(map[string]any{"hidden_size": 96})},
	}
	all, err := derive.LoadConfig(filepath.Join("..", "configs", "derive-all.yaml"), derive.DefaultRegistry())
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		t.Run(c.config, func(t *testing.T) {
			dir := t.TempDir()
			b, err := os.ReadFile(filepath.Join("..", "model", "testdata", "configs", c.config))
			if err != nil {
				t.Fatal(err)
			}
			var cfg map[string]any
			if err := json.Unmarshal(b, &cfg); err != nil {
				t.Fatal(err)
			}
			for k, v := range c.set {
				cfg[k] = v
			}
			b, _ = json.Marshal(cfg)
			files := map[string][]byte{"config.json": b}
			for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
				if files[f], err = os.ReadFile(filepath.Join(tok, f)); err != nil {
					t.Fatal(err)
				}
			}
			for f, data := range files {
				if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := model.WriteRandomWeights(dir, uint64(i+1)); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "run")
			in := []capture.Input{{ID: "s", Text: "def add(a, b):\n    return a + b  # the sum of two numbers\n"}}
			if _, err := capture.Run(context.Background(), out, in, capture.Options{ModelDir: dir, Hidden: true, QKV: true, Strict: true}); err != nil {
				t.Fatal(err)
			}
			run, err := store.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			sum, err := derive.Derive(context.Background(), run, all, derive.Options{Workers: 1})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Computed != len(all.Passes) {
				t.Errorf("%d pass outputs computed, want %d", sum.Computed, len(all.Passes))
			}
		})
	}
}
