package report

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/store/storetest"
	"github.com/attnscope/attnscope/viz"
)

// TestWindowFiguresQKvsFull: a window of tiny-llama's attention of a 700-token
// sample (rows 600:680 × keys 0:300, weight by weight; rows 0:700 × keys 100:160,
// max-pooled over blocks of 2 rows) read from a --store qk run (recomputed from its
// queries, keys and log-sum-exps) equals the same window of a full capture of the
// same model and text within 1e-6, for every head and the mean of heads; the full
// run's window equals the slice of its whole layer exactly and the pooled window the
// block maxima of that slice. The heatmap and the all-heads grid of the window
// render to the same PNG bytes from both runs; the heatmap's title names the window
// and its tick labels are the window's tokens prefixed by their real positions
// (thinned) or the pooled blocks' position ranges.
func TestWindowFiguresQKvsFull(t *testing.T) {
	runs := fullAndQKRuns(t, 700, 70)
	s, err := runs["qk"].Sample("s")
	if err != nil || s.QK == nil || s.QK.Tokens != 700 {
		t.Fatalf("qk sample: %+v, %v; 700 tokens expected", s, err)
	}
	ctx := context.Background()
	const layer = 1
	whole, err := runs["full"].AttentionLayer("s", layer)
	if err != nil {
		t.Fatal(err)
	}
	H, n := whole.Shape[0], whole.Shape[1]
	at := func(h, i, j int) float64 { return whole.Data[(h*n+i)*n+j] }
	for _, c := range []struct {
		rows, cols store.Span
		k          int // the rows' pooling
	}{{store.Span{From: 600, To: 680}, store.Span{From: 0, To: 300}, 1}, {store.Span{From: 0, To: 700}, store.Span{From: 100, To: 160}, 2}} {
		for _, head := range []int{0, 1, 2, 3, MeanHeads} {
			var v [2]*windowView
			for k, name := range []string{"full", "qk"} {
				src, err := runs[name].OpenWindows("s")
				if err != nil {
					t.Fatal(err)
				}
				v[k], err = windowMatrices(ctx, src, "s", layer, head, c.rows, c.cols, PoolSide)
				src.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
			m := v[0].ms[0]
			what := fmt.Sprintf("rows %v × cols %v, %s", c.rows, c.cols, headName(head))
			if v[0].pr.K != c.k || v[0].pc.K != 1 || m.Rows != (c.rows.Len()+c.k-1)/c.k || m.Cols != c.cols.Len() {
				t.Fatalf("%s: %d×%d matrix pooled by %d×%d", what, m.Rows, m.Cols, v[0].pr.K, v[0].pc.K)
			}
			// The full run's window: the block maxima of its layer's slice.
			for b := range m.Rows {
				for j := range m.Cols {
					want := math.Inf(-1)
					for i := c.rows.From + b*c.k; i < min(c.rows.To, c.rows.From+(b+1)*c.k); i++ {
						w := 0.0
						if head >= 0 {
							w = at(head, i, c.cols.From+j)
						} else {
							for h := range H {
								w += at(h, i, c.cols.From+j)
							}
							w /= float64(H)
						}
						want = max(want, w)
					}
					if got := m.At(b, j); math.Abs(got-want) > 1e-15 {
						t.Fatalf("%s: full run's window [%d, %d] = %.9g, its layer's slice %.9g", what, b, j, got, want)
					}
					if d := math.Abs(v[1].ms[0].At(b, j) - want); d > 1e-6 {
						t.Fatalf("%s: qk run's window [%d, %d] = %.9g, full run's %.9g", what, b, j, v[1].ms[0].At(b, j), want)
					}
				}
			}
		}
	}
	// The grid's thumbnails: every layer and head of the window, the same from both
	// runs within 1e-6.
	rows, cols := store.Span{From: 600, To: 680}, store.Span{From: 0, To: 300}
	var thumbs [2][]viz.Matrix
	for k, name := range []string{"full", "qk"} {
		src, err := runs[name].OpenWindows("s")
		if err != nil {
			t.Fatal(err)
		}
		L, _, _, _ := src.Shape()
		for l := range L {
			v, err := windowMatrices(ctx, src, "s", l, allHeads, rows, cols, gridThumb)
			if err != nil {
				t.Fatal(err)
			}
			thumbs[k] = append(thumbs[k], v.ms...)
		}
		src.Close()
	}
	if len(thumbs[0]) != 3*H || len(thumbs[1]) != len(thumbs[0]) {
		t.Fatalf("grid: %d and %d thumbnails, want %d", len(thumbs[0]), len(thumbs[1]), 3*H)
	}
	for u := range thumbs[0] {
		for i, want := range thumbs[0][u].Data {
			if d := math.Abs(thumbs[1][u].Data[i] - want); d > 1e-6 {
				t.Fatalf("grid thumbnail %d value %d: qk run %.9g, full run %.9g", u, i, thumbs[1][u].Data[i], want)
			}
		}
	}
	// The figures' pixels: the heatmap's PNG bytes are equal; the grid scales each
	// head by its maximum, so a weight's 1e-6 can move its colour across one 8-bit
	// step of the colour map and one more where the thumbnail is resampled: at most
	// 2 levels a channel.
	for _, f := range []struct {
		name  string
		fig   func(Run) (*viz.Figure, error)
		level int
	}{
		{"heatmap", func(r Run) (*viz.Figure, error) { return WindowHeatmapFigure(ctx, r, "s", layer, 2, rows, cols, 0) }, 0},
		{"grid", func(r Run) (*viz.Figure, error) { return WindowGridFigure(ctx, r, "s", rows, cols, 0) }, 2},
	} {
		var img [2]image.Image
		var raw [2][]byte
		for k, name := range []string{"full", "qk"} {
			fig, err := f.fig(runs[name])
			if err != nil {
				t.Fatalf("%s of the %s run: %v", f.name, name, err)
			}
			var b bytes.Buffer
			if err := fig.WriteTo(&b, viz.PNG); err != nil {
				t.Fatal(err)
			}
			raw[k] = b.Bytes()
			if img[k], err = png.Decode(&b); err != nil {
				t.Fatal(err)
			}
		}
		if img[0].Bounds() != img[1].Bounds() {
			t.Fatalf("%s: %v and %v images", f.name, img[0].Bounds(), img[1].Bounds())
		}
		worst, count := 0, 0
		for y := img[0].Bounds().Min.Y; y < img[0].Bounds().Max.Y; y++ {
			for x := img[0].Bounds().Min.X; x < img[0].Bounds().Max.X; x++ {
				r0, g0, b0, _ := img[0].At(x, y).RGBA()
				r1, g1, b1, _ := img[1].At(x, y).RGBA()
				if d := max(absDiff(r0, r1), absDiff(g0, g1), absDiff(b0, b1)) >> 8; d > 0 {
					count++
					worst = max(worst, d)
				}
			}
		}
		if worst > f.level || (f.level == 0 && !bytes.Equal(raw[0], raw[1])) {
			t.Errorf("%s of the window: %d pixels of the qk run's PNG differ from the full run's, by up to %d levels (at most %d expected)", f.name, count, worst, f.level)
		}
	}
	svg := svgText(t)(WindowHeatmapFigure(ctx, runs["qk"], "s", layer, 2, rows, cols, 0))
	want := []string{"s: layer 1, head 2, queries 600:680 × keys 0:300 of 700×700", "Query (attending)", "Key (attended to)",
		label("600 " + viz.TokenLabel(s.Tokens[600])), label("675 " + viz.TokenLabel(s.Tokens[675])), label("0 " + viz.TokenLabel(s.Tokens[0]))}
	hasAll(t, "window heatmap", svg, want...)
	if s.Tokens[600] == s.Tokens[0] {
		t.Fatalf("token 600 is token 0 (%q): no way to tell the rows' numbering", s.Tokens[0])
	}
	for _, bad := range []string{label("0 " + viz.TokenLabel(s.Tokens[600])), "max over blocks"} {
		if strings.Contains(svg, bad) {
			t.Errorf("window heatmap: SVG holds %q (rows numbered from 0, or pooled)", bad)
		}
	}
	pooled := svgText(t)(WindowHeatmapFigure(ctx, runs["qk"], "s", layer, MeanHeads, store.Span{From: 0, To: 700}, store.Span{From: 100, To: 160}, 0))
	hasAll(t, "pooled window heatmap", pooled, "queries 0:700 × keys 100:160 of 700×700, max-pooled to 350×60",
		"Query (attending) (max over blocks of 2 tokens)", label("0–1"), label("10–11"), label("100"), label("159"), "largest attention weight in the block")
	small := svgText(t)(WindowHeatmapFigure(ctx, runs["full"], "s", layer, 0, store.Span{From: 650, To: 660}, store.Span{From: 640, To: 652}, 0))
	want = []string{"queries 650:660 × keys 640:652"}
	for i := 640; i < 660; i++ { // ten rows and twelve columns: every token, unnumbered
		want = append(want, label(viz.TokenLabel(s.Tokens[i])))
	}
	hasAll(t, "small window heatmap", small, want...)
}

// svgText returns a figure as SVG text.
func svgText(t *testing.T) func(*viz.Figure, error) string {
	return func(f *viz.Figure, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := f.WriteTo(&b, viz.SVG); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
}

// hasAll checks that the SVG holds every text of want (a whole label when it is
// written as label(...)).
func hasAll(t *testing.T, what, svg string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(svg, w) && !strings.Contains(svg, svgEscape(w)) {
			t.Errorf("%s: SVG lacks %q", what, w)
		}
	}
}

// label is a whole text element of an SVG: a tick label.
func label(s string) string { return ">" + svgEscape(s) + "</text>" }

// writeLongQKRun writes a run of one --store qk sample "s" of n tokens (one layer,
// 2 heads over 1 kv head, head_dim 4, causal) whose weights have a closed form:
// every query is (1, 0, 0, 0), so query i's scores are k[j][0]·scale for j ≤ i and
// its log-sum-exp a running sum over the keys (exact in O(n)); weight(h, i, j) =
// exp(s_j − lse_i) for both heads. It returns the run and the scores.
func writeLongQKRun(t testing.TB, dir string, n int) (*store.Run, []float64) {
	t.Helper()
	const heads, hd = 2, 4
	rng := rand.New(rand.NewPCG(7, 11))
	q, k := make([]float32, heads*n*hd), make([]float32, n*hd)
	scores := make([]float64, n)
	for i := range n {
		q[i*hd], q[(n+i)*hd] = 1, 1
		k[i*hd] = float32(3 * rng.NormFloat64())
		k[i*hd+1+i%3] = float32(rng.NormFloat64()) // met by the zero query components
		scores[i] = float64(k[i*hd]) / 2           // scale 1/√4
	}
	lse := make([]float64, heads*n)
	m, sum := math.Inf(-1), 0.0
	for i, s := range scores {
		if s > m {
			sum, m = sum*math.Exp(m-s), s
		}
		sum += math.Exp(s - m)
		for h := range heads {
			lse[h*n+i] = m + math.Log(sum)
		}
	}
	return storetest.WriteQKRun(t, dir, heads, 1, n, hd, []storetest.QKLayer{{Q: q, K: k, LSE: lse}}), scores
}

// TestWindowOfLongQKSample: on a 32,768-token --store qk sample (weights of a closed
// form, writeLongQKRun) the window of queries 30000:30200 × keys 29900:30300 is drawn
// weight by weight, each equal to exp(s_j − lse_i) within 1e-9 (0 above the
// diagonal), ticks numbered by the real positions; a window outside the matrix is
// refused naming the sample, its size and the expected range.
func TestWindowOfLongQKSample(t *testing.T) {
	const n = 32768
	run, scores := writeLongQKRun(t, filepath.Join(t.TempDir(), "run"), n)
	ctx := context.Background()
	rows, cols := store.Span{From: 30000, To: 30200}, store.Span{From: 29900, To: 30300}
	src, err := run.OpenWindows("s")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// Each row's log-sum-exp from its definition, in float64 (the window's rows only).
	lse := make([]float64, n)
	for i := rows.From; i < rows.To; i++ {
		mx := math.Inf(-1)
		for _, s := range scores[:i+1] {
			mx = max(mx, s)
		}
		sum := 0.0
		for _, s := range scores[:i+1] {
			sum += math.Exp(s - mx)
		}
		lse[i] = mx + math.Log(sum)
	}
	for _, head := range []int{0, 1, MeanHeads} {
		v, err := windowMatrices(ctx, src, "s", 0, head, rows, cols, PoolSide)
		if err != nil {
			t.Fatal(err)
		}
		got := v.ms[0]
		if v.pooled() || got.Rows != 200 || got.Cols != 400 {
			t.Fatalf("window %d×%d, pooled %v", got.Rows, got.Cols, v.pooled())
		}
		for a := range got.Rows {
			for b := range got.Cols {
				i, j := rows.From+a, cols.From+b
				want := 0.0
				if j <= i {
					want = math.Exp(scores[j] - lse[i])
				}
				if d := math.Abs(got.At(a, b) - want); d > 1e-9 {
					t.Fatalf("%s weight (%d, %d): %.12g, want %.12g", headName(head), i, j, got.At(a, b), want)
				}
			}
		}
	}
	svg := svgText(t)(WindowHeatmapFigure(ctx, run, "s", 0, 1, rows, cols, 0))
	hasAll(t, "long window", svg, "s: layer 0, head 1, queries 30000:30200 × keys 29900:30300 of 32768×32768", label("30000"), label("30190"), label("29900"), label("30290"))
	if strings.Contains(svg, "max over blocks") || strings.Contains(svg, label("10")) {
		t.Error("long window: pooled, or ticks numbered from 0")
	}
	for _, c := range []struct {
		rows, cols store.Span
		want       string
	}{
		{store.Span{From: 40000, To: 40100}, store.Span{}, "--rows 40000:40100: sample s has 32768 query positions (a 32768×32768 attention matrix), so a range A:B with 0 ≤ A < B ≤ 32768 is expected"},
		{store.Span{From: 0, To: 10}, store.Span{From: 32760, To: 32769}, "--cols 32760:32769: sample s has 32768 key positions"},
	} {
		_, err := WindowHeatmapFigure(ctx, run, "s", 0, 0, c.rows, c.cols, 0)
		if !IsOptionError(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("rows %v × cols %v: error %v, want an option error %q", c.rows, c.cols, err, c.want)
		}
	}
}

func absDiff(a, b uint32) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}
