package derive

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/capture"
	"github.com/attnscope/attnscope/capture/capturetest"
	"github.com/attnscope/attnscope/store"
)

func deriveRun(t *testing.T, dir string, yaml string) error {
	t.Helper()
	r, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig("test.yaml", []byte(yaml), DefaultRegistry())
	if err != nil {
		t.Fatal(err)
	}
	_, err = Derive(context.Background(), r, cfg, Options{})
	return err
}

const qkPasses = `passes:
  - name: entropy
    input: attention
    function: attention_entropy
  - name: maxw
    input: attention
    function: attention_max_weight
  - name: received
    input: attention
    function: attention_received
`

// TestQKRunStreamsRowBlocks: attention_entropy, attention_max_weight and
// attention_received over a --store qk run (streamed in row blocks recomputed
// from queries and keys) equal the same passes over a full capture of the same
// text within 1e-6; attention_rollout works on a qk sample of up to
// store.MaxQKLayerTokens tokens (the layers materialised) and above that is
// refused with an error naming the limit, while the streamed passes still run.
func TestQKRunStreamsRowBlocks(t *testing.T) {
	text := strings.Repeat("def add(a, b):\n    return a + b\n", 40)
	model := capturetest.TinyLlama(t, 8192)
	full, qk := filepath.Join(t.TempDir(), "full"), filepath.Join(t.TempDir(), "qk")
	in := []capture.Input{{ID: "s", Text: text}}
	quiet := func(string) {}
	if _, err := capture.Run(context.Background(), full, in, capture.Options{ModelDir: model, Command: []string{"test"}, Info: quiet}); err != nil {
		t.Fatal(err)
	}
	if _, err := capture.Run(context.Background(), qk, in, capture.Options{ModelDir: model, QK: true, Command: []string{"test"}, Info: quiet}); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{full, qk} {
		if err := deriveRun(t, dir, qkPasses+"  - name: rollout\n    input: attention\n    function: compute_attention_rollout\n"); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
	}
	fr, _ := store.Open(full)
	qr, _ := store.Open(qk)
	for _, pass := range []string{"entropy", "maxw", "received", "rollout"} {
		want, err := fr.Derived(pass, "s")
		if err != nil {
			t.Fatal(err)
		}
		got, err := qr.Derived(pass, "s")
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Data) != len(want.Data) || len(got.Shape) != len(want.Shape) {
			t.Fatalf("%s: qk shape %v, full %v", pass, got.Shape, want.Shape)
		}
		worst := 0.0
		for i := range want.Data {
			worst = max(worst, math.Abs(got.Data[i]-want.Data[i]))
		}
		if worst > 1e-6 {
			t.Errorf("%s: qk run differs from the full run by %g", pass, worst)
		}
		t.Logf("%s %v: largest difference %.3g", pass, got.Shape, worst)
	}

	// Above the limit: rollout refused, streamed passes run.
	long := filepath.Join(t.TempDir(), "long")
	big := strings.Repeat("x = y + 1\n", store.MaxQKLayerTokens/4)
	if _, err := capture.Run(context.Background(), long, []capture.Input{{ID: "s", Text: big}}, capture.Options{ModelDir: model, QK: true, Command: []string{"test"}, Info: quiet}); err != nil {
		t.Fatal(err)
	}
	lr, _ := store.Open(long)
	s, err := lr.Sample("s")
	if err != nil {
		t.Fatal(err)
	}
	if s.QK.Tokens <= store.MaxQKLayerTokens {
		t.Fatalf("long sample has %d tokens, want more than %d", s.QK.Tokens, store.MaxQKLayerTokens)
	}
	err = deriveRun(t, long, "passes:\n  - name: rollout\n    input: attention\n    function: compute_attention_rollout\n")
	if err == nil || !strings.Contains(err.Error(), "only materialised up to") {
		t.Fatalf("rollout over %d tokens: error %v, want the size limit", s.QK.Tokens, err)
	}
	if testing.Short() {
		return
	}
	if err := deriveRun(t, long, qkPasses); err != nil {
		t.Fatal(err)
	}
	e, err := lr.Derived("received", "s")
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, v := range e.Data {
		total += v
	}
	// every row sums to 1, so each layer's received weights sum to N
	if want := float64(s.QK.Layers * s.QK.Tokens); math.Abs(total-want) > 1e-6*want {
		t.Errorf("received weights sum to %g, want %g", total, want)
	}
}
