package report

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/analysis"
	"github.com/attnscope/attnscope/analysis/code"
	"github.com/attnscope/attnscope/capture/capturetest"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

// TestLongQKFigures: a --store qk sample above store.MaxQKLayerTokens (tiny-llama,
// about 4,400 tokens) is drawn without its whole layer: the heatmap is max-pooled
// over blocks of k×k weights (each pooled value checked against the maximum of
// the block's tiles read with QKReader.Tile, for one head and the mean of heads),
// the received bars are the column sums (every layer's head mean sums to N),
// averaged over blocks of keys, the row entropies equal the exact rows', the code
// figure's row is the exact rows' head mean, a derived
// [layer, head, query] output is averaged over blocks of queries, and every figure
// names the pooling in its axis titles and labels its ticks by position ranges.
// The report notes the figures that need the whole attention and draws the rest.
func TestLongQKFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("captures about 4,400 tokens and recomputes every attention weight (about 10 CPU seconds); skipped with -short")
	}
	dir := filepath.Join(t.TempDir(), "run")
	capturetest.Capture(t, capturetest.TinyLlama(t, 4600), dir, capturetest.Code(380), true)
	run, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := run.Sample("s")
	if err != nil {
		t.Fatal(err)
	}
	if !LongSample(s) {
		t.Fatalf("sample of %d tokens is not long (limit %d)", len(s.Tokens), store.MaxQKLayerTokens)
	}
	n, L, H := s.QK.Tokens, s.QK.Layers, s.QK.Heads
	ctx := context.Background()
	p := newPooling(n, PoolSide)
	if p.K < 2 || p.Bins > PoolSide || (p.Bins-1)*p.K >= n || p.Bins*p.K < n {
		t.Fatalf("pooling %+v of %d tokens", p, n)
	}
	svgOf := svgText(t)
	contains := func(what, svg string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(svg, svgEscape(w)) {
				t.Errorf("%s: SVG lacks %q", what, w)
			}
		}
	}
	blocks := fmt.Sprintf("over blocks of %d tokens", p.K)
	last := fmt.Sprintf("%d–%d", (p.Bins-1)*p.K, n-1)
	svg := svgOf(HeatmapFigure(ctx, run, "s", L-1, MeanHeads, 0))
	contains("heatmap", svg, "Key (attended to) (max "+blocks+")", "Query (attending) (max "+blocks+")",
		fmt.Sprintf("%d tokens max-pooled to %d×%d", n, p.Bins, p.Bins), fmt.Sprintf("0–%d", p.K-1), "largest attention weight in the block")
	if strings.Contains(svg, ">0 0–") {
		t.Error("heatmap: position ticks prefixed by their index")
	}

	// Pooled values against the maximum of the blocks' tiles.
	q, err := run.OpenQK("s")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, head := range []int{1, MeanHeads} {
		ms, err := pooledLayer(ctx, q, "s", 1, head, p)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 1 || ms[0].Rows != p.Bins || ms[0].Cols != p.Bins {
			t.Fatalf("head %d: %d pooled matrices of %d×%d", head, len(ms), ms[0].Rows, ms[0].Cols)
		}
		for _, bc := range [][2]int{{0, 0}, {3, 1}, {p.Bins - 1, p.Bins - 1}, {p.Bins - 1, 0}, {p.Bins / 2, p.Bins / 3}, {2, 5}} {
			r0, r1 := bc[0]*p.K, min(n, (bc[0]+1)*p.K)
			c0, c1 := bc[1]*p.K, min(n, (bc[1]+1)*p.K)
			sum := make([]float64, (r1-r0)*(c1-c0))
			want := math.Inf(-1)
			for h := range H {
				if head >= 0 && h != head {
					continue
				}
				tile, err := q.Tile(1, h, r0, r1, c0, c1)
				if err != nil {
					t.Fatal(err)
				}
				for i, v := range tile.Data {
					if head >= 0 {
						want = max(want, v)
					} else {
						sum[i] += v / float64(H)
					}
				}
			}
			if head < 0 {
				for _, v := range sum {
					want = max(want, v)
				}
			}
			if got := ms[0].At(bc[0], bc[1]); math.Abs(got-want) > 1e-12 {
				t.Errorf("head %d block (%d, %d): pooled %g, tiles' maximum %g", head, bc[0], bc[1], got, want)
			}
		}
		if bc := ms[0].At(0, p.Bins-1); bc != 0 {
			t.Errorf("head %d: the block above the diagonal holds %g, want 0 (causal)", head, bc)
		}
	}

	// Received: every row of the head mean sums to 1.
	for l := range L {
		col, err := longColumnSums(ctx, run, "s", l, MeanHeads)
		if err != nil {
			t.Fatal(err)
		}
		total := 0.0
		for _, v := range col {
			total += v
		}
		if math.Abs(total-float64(n)) > 1e-9*float64(n) || len(col) != n {
			t.Errorf("layer %d: %d column sums totalling %g, want %d", l, len(col), total, n)
		}
	}
	contains("received", svgOf(ReceivedFigure(ctx, run, "s", L-1, MeanHeads)), "Key position (mean "+blocks+")", fmt.Sprintf("0–%d", p.K-1))

	// Row entropies and maxima against exact rows.
	ent, mx, err := RowStats(ctx, run, "s")
	if err != nil {
		t.Fatal(err)
	}
	if len(ent) != L*H*n || len(mx) != L*H*n {
		t.Fatalf("%d entropies, %d maxima, want %d", len(ent), len(mx), L*H*n)
	}
	for _, c := range [][3]int{{0, 0, 0}, {1, 2, 777}, {L - 1, H - 1, n - 1}} {
		row, err := q.ExactRow(c[0], c[1], c[2])
		if err != nil {
			t.Fatal(err)
		}
		e, _ := analysis.RowEntropy(row, analysis.EntropyShifted)
		k := (c[0]*H+c[1])*n + c[2]
		if math.Abs(ent[k]-e) > 1e-6 {
			t.Errorf("row %v: entropy %g, exact row %g", c, ent[k], e)
		}
		m := 0.0
		for _, v := range row {
			m = max(m, v)
		}
		if math.Abs(mx[k]-m-1e-10) > 1e-9 {
			t.Errorf("row %v: maximum %g, exact row %g", c, mx[k], m)
		}
	}

	// The code figure's weights: only the chosen row is computed (query 500, head
	// mean of the last layer), equal to the exact rows' mean.
	if _, w, _, err := CodeWeights(ctx, run, "s", -1, CodeQuery{Query: 500}, code.Replication); err != nil || len(w) == 0 {
		t.Fatalf("code weights of a long sample: %d weights, %v", len(w), err)
	}
	rows, err := longRowsMean(run, "s", L-1, []int{500})
	if err != nil {
		t.Fatal(err)
	}
	mean := make([]float64, n)
	for h := range H {
		row, err := q.ExactRow(L-1, h, 500)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range row {
			mean[k] += v / float64(H)
		}
	}
	for k := range mean {
		if math.Abs(rows[0][k]-mean[k]) > 1e-9 {
			t.Fatalf("row 500 key %d: head mean %g, exact rows' %g", k, rows[0][k], mean[k])
		}
	}

	// A derived [layer, head, query] output: queries averaged over blocks.
	d := tensor.New(L, H, n)
	for i := range d.Data {
		d.Data[i] = float64(i % n)
	}
	pass := store.PassInfo{Name: "pos", PassSettings: store.PassSettings{Axes: []store.Axis{{Name: store.AxisLayer}, {Name: store.AxisHead}, {Name: store.AxisQuery}}}}
	c, err := SampleAxisContext(run, "s")
	if err != nil {
		t.Fatal(err)
	}
	if c.Heads != H || c.Layers != L {
		t.Errorf("axis context %d layers, %d heads, want %d, %d", c.Layers, c.Heads, L, H)
	}
	v, err := NewDerivedView(pass, "s", d, c, DefaultSelection) // heads × queries of the last layer
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind != ViewHeatmap || v.Matrix.Rows != H || v.Matrix.Cols != p.Bins || v.XTitle != AxisTitle(store.AxisQuery)+" (mean "+blocks+")" || v.XTicks[p.Bins-1] != last {
		t.Fatalf("derived view %s of %d×%d, x %q, last tick %q", v.Kind, v.Matrix.Rows, v.Matrix.Cols, v.XTitle, v.XTicks[len(v.XTicks)-1])
	}
	if want := float64(p.K-1) / 2; v.Matrix.At(0, 0) != want {
		t.Errorf("first pooled query %g, want the mean of 0..%d, %g", v.Matrix.At(0, 0), p.K-1, want)
	}
	if want := float64((p.Bins-1)*p.K+n-1) / 2; v.Matrix.At(H-1, p.Bins-1) != want {
		t.Errorf("last pooled query %g, want the mean of the last block, %g", v.Matrix.At(H-1, p.Bins-1), want)
	}
	contains("derived", svgOf(v.Figure(0)), v.XTitle, fmt.Sprintf("0–%d", p.K-1))
	one := store.PassInfo{Name: "pos", PassSettings: store.PassSettings{Axes: []store.Axis{{Name: store.AxisKey}}}}
	bars, err := NewDerivedView(one, "s", &tensor.Tensor{Shape: []int{n}, Data: d.Data[:n]}, c, DefaultSelection)
	if err != nil {
		t.Fatal(err)
	}
	if bars.Kind != ViewBars || len(bars.Values) != p.Bins || bars.Values[1] != float64(p.K)+float64(p.K-1)/2 || bars.XTitle != AxisTitle(store.AxisKey)+" (mean "+blocks+")" {
		t.Errorf("derived [key] view %s of %d values (second %g), x %q", bars.Kind, len(bars.Values), bars.Values[1], bars.XTitle)
	}

	// The whole report.
	var html bytes.Buffer
	if err := WriteHTML(ctx, &html, run, HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"All heads", "Attention received, layer", "Entropy and maximum weight", "Crispiness of every head", "only materialised up to"} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
