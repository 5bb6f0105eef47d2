package arch

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/gobackend"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/core/tensors"
)

// TestBlockwiseAttention: the blockwise path (block sizes that do and do not
// divide the length, causal and not, a padded key, grouped-query heads, head
// dims whose scale is and is not a power of two; sliding windows shorter than,
// equal to and longer than a block, with skipped key blocks; GPT-Neo's unit
// scale; Gemma 2's scale and soft-capping) gives the output of AttentionWith
// over the same mask within float32 rounding, and exp(s − lse) recomputed in
// float64 from its log-sum-exp (s = q·k·scale, soft-capped) gives its pattern
// within 1e-6 (unit-variance q, k; with logits twice as large, float32 rounding
// of both paths reaches 2e-6).
func TestBlockwiseAttention(t *testing.T) {
	for _, tc := range []struct {
		name             string
		heads, kv, n, hd int
		qb, kb           int
		causal           bool
		window           int
		opts             AttentionOptions
	}{
		{"causal-gqa-uneven", 4, 2, 37, 16, 8, 5, true, 0, AttentionOptions{}},
		{"causal-mha-even", 2, 2, 32, 8, 16, 16, true, 0, AttentionOptions{}},
		{"bidirectional-gqa", 4, 1, 29, 12, 7, 9, false, 0, AttentionOptions{}},
		{"one-block", 2, 2, 10, 4, 64, 64, true, 0, AttentionOptions{}},
		{"window-short", 4, 2, 41, 16, 8, 5, true, 6, AttentionOptions{}},
		{"window-block", 4, 2, 40, 16, 8, 8, true, 8, AttentionOptions{}},
		{"window-long", 2, 1, 37, 12, 7, 9, true, 20, AttentionOptions{}},
		{"window-beyond", 2, 2, 19, 8, 4, 4, true, 64, AttentionOptions{}},
		{"gpt-neo-unscaled-window", 2, 2, 33, 8, 8, 4, true, 7, AttentionOptions{Scale: 1}},
		{"gemma2-softcap-window", 4, 2, 37, 16, 8, 5, true, 10, AttentionOptions{Scale: 1 / math.Sqrt(12), SoftCap: 2}},
		{"gemma2-softcap", 4, 1, 29, 16, 8, 8, true, 0, AttentionOptions{Scale: 0.25, SoftCap: 1.5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const b = 2
			rng := rand.New(rand.NewPCG(1, uint64(tc.n)))
			rnd := func(n int) []float32 {
				d := make([]float32, n)
				for i := range d {
					d[i] = float32(rng.NormFloat64())
				}
				return d
			}
			qd, kd, vd := rnd(b*tc.heads*tc.n*tc.hd), rnd(b*tc.kv*tc.n*tc.hd), rnd(b*tc.kv*tc.n*tc.hd)
			valid := make([]bool, b*tc.n)
			for i := range valid {
				valid[i] = true
			}
			valid[tc.n+3] = false // sample 1 hides key 3
			mask := make([]bool, b*tc.n*tc.n)
			for bb := range b {
				for i := range tc.n {
					for j := range tc.n {
						mask[(bb*tc.n+i)*tc.n+j] = valid[bb*tc.n+j] && (!tc.causal || j <= i) && (tc.window == 0 || j > i-tc.window)
					}
				}
			}
			q := tensors.FromFlatDataAndDimensions(qd, b, tc.heads, tc.n, tc.hd)
			k := tensors.FromFlatDataAndDimensions(kd, b, tc.kv, tc.n, tc.hd)
			v := tensors.FromFlatDataAndDimensions(vd, b, tc.kv, tc.n, tc.hd)
			run := func(f func(in []*Node) []*Node, args ...any) [][]float32 {
				e, err := NewExec(gobackend.GetBackend(), f)
				if err != nil {
					t.Fatal(err)
				}
				out, err := e.Call(args...)
				if err != nil {
					t.Fatal(err)
				}
				res := make([][]float32, len(out))
				for i, o := range out {
					if o.DType().String() == "Float64" {
						for _, v := range tensors.MustCopyFlatData[float64](o) {
							res[i] = append(res[i], float32(v))
						}
						continue
					}
					res[i] = tensors.MustCopyFlatData[float32](o)
				}
				return res
			}
			ref := run(func(in []*Node) []*Node {
				o, p := AttentionWith(in[0], in[1], in[2], in[3], tc.opts)
				return []*Node{o, p}
			}, q, k, v, tensors.FromFlatDataAndDimensions(mask, b, tc.n, tc.n))
			got := run(func(in []*Node) []*Node {
				o, p, lse := AttentionInputs{Blockwise: &Blockwise{QueryBlock: tc.qb, KeyBlock: tc.kb, Causal: tc.causal, KeyValid: in[3], Window: tc.window}}.AttendWith(in[0], in[1], in[2], tc.opts)
				if p != nil {
					t.Fatal("blockwise Attend returned a pattern")
				}
				return []*Node{o, lse}
			}, q, k, v, tensors.FromFlatDataAndDimensions(valid, b, tc.n))
			for i := range ref[0] {
				if d := math.Abs(float64(ref[0][i] - got[0][i])); d > 1e-5*(1+math.Abs(float64(ref[0][i]))) {
					t.Fatalf("output %d: blockwise %g, materialised %g", i, got[0][i], ref[0][i])
				}
			}
			g := tc.heads / tc.kv
			scale := tc.opts.Scale
			if scale == 0 {
				scale = 1 / math.Sqrt(float64(tc.hd))
			}
			worst := 0.0
			for bb := range b {
				for h := range tc.heads {
					for i := range tc.n {
						lse := float64(got[1][(bb*tc.heads+h)*tc.n+i])
						for j := range tc.n {
							want := float64(ref[1][((bb*tc.heads+h)*tc.n+i)*tc.n+j])
							p := 0.0
							if mask[(bb*tc.n+i)*tc.n+j] {
								dot := 0.0
								for d := range tc.hd {
									dot += float64(qd[((bb*tc.heads+h)*tc.n+i)*tc.hd+d]) * float64(kd[((bb*tc.kv+h/g)*tc.n+j)*tc.hd+d])
								}
								s := dot * scale
								if c := tc.opts.SoftCap; c > 0 {
									s = c * math.Tanh(s/c)
								}
								p = math.Exp(s - lse)
							}
							worst = max(worst, math.Abs(p-want))
						}
					}
				}
			}
			if worst > 1e-6 {
				t.Fatalf("pattern recomputed from lse differs from Attention's by %g", worst)
			}
			t.Logf("largest difference of the recomputed pattern: %.3g", worst)
		})
	}
}
