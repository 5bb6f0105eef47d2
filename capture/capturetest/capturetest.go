// Package capturetest captures small runs for the tests of the packages that read
// them (derive, report, web).
package capturetest

import (
	"context"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/capture"
	"github.com/attnscope/attnscope/internal/refdata"
)

// Code is the text of the tiny-llama runs: a two-line Python function, repeated.
func Code(repeats int) string {
	return strings.Repeat("def add(a, b):\n    return a + b\n", repeats)
}

// TinyLlama links the reference tiny-llama into a folder whose config.json allows
// positions tokens (RoPE: the weights do not depend on the context) and returns it.
func TinyLlama(t testing.TB, positions int) string {
	t.Helper()
	return refdata.ModelWithConfig(t, "tiny-llama", func(cfg map[string]any) { cfg["max_position_embeddings"] = positions })
}

// Capture captures text as sample "s" with the model in modelDir into the run
// folder dir: with --store qk when qk is true, the attention materialised otherwise;
// the input is truncated on the right to the model's context.
func Capture(t testing.TB, modelDir, dir, text string, qk bool) {
	t.Helper()
	in := []capture.Input{{ID: "s", Text: text}}
	opts := capture.Options{ModelDir: modelDir, QK: qk, Truncate: "right", Command: []string{"test"}, Info: func(string) {}}
	if _, err := capture.Run(context.Background(), dir, in, opts); err != nil {
		t.Fatal(err)
	}
}
