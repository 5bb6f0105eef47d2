package report

import (
	"bytes"
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/attnscope/attnscope/capture/capturetest"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/viz"
)

// TestQKRunFigures: report reads a --store qk sample through the store's tiles
// (Run.AttentionLayer recomputes each layer from queries, keys and
// log-sum-exps): the attention matrix of every layer and head and each row's
// maximum weight equal those of a full capture of the same model and text
// within 1e-6, each row's entropy differs by no more than the weights'
// differences move its terms, and the heatmap, received, entropy, JS and
// crispiness figures render to the same PNG bytes.
func TestQKRunFigures(t *testing.T) {
	runs := fullAndQKRuns(t, 300, 40)
	ctx := context.Background()
	if s, err := runs["qk"].Sample("s"); err != nil || s.QK == nil {
		t.Fatalf("the qk run's sample: %+v, %v", s, err)
	}
	worst := 0.0
	close := func(what string, got, want []float64) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d values from the qk run, %d from the full run", what, len(got), len(want))
		}
		for i := range want {
			d := math.Abs(got[i] - want[i])
			if d > 1e-6 || math.IsNaN(got[i]) != math.IsNaN(want[i]) {
				t.Fatalf("%s value %d: qk run %.9g, full run %.9g", what, i, got[i], want[i])
			}
			if !math.IsNaN(d) {
				worst = max(worst, d)
			}
		}
	}
	layers, err := runs["qk"].NumLayers("s")
	if err != nil || layers == 0 {
		t.Fatalf("qk run: %d layers, %v", layers, err)
	}
	// bound[(l·heads + h)·N + i]: Σ_j |f(w_qk) − f(w_full)| over row i, f the
	// shifted convention's term (w + 1e−10)·ln(w + 1e−10): how far the weights'
	// differences alone can move the row's entropy.
	var bound []float64
	f := func(w float64) float64 { a := w + 1e-10; return a * math.Log(a) }
	for l := range layers {
		for h := range 4 {
			var m [2]viz.Matrix
			for k, name := range []string{"full", "qk"} {
				if m[k], err = AttentionMatrix(ctx, runs[name], "s", l, h); err != nil {
					t.Fatal(err)
				}
			}
			close("attention matrix", m[1].Data, m[0].Data)
			for i := range m[0].Rows {
				b := 0.0
				for j := range m[0].Cols {
					b += math.Abs(f(m[1].Data[i*m[0].Cols+j]) - f(m[0].Data[i*m[0].Cols+j]))
				}
				bound = append(bound, b)
			}
		}
	}
	fe, fm, err := RowStats(ctx, runs["full"], "s")
	if err != nil {
		t.Fatal(err)
	}
	qe, qm, err := RowStats(ctx, runs["qk"], "s")
	if err != nil {
		t.Fatal(err)
	}
	if len(qe) != len(fe) || len(qe) != len(bound) {
		t.Fatalf("row entropy: %d rows from the qk run, %d from the full run, %d weight rows", len(qe), len(fe), len(bound))
	}
	for i := range fe {
		// A row's entropy sums N terms: the weights' differences (≤ 1e-6 each)
		// move it by up to bound[i], more than 1e-6 on long rows.
		if d := math.Abs(qe[i] - fe[i]); d > bound[i]+1e-12 {
			t.Fatalf("row entropy %d: qk run %.12g, full run %.12g, %.3g apart; the weights' differences explain %.3g", i, qe[i], fe[i], d, bound[i])
		}
	}
	close("row max weight", qm, fm)
	for _, c := range []struct {
		name string
		fig  func(Run) (*viz.Figure, error)
	}{
		{"heatmap", func(r Run) (*viz.Figure, error) { return HeatmapFigure(ctx, r, "s", 1, 2, 0) }},
		{"received", func(r Run) (*viz.Figure, error) { return ReceivedFigure(ctx, r, "s", 0, 1) }},
		{"entropy", func(r Run) (*viz.Figure, error) { return EntropyFigure(ctx, r, "s") }},
		{"js", func(r Run) (*viz.Figure, error) { return JSFigure(ctx, r, "s", true) }},
		{"crispiness", func(r Run) (*viz.Figure, error) { return CrispinessFigure(ctx, r, "s", false) }},
	} {
		var png [2]bytes.Buffer
		for k, name := range []string{"full", "qk"} {
			f, err := c.fig(runs[name])
			if err != nil {
				t.Fatalf("%s figure of the %s run: %v", c.name, name, err)
			}
			if err := f.WriteTo(&png[k], viz.PNG); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(png[0].Bytes(), png[1].Bytes()) {
			t.Errorf("%s figure: the qk run's PNG (%d bytes) differs from the full run's (%d bytes)", c.name, png[1].Len(), png[0].Len())
		}
	}
	t.Logf("%d layers: largest difference from the full capture %.3g", layers, worst)
}

// fullAndQKRuns captures capturetest.Code(repeats) as sample "s" with tiny-llama (a
// context of positions tokens) twice, with the attention materialised and with
// --store qk, and returns the runs by "full" and "qk".
func fullAndQKRuns(t *testing.T, positions, repeats int) map[string]*store.Run {
	t.Helper()
	model, root := capturetest.TinyLlama(t, positions), t.TempDir()
	runs := map[string]*store.Run{}
	for _, name := range []string{"full", "qk"} {
		dir := filepath.Join(root, name)
		capturetest.Capture(t, model, dir, capturetest.Code(repeats), name == "qk")
		r, err := store.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		runs[name] = r
	}
	return runs
}
