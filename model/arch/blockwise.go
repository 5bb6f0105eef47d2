package arch

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
)

// Blockwise selects the memory-bounded attention path of
// AttentionInputs.Attend: attention is
// computed over query blocks of QueryBlock rows and, within each, over key
// blocks of KeyBlock columns with a running maximum and sum (online softmax,
// Milakov & Gimelshein 2018; FlashAttention, Dao et al. 2022), so no layer ever
// holds more than one [B, heads, QueryBlock, KeyBlock] tile of scores. The
// mask is not a [T, C] matrix but key validity and causality: query i may
// attend key j when KeyValid[b, j] and (not Causal or j ≤ i).
type Blockwise struct {
	QueryBlock, KeyBlock int
	Causal               bool
	// KeyValid [B, C] bool marks the keys every query may see (padding hidden).
	KeyValid *Node
	// Window > 0 also hides key j from query i when j ≤ i − Window
	// (sliding-window attention, as the materialised mask of Config.Window):
	// key blocks wholly outside every row's window are skipped.
	Window int
}

// BlockwiseAttention computes softmax(s + mask)·v like AttentionWith with the
// scores s = q·kᵀ·scale, soft-capped to cap·tanh(s/cap) when opts.SoftCap > 0
// (scale opts.Scale, 0 meaning 1/√head_dim; grouped-query heads, q [B, heads,
// T, hd], k, v [B, kv_heads, C, hd], masked logits replaced by the lowest
// float32) without materialising the [T, C] scores: per query block it keeps
// the running row maximum m, the running sum l = Σ exp(s − m) and the
// unnormalised output, rescaling them by exp(m_old − m_new) when a key block
// raises the maximum (Dao et al. 2022, Algorithm 1). With Causal and no cache
// (C = T), key blocks right of a query block's last row are skipped, with a
// Window those left of its first row's window too. It returns the merged
// output [B, T, heads·hd] and each row's log-sum-exp lse = m + log l [B,
// heads, T] in float64, from which any entry of the pattern is exp(s − lse)
// with s computed in float64 (masked entries 0). The weights exp(s − m) are
// rounded to q's dtype for the product with v, or, with f64
// (AttentionInputs.Float64), multiplied with v in float64 and the output rounded
// once, as attention does with f64.
func BlockwiseAttention(q, k, v *Node, bw Blockwise, opts AttentionOptions, f64 bool) (out, lse *Node) {
	qd := q.Shape().Dimensions
	b, heads, t, hd := qd[0], qd[1], qd[2], qd[3]
	kvHeads, c := k.Shape().Dimensions[1], k.Shape().Dimensions[2]
	g := heads / kvHeads
	if bw.QueryBlock <= 0 || bw.KeyBlock <= 0 {
		panic(fmt.Sprintf("BlockwiseAttention: block sizes must be positive, got %d×%d", bw.QueryBlock, bw.KeyBlock))
	}
	scale := opts.Scale
	if scale == 0 {
		scale = 1 / math.Sqrt(float64(hd))
	}
	_, exp := math.Frexp(scale)
	preScale := math.Ldexp(0.5, exp) == scale
	if preScale && scale != 1 {
		q = MulScalar(q, scale)
	}
	gr := q.Graph()
	// Scores, running max and sum are float64 (from the float32 q and k), so that
	// the log-sum-exp is the one a float64 recomputation of a tile divides by. The
	// product with v is in pt: q's dtype, or float64 with f64, rounded once to q's
	// dtype, so that its output differs from attention's with f64 only where that
	// rounding does and a qk capture stores the next layers' queries and keys of
	// the full capture.
	dt, pt := q.DType(), q.DType() // ConvertDType to the same dtype is a no-op
	if f64 {
		pt = dtypes.Float64
	}
	q64, k64, vp := ConvertDType(q, dtypes.Float64), ConvertDType(k, dtypes.Float64), ConvertDType(v, pt)
	low := Scalar(gr, dtypes.Float64, -math.MaxFloat32)
	var outs, lses []*Node
	for qs := 0; qs < t; qs += bw.QueryBlock {
		qe := min(t, qs+bw.QueryBlock)
		bq := qe - qs
		qb := reshape(SliceAxis(q64, 2, AxisRange(qs, qe)), b, kvHeads, g*bq, hd)
		kEnd := c
		if bw.Causal && c == t {
			kEnd = qe
		}
		kStart := 0
		if bw.Window > 0 {
			// key j is visible from query qs (the block's first row) when j > qs − Window
			kStart = max(0, qs-bw.Window+1)
		}
		var m, l, acc *Node
		for ks := kStart; ks < kEnd; ks += bw.KeyBlock {
			ke := min(kEnd, ks+bw.KeyBlock)
			bk := ke - ks
			kb := SliceAxis(k64, 2, AxisRange(ks, ke))
			vb := SliceAxis(vp, 2, AxisRange(ks, ke))
			s := Dot(qb, kb).General([]int{3}, []int{0, 1}, []int{3}, []int{0, 1}) // [b, kv, g*bq, bk]
			if !preScale {
				s = MulScalar(s, scale)
			}
			s = reshape(s, b, heads, bq, bk)
			if opts.SoftCap > 0 {
				s = SoftCap(s, opts.SoftCap)
			}
			ok := SliceAxis(bw.KeyValid, 1, AxisRange(ks, ke)) // [b, bk]
			ok = BroadcastToDims(Reshape(ok, b, 1, 1, bk), b, heads, bq, bk)
			// key ks+j is visible from query qs+i when ks+j ≤ qs+i (causal) and
			// ks+j > qs+i − Window (window)
			var rel *Node // (ks+j) − (qs+i) [bq, bk]
			if (bw.Causal && ke-1 > qs) || (bw.Window > 0 && ks <= qe-1-bw.Window) {
				rows := Iota(gr, shapes.Make(dtypes.Int32, bq, bk), 0)
				cols := Iota(gr, shapes.Make(dtypes.Int32, bq, bk), 1)
				rel = Sub(AddScalar(cols, float64(ks-qs)), rows)
			}
			if bw.Causal && ke-1 > qs {
				causal := LessOrEqual(rel, ZerosLike(rel))
				ok = LogicalAnd(ok, BroadcastToDims(Reshape(causal, 1, 1, bq, bk), b, heads, bq, bk))
			}
			if bw.Window > 0 && ks <= qe-1-bw.Window {
				inside := GreaterThan(rel, Scalar(gr, dtypes.Int32, -bw.Window))
				ok = LogicalAnd(ok, BroadcastToDims(Reshape(inside, 1, 1, bq, bk), b, heads, bq, bk))
			}
			s = Where(ok, s, low)
			mb := ReduceAndKeep(s, ReduceMax, -1) // [b, heads, bq, 1]
			var alpha *Node
			if m == nil {
				m = mb
			} else {
				mNew := Max(m, mb)
				alpha = Exp(Sub(m, mNew))
				m = mNew
			}
			p := Exp(Sub(s, m))
			ps := ReduceAndKeep(p, ReduceSum, -1)
			pp := ConvertDType(p, pt)
			if alpha != nil {
				alpha = ConvertDType(alpha, pt)
			}
			pv := Dot(reshape(pp, b, kvHeads, g*bq, bk), vb).General([]int{3}, []int{0, 1}, []int{2}, []int{0, 1}) // [b, kv, g*bq, hd]
			pv = reshape(pv, b, heads, bq, hd)
			if alpha == nil {
				l, acc = ps, pv
			} else {
				l = Add(Mul(l, ConvertDType(alpha, dtypes.Float64)), ps)
				acc = Add(Mul(acc, alpha), pv)
			}
		}
		outs = append(outs, ConvertDType(Div(acc, ConvertDType(l, pt)), dt))
		// m + log l in float64: a float32 lse of magnitude ~20 alone would cost
		// 1e-6 relative error in every recomputed weight.
		lse64 := Add(m, Log(l))
		lses = append(lses, Reshape(lse64, b, heads, bq))
	}
	o := outs[0]
	lse = lses[0]
	if len(outs) > 1 {
		o = Concatenate(outs, 2)
		lse = Concatenate(lses, 2)
	}
	return MergeHeads(o), lse
}
