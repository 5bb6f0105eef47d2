package capture

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/attnscope/attnscope/store"
)

// TestWindowLongerThanContext: a sliding window longer than the context (as
// Phi-4-mini-instruct publishes: sliding_window 262144 with 131072 positions)
// is full attention, as in transformers, not an error: a Mistral-shaped model
// with sliding_window 1000 and 256 positions captures exactly the attention of
// the same weights with sliding_window null, while a window of 16 changes it.
func TestWindowLongerThanContext(t *testing.T) {
	text := longText(400)
	base := map[string]any{"hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
		"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "max_position_embeddings": 256}
	capture := func(window any) *store.Run {
		set := map[string]any{"sliding_window": window}
		for k, v := range base {
			set[k] = v
		}
		dir := randomLongModel(t, "Mistral-7B-v0.1.json", set)
		out := filepath.Join(t.TempDir(), "run")
		o := Options{ModelDir: dir, Truncate: "right", Command: []string{"test"}, Info: func(string) {}}
		if _, err := Run(context.Background(), out, []Input{{ID: "s", Text: text}}, o); err != nil {
			t.Fatalf("sliding_window %v: %v", window, err)
		}
		r, err := store.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	full, long, short := capture(nil), capture(1000), capture(16)
	differs := false
	for l := range 2 {
		a, err := full.AttentionLayer("s", l)
		if err != nil {
			t.Fatal(err)
		}
		b, err := long.AttentionLayer("s", l)
		if err != nil {
			t.Fatal(err)
		}
		c, err := short.AttentionLayer("s", l)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Data) != 4*256*256 {
			t.Fatalf("layer %d: %d weights, want 4 heads of 256×256 (the text fills the context)", l, len(a.Data))
		}
		for i := range a.Data {
			if a.Data[i] != b.Data[i] {
				t.Fatalf("layer %d, weight %d: %g with a window longer than the context, %g with none", l, i, b.Data[i], a.Data[i])
			}
			differs = differs || a.Data[i] != c.Data[i]
		}
	}
	if !differs {
		t.Error("a window of 16 gave the attention of full attention: the window was not applied")
	}
}
