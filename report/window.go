package report

import (
	"context"
	"fmt"

	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/viz"
)

// Windows: FigureOptions.Rows × Cols of a layer's attention, read as a tile
// (store.AttentionWindows: recomputed from the queries, keys and log-sum-exps of a
// --store qk sample, only those rows read from a full capture), drawn weight by
// weight up to PoolSide positions a side (gridThumb for each grid thumbnail) and
// max-pooled above, row block by row block as the long samples' figures are.

func (o FigureOptions) windowed() bool {
	return o.Rows != (store.Span{}) || o.Cols != (store.Span{})
}

// windowOpener is a Run that reads windows of a sample's attention (*store.Run).
type windowOpener interface {
	OpenWindows(id string) (*store.AttentionWindows, error)
}

func openWindows(run Run, id string) (*store.AttentionWindows, error) {
	o, ok := run.(windowOpener)
	if !ok {
		return nil, fmt.Errorf("run %s cannot read windows of the attention of sample %s", run.Dir(), id)
	}
	return o.OpenWindows(id)
}

// sampleWindow is rows × cols (a zero Span: the whole axis) of sample id's
// queries × keys attention; a span outside it is an OptionError naming the sample,
// its size and what is expected.
func sampleWindow(id string, rows, cols store.Span, queries, keys int) (store.Window, error) {
	check := func(flag, what string, s *store.Span, n int) error {
		if *s == (store.Span{}) {
			*s = store.Span{From: 0, To: n}
			return nil
		}
		if s.From < 0 || s.To > n || s.From >= s.To {
			return optionErrorf("--%s %v: sample %s has %d %s positions (a %d×%d attention matrix), so a range A:B with 0 ≤ A < B ≤ %d is expected", flag, *s, id, n, what, queries, keys, n)
		}
		return nil
	}
	if err := check("rows", "query", &rows, queries); err != nil {
		return store.Window{}, err
	}
	if err := check("cols", "key", &cols, keys); err != nil {
		return store.Window{}, err
	}
	return store.Window{Rows: rows, Cols: cols}, nil
}

// windowView is a window of one layer, max-pooled to at most side positions a
// side: one matrix per head (head == allHeads), head's, or a reduction's of the
// heads (head < 0, MeanHeads...).
type windowView struct {
	ms     []viz.Matrix
	layer  int
	w      store.Window
	pr, pc pooling // of the window's rows and columns (K = 1: weight by weight)
	q, k   int     // the sample's query and key positions
}

// windowMatrices reads window rows × cols of layer (< 0: the last) of sample id.
func windowMatrices(ctx context.Context, src *store.AttentionWindows, id string, layer, head int, rows, cols store.Span, side int) (*windowView, error) {
	L, H, Q, K := src.Shape()
	if layer < 0 {
		layer = L - 1
	}
	if layer >= L {
		return nil, fmt.Errorf("layer %d out of range: sample %s has layers 0..%d", layer, id, L-1)
	}
	w, err := sampleWindow(id, rows, cols, Q, K)
	if err != nil {
		return nil, err
	}
	v := &windowView{layer: layer, w: w, pr: spanPooling(w.Rows, side), pc: spanPooling(w.Cols, side), q: Q, k: K}
	v.ms, err = pooledWindow(ctx, src, H, id, layer, head, w, v.pr, v.pc)
	return v, err
}

// pooled reports whether an axis of the window is pooled.
func (v *windowView) pooled() bool { return v.pr.K > 1 || v.pc.K > 1 }

// name says which window it is, "queries 30000:30200 × keys 0:500 of 32768×32768".
func (v *windowView) name() string {
	return fmt.Sprintf("queries %v × keys %v of %d×%d", v.w.Rows, v.w.Cols, v.q, v.k)
}

// WindowHeatmapFigure draws query positions rows × key positions cols (a zero Span:
// the whole axis) of one layer and head (or reduction of the heads) of a sample,
// weight by weight up to PoolSide positions a side and max-pooled above; the ticks
// are the window's tokens (thinned ones prefixed by their position), or its
// positions and pooled blocks' position ranges, and the title names the window.
func WindowHeatmapFigure(ctx context.Context, run Run, id string, layer, head int, rows, cols store.Span, clip float64) (*viz.Figure, error) {
	s, err := run.Sample(id)
	if err != nil {
		return nil, err
	}
	src, err := openWindows(run, id)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	v, err := windowMatrices(ctx, src, id, layer, head, rows, cols, PoolSide)
	if err != nil {
		return nil, err
	}
	w := v.w
	o := viz.HeatmapOptions{
		Title:          fmt.Sprintf("%s: layer %d, %s, %s", id, v.layer, headName(head), v.name()),
		XLabel:         v.pc.title("Key (attended to)", "max"),
		YLabel:         v.pr.title("Query (attending)", "max"),
		RowStart:       w.Rows.From,
		ColStart:       w.Cols.From,
		ClipPercentile: clip,
	}
	switch {
	case v.pooled():
		o.Title += fmt.Sprintf(", max-pooled to %d×%d", v.pr.Bins, v.pc.Bins)
		o.ColorbarLabel, o.PositionTicks = "largest attention weight in the block", true
		if v.pr.K > 1 {
			o.RowLabels = v.pr.ticks()
		}
		if v.pc.K > 1 {
			o.ColLabels = v.pc.ticks()
		}
	case len(s.Tokens) >= max(w.Rows.To, w.Cols.To):
		o.RowLabels, o.ColLabels = s.Tokens[w.Rows.From:w.Rows.To], s.Tokens[w.Cols.From:w.Cols.To]
	default:
		o.PositionTicks = true // numbered from RowStart and ColStart
	}
	if !v.pooled() && w.Rows.From == 0 && w.Cols.From == 0 && s.PromptLen > 0 && s.PromptLen < min(v.q, v.k) && s.PromptLen <= min(w.Rows.To, w.Cols.To) {
		o.PromptLen = s.PromptLen
	}
	return viz.Heatmap(v.ms[0], o)
}

// WindowGridFigure draws query positions rows × key positions cols (a zero Span: the
// whole axis) of every layer and head of a sample, each max-pooled to at most
// gridThumb a side.
func WindowGridFigure(ctx context.Context, run Run, id string, rows, cols store.Span, clip float64) (*viz.Figure, error) {
	src, err := openWindows(run, id)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	n, _, _, _ := src.Shape()
	units := make([][]viz.Matrix, n)
	var v *windowView
	for l := range units {
		if v, err = windowMatrices(ctx, src, id, l, allHeads, rows, cols, gridThumb); err != nil {
			return nil, err
		}
		units[l] = v.ms
	}
	title := fmt.Sprintf("%s: all heads (rows: layers, columns: heads), %s", id, v.name())
	if v.pooled() {
		title += fmt.Sprintf(", max-pooled over blocks of %d×%d tokens", v.pr.K, v.pc.K)
	}
	return viz.Grid(units, viz.GridOptions{Title: title, ClipPercentile: clip})
}
