package report

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/attnscope/attnscope/analysis"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
	"github.com/attnscope/attnscope/viz"
)

// Long samples: a sample captured with --store qk above store.MaxQKLayerTokens tokens
// has no whole attention layer to read (AttentionLayer refuses it). Its figures are
// computed row block by row block from the recomputed tiles (store.QKReader) and a
// token axis is pooled to at most PoolSide entries: attention matrices by the maximum
// over blocks of k×k weights (a sharp weight stays visible), per-token series by the
// mean over blocks of k tokens. The axis titles say what was pooled. Memory stays at
// one row block (at most blockBytes) plus the pooled result and the layer's queries
// and keys (store.QKReader).

// PoolSide is the most entries a pooled token axis has.
const PoolSide = 512

// LongSample reports whether s is a --store qk sample whose whole attention layer is
// not materialised (more than store.MaxQKLayerTokens tokens).
func LongSample(s *store.Sample) bool {
	return s != nil && s.QK != nil && s.QK.Tokens > store.MaxQKLayerTokens
}

// pooling cuts a token axis of N positions from Start into Bins blocks of K
// positions (the last block shorter when K does not divide N).
type pooling struct{ Start, N, K, Bins int }

func newPooling(n, side int) pooling { return spanPooling(store.Span{From: 0, To: n}, side) }

// spanPooling pools the positions of span s to at most side blocks.
func spanPooling(s store.Span, side int) pooling {
	n := s.Len()
	k := max(1, (n+side-1)/side)
	return pooling{Start: s.From, N: n, K: k, Bins: (n + k - 1) / k}
}

// ticks labels each block by its first and last position, "0–11".
func (p pooling) ticks() []string {
	out := make([]string, p.Bins)
	for b := range out {
		out[b] = fmt.Sprintf("%d–%d", p.Start+b*p.K, p.Start+min(p.N, (b+1)*p.K)-1)
	}
	return out
}

// title appends to an axis title what the pooling did, e.g. "(max over blocks of
// 12 tokens)".
func (p pooling) title(axis, how string) string {
	if p.K == 1 {
		return axis
	}
	return fmt.Sprintf("%s (%s over blocks of %d tokens)", axis, how, p.K)
}

// meanPool is the mean of v over the blocks of p.
func (p pooling) meanPool(v []float64) []float64 {
	out := make([]float64, p.Bins)
	for b := range out {
		blk := v[b*p.K : min(len(v), (b+1)*p.K)]
		for _, x := range blk {
			out[b] += x
		}
		out[b] /= float64(len(blk))
	}
	return out
}

type qkOpener interface {
	OpenQK(id string) (*store.QKReader, error)
}

// openQK opens a long sample's queries and keys.
func openQK(run Run, id string) (*store.QKReader, error) {
	o, ok := run.(qkOpener)
	if !ok {
		return nil, fmt.Errorf("sample %s of run %s was captured with --store qk, and this run cannot read its queries and keys", id, run.Dir())
	}
	return o.OpenQK(id)
}

// checkLayer checks a layer index against a long sample's layers.
func checkLayer(info store.TensorsInfo, id string, layer int) error {
	if layer < 0 || layer >= info.Layers {
		return fmt.Errorf("layer %d out of range: sample %s has layers 0..%d", layer, id, info.Layers-1)
	}
	return nil
}

// blockBytes bounds the row blocks of streamRows: heads × rows × tokens float64
// weights in at most 64 MiB (at least one row).
const blockBytes = 64 << 20

// blockRows is the number of rows of a row block of cols columns of every head.
func blockRows(heads, cols int) int {
	return max(1, blockBytes/(8*heads*cols))
}

// windowReader reads windows of every head of a layer (store.QKReader,
// store.AttentionWindows).
type windowReader interface {
	WindowInto(dst *tensor.Tensor, l int, w store.Window) error
}

// streamRows calls fn with every block of rows [r0, r1) of layer l, at most rows
// rows at a time, [heads, r1−r0, tokens] (the buffer is reused: fn must not keep it).
func streamRows(ctx context.Context, q *store.QKReader, l, rows int, fn func(r0, r1 int, blk *tensor.Tensor) error) error {
	info := q.Info()
	all := store.Span{From: 0, To: info.Tokens}
	return streamWindow(ctx, q, info.Heads, l, store.Window{Rows: all, Cols: all}, rows, fn)
}

// streamWindow calls fn with every block of rows [r0, r1) of window w of layer l,
// at most rows rows at a time, [heads, r1−r0, w's columns] (the buffer is reused:
// fn must not keep it).
func streamWindow(ctx context.Context, src windowReader, heads, l int, w store.Window, rows int, fn func(r0, r1 int, blk *tensor.Tensor) error) error {
	var buf *tensor.Tensor
	for r0 := w.Rows.From; r0 < w.Rows.To; r0 += rows {
		if err := ctx.Err(); err != nil {
			return err
		}
		r1 := min(w.Rows.To, r0+rows)
		if buf == nil || buf.Shape[1] != r1-r0 {
			buf = tensor.New(heads, r1-r0, w.Cols.Len())
		}
		if err := src.WindowInto(buf, l, store.Window{Rows: store.Span{From: r0, To: r1}, Cols: w.Cols}); err != nil {
			return err
		}
		if err := fn(r0, r1, buf); err != nil {
			return err
		}
	}
	return nil
}

// allHeads selects every head of a layer in pooledLayer.
const allHeads = math.MinInt

// pooledLayer max-pools layer l of a long sample to p.Bins × p.Bins: one matrix per
// head (head == allHeads), head's, or the reduction's of the heads (head < 0,
// MeanHeads...), reduced before pooling.
func pooledLayer(ctx context.Context, q *store.QKReader, id string, l, head int, p pooling) ([]viz.Matrix, error) {
	info := q.Info()
	if err := checkLayer(info, id, l); err != nil {
		return nil, err
	}
	all := store.Span{From: 0, To: info.Tokens}
	return pooledWindow(ctx, q, info.Heads, id, l, head, store.Window{Rows: all, Cols: all}, p, p)
}

// pooledWindow max-pools window w of layer l (heads heads) to pr.Bins × pc.Bins
// (pr pools w.Rows, pc w.Cols; K = 1 keeps the weights as they are): one matrix per
// head (head == allHeads), head's, or the reduction's of the heads (head < 0,
// MeanHeads...), reduced before pooling. It reads w row block by row block.
func pooledWindow(ctx context.Context, src windowReader, heads int, id string, l, head int, w store.Window, pr, pc pooling) ([]viz.Matrix, error) {
	if head != allHeads && (head >= heads || -1-head >= len(Reductions)) {
		return nil, fmt.Errorf("head %d out of range: the layer has heads 0..%d", head, heads-1)
	}
	count := 1
	if head == allHeads {
		count = heads
	}
	out := make([]viz.Matrix, count)
	for i := range out {
		out[i] = viz.Matrix{Rows: pr.Bins, Cols: pc.Bins, Data: make([]float64, pr.Bins*pc.Bins)}
		for j := range out[i].Data {
			out[i].Data[j] = math.Inf(-1)
		}
	}
	n := w.Cols.Len()
	err := streamWindow(ctx, src, heads, l, w, blockRows(heads, n), func(r0, r1 int, blk *tensor.Tensor) error {
		if err := checkFinite(blk, id, l, r0, w.Cols.From); err != nil {
			return err
		}
		sel := blk
		if head < 0 && head != allHeads {
			r, err := reduceAxis(blk, 0, Reductions[-1-head])
			if err != nil {
				return err
			}
			sel = &tensor.Tensor{Shape: append([]int{1}, r.Shape...), Data: r.Data}
		} else if head >= 0 {
			sel = &tensor.Tensor{Shape: []int{1, r1 - r0, n}, Data: blk.Sub(head).Data}
		}
		for m := range out {
			rows := sel.Data[m*(r1-r0)*n : (m+1)*(r1-r0)*n]
			for i := range r1 - r0 {
				b := (r0 + i - pr.Start) / pr.K
				dst := out[m].Data[b*pc.Bins : (b+1)*pc.Bins]
				for j, v := range rows[i*n : (i+1)*n] {
					if c := j / pc.K; v > dst[c] {
						dst[c] = v
					}
				}
			}
		}
		return nil
	})
	return out, err
}

// checkFinite checks a block [heads, rows, cols] of layer l whose first weight is
// row r0, column c0.
func checkFinite(blk *tensor.Tensor, id string, l, r0, c0 int) error {
	R, C := blk.Shape[1], blk.Shape[2]
	for k, v := range blk.Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("sample %s layer %d head %d row %d column %d: attention is %v", id, l, k/(R*C), r0+k%(R*C)/C, c0+k%C, v)
		}
	}
	return nil
}

// longHeatmap draws a long sample's layer and head (or reduction) max-pooled.
func longHeatmap(ctx context.Context, run Run, s *store.Sample, id string, layer, head int, clip float64) (*viz.Figure, error) {
	q, err := openQK(run, id)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	p := newPooling(s.QK.Tokens, PoolSide)
	ms, err := pooledLayer(ctx, q, id, layer, head, p)
	if err != nil {
		return nil, err
	}
	ticks := p.ticks()
	return viz.Heatmap(ms[0], viz.HeatmapOptions{
		Title:     fmt.Sprintf("%s: layer %d, %s, %d tokens max-pooled to %d×%d", id, layer, headName(head), p.N, p.Bins, p.Bins),
		XLabel:    p.title("Key (attended to)", "max"),
		YLabel:    p.title("Query (attending)", "max"),
		RowLabels: ticks, ColLabels: ticks, ClipPercentile: clip,
		ColorbarLabel: "largest attention weight in the block", PositionTicks: true,
	})
}

// longGrid draws every layer and head of a long sample, each max-pooled to at most
// gridThumb × gridThumb.
func longGrid(ctx context.Context, run Run, s *store.Sample, id string, clip float64) (*viz.Figure, error) {
	q, err := openQK(run, id)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	p := newPooling(s.QK.Tokens, gridThumb)
	units := make([][]viz.Matrix, s.QK.Layers)
	for l := range units {
		if units[l], err = pooledLayer(ctx, q, id, l, allHeads, p); err != nil {
			return nil, err
		}
	}
	return viz.Grid(units, viz.GridOptions{Title: fmt.Sprintf("%s: all heads (rows: layers, columns: heads), %d tokens max-pooled over blocks of %d", id, p.N, p.K), ClipPercentile: clip})
}

// longReceived draws the attention each key of a long sample receives in one layer
// (longColumnSums), the keys averaged over blocks.
func longReceived(ctx context.Context, run Run, id string, layer, head int) (*viz.Figure, error) {
	col, err := longColumnSums(ctx, run, id, layer, head)
	if err != nil {
		return nil, err
	}
	p := newPooling(len(col), PoolSide)
	return viz.Bars(p.meanPool(col), p.ticks(), viz.BarsOptions{
		Title:  fmt.Sprintf("%s: attention received, layer %d, %s (%d keys, mean over blocks of %d)", id, layer, headName(head), len(col), p.K),
		XLabel: p.title("Key position", "mean"),
		YLabel: "Attention received (column sum)", PositionTicks: true,
	})
}

// longColumnSums returns the column sums of one layer's head (or head reduction)
// of a long sample, [tokens], summed row block by row block.
func longColumnSums(ctx context.Context, run Run, id string, layer, head int) ([]float64, error) {
	q, err := openQK(run, id)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	info := q.Info()
	if err := checkLayer(info, id, layer); err != nil {
		return nil, err
	}
	if head >= info.Heads || (head < 0 && -1-head >= len(Reductions)) {
		return nil, fmt.Errorf("head %d out of range: the layer has heads 0..%d", head, info.Heads-1)
	}
	n := info.Tokens
	col := make([]float64, n)
	err = streamRows(ctx, q, layer, blockRows(info.Heads, info.Tokens), func(r0, r1 int, blk *tensor.Tensor) error {
		src := blk.Data
		if head >= 0 {
			src = blk.Sub(head).Data
		} else {
			r, err := reduceAxis(blk, 0, Reductions[-1-head])
			if err != nil {
				return err
			}
			src = r.Data
		}
		for i := range r1 - r0 {
			for j, v := range src[i*n : (i+1)*n] {
				col[j] += v
			}
		}
		return nil
	})
	return col, err
}

// longRowStats is RowStats of a long sample, every row's entropy and maximum
// weight computed row block by row block.
func longRowStats(ctx context.Context, run Run, id string) (entropy, maxWeight []float64, err error) {
	q, err := openQK(run, id)
	if err != nil {
		return nil, nil, err
	}
	defer q.Close()
	info := q.Info()
	H, n := info.Heads, info.Tokens
	entropy = make([]float64, info.Layers*H*n)
	maxWeight = make([]float64, len(entropy))
	for l := range info.Layers {
		err := streamRows(ctx, q, l, blockRows(info.Heads, info.Tokens), func(r0, r1 int, blk *tensor.Tensor) error {
			for h := range H {
				for i := range r1 - r0 {
					row := blk.Data[(h*(r1-r0)+i)*n : (h*(r1-r0)+i+1)*n]
					k := (l*H+h)*n + r0 + i
					entropy[k], _ = analysis.RowEntropy(row, analysis.EntropyShifted)
					maxWeight[k] = slices.Max(row) + 1e-10
				}
			}
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("sample %s layer %d: %w", id, l, err)
		}
	}
	return entropy, maxWeight, nil
}

// longRowsMean returns the head mean of the given rows of layer l of a long sample,
// one [tokens] row each.
func longRowsMean(run Run, id string, l int, rows []int) ([][]float64, error) {
	q, err := openQK(run, id)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	info := q.Info()
	if err := checkLayer(info, id, l); err != nil {
		return nil, err
	}
	out := make([][]float64, len(rows))
	for k, r := range rows {
		t, err := q.Rows(l, r, r+1)
		if err != nil {
			return nil, err
		}
		m, err := reduceAxis(t, 0, "mean")
		if err != nil {
			return nil, err
		}
		out[k] = m.Data
	}
	return out, nil
}

// errWhole is the error of a figure that needs a long sample's whole attention.
func errWhole(s *store.Sample, id, what string) error {
	return fmt.Errorf("sample %s was captured with --store qk at %d tokens; %s needs every weight of the attention at once, which is only materialised up to %d tokens", id, s.QK.Tokens, what, store.MaxQKLayerTokens)
}

// longTokenAxis reports whether axis a of n entries is a token axis (query, key,
// token) longer than store.MaxQKLayerTokens, with its pooling to PoolSide blocks.
func longTokenAxis(a store.Axis, n int) (pooling, bool) {
	switch a.Name {
	case store.AxisQuery, store.AxisKey, store.AxisToken:
		if n > store.MaxQKLayerTokens {
			return newPooling(n, PoolSide), true
		}
	}
	return pooling{}, false
}

// meanPoolAxis averages axis ax (0 or 1) of the matrix t over the blocks of p.
func meanPoolAxis(t *tensor.Tensor, ax int, p pooling) *tensor.Tensor {
	R, C := t.Shape[0], t.Shape[1]
	if ax == 1 {
		out := tensor.New(R, p.Bins)
		for r := range R {
			copy(out.Data[r*p.Bins:], p.meanPool(t.Data[r*C:(r+1)*C]))
		}
		return out
	}
	out := tensor.New(p.Bins, C)
	for b := range p.Bins {
		r0, r1 := b*p.K, min(R, (b+1)*p.K)
		for r := r0; r < r1; r++ {
			for c, x := range t.Data[r*C : (r+1)*C] {
				out.Data[b*C+c] += x / float64(r1-r0)
			}
		}
	}
	return out
}
