package arch

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/gobackend"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/core/tensors"
)

// TestConv1DAct: the activation applied in the dense op's epilogue (Conv1DAct,
// LinearAct) gives exactly the values of the activation applied as its own op after
// Conv1D or Linear (same kernel,
// elementwise), with and without a bias, for gelu_new and gelu, on an output
// large enough (2×37×1,024) to take the backend's parallel paths; silu falls back
// to the unfused form.
func TestConv1DAct(t *testing.T) {
	backend := gobackend.GetBackend()
	rng := rand.New(rand.NewPCG(5, 6))
	const bsz, n, width, out = 2, 37, 48, 1024
	x, w, bias := randTensor(rng, bsz, n, width), randTensor(rng, width, out), randTensor(rng, out)
	for _, name := range []string{"gelu_new", "gelu", "silu"} {
		for _, c := range []struct {
			withBias, linear bool
		}{{true, false}, {false, false}, {true, true}, {false, true}} {
			withBias := c.withBias
			run := func(fused bool) []float32 {
				e, err := NewExec(backend, func(x, w, b *Node) *Node {
					if !withBias {
						b = nil
					}
					if c.linear {
						w = Transpose(w, 0, 1) // torch.nn.Linear's [out, in]
						if fused {
							return LinearAct(x, w, b, name)
						}
						return Activation(name)(Linear(x, w, b))
					}
					if fused {
						return Conv1DAct(x, w, b, name)
					}
					return Activation(name)(Conv1D(x, w, b))
				})
				if err != nil {
					t.Fatal(err)
				}
				res, err := e.Call(x, w, bias)
				if err != nil {
					t.Fatal(err)
				}
				return tensors.MustCopyFlatData[float32](res[0])
			}
			got, want := run(true), run(false)
			if len(got) != bsz*n*out {
				t.Fatalf("%s: %d outputs, want %d", name, len(got), bsz*n*out)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%s, bias %v, Linear %v, element %d: fused epilogue %g, separate activation %g", name, withBias, c.linear, i, got[i], want[i])
				}
			}
		}
	}
}

// TestHeadLayouts: SplitHeads, QKVHeads and MergeHeads (gathers on the Go backend)
// give exactly the reshape-and-transpose results, batched, for grouped-query widths,
// and their gradients are the transposed output gradients.
func TestHeadLayouts(t *testing.T) {
	backend := gobackend.GetBackend()
	rng := rand.New(rand.NewPCG(7, 8))
	const bsz, n, hd, heads, kvHeads = 2, 37, 8, 4, 2
	qkv := randTensor(rng, bsz, n, (heads+2*kvHeads)*hd)
	z := randTensor(rng, bsz, heads, n, hd)
	transposed := func(x *Node, first, h int) *Node {
		d := x.Shape().Dimensions
		x4 := SliceAxis(Reshape(x, d[0], d[1], d[2]/hd, hd), 2, AxisRange(first, first+h))
		return TransposeAllDims(x4, 0, 2, 1, 3)
	}
	e, err := NewExec(backend, func(qkv, z *Node) []*Node {
		q, k, v := QKVHeads(qkv, heads, kvHeads, hd)
		whole := SplitHeads(SliceAxis(qkv, 2, AxisRange(0, heads*hd)), heads, hd)
		merged := MergeHeads(z)
		zd := z.Shape().Dimensions
		wantMerged := Reshape(TransposeAllDims(z, 0, 2, 1, 3), zd[0], zd[2], zd[1]*zd[3])
		// Gradient of a weighted sum: d/dqkv Σ c·heads(qkv) is c transposed back.
		c := Iota(qkv.Graph(), q.Shape(), 3)
		grad := Gradient(ReduceAllSum(Mul(q, c)), qkv)[0]
		return []*Node{
			Sub(q, transposed(qkv, 0, heads)), Sub(k, transposed(qkv, heads, kvHeads)), Sub(v, transposed(qkv, heads+kvHeads, kvHeads)),
			Sub(whole, transposed(qkv, 0, heads)), Sub(merged, wantMerged),
			Sub(grad, Concatenate([]*Node{Reshape(TransposeAllDims(c, 0, 2, 1, 3), bsz, n, heads*hd), ZerosLike(SliceAxis(qkv, 2, AxisRange(heads*hd, (heads+2*kvHeads)*hd)))}, 2)),
			q, merged,
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := e.Call(qkv, z)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"q", "k", "v", "SplitHeads", "MergeHeads", "gradient"}
	for i, name := range names {
		for j, d := range tensors.MustCopyFlatData[float32](outs[i]) {
			if d != 0 {
				t.Fatalf("%s element %d differs from reshape and transpose by %g", name, j, d)
			}
		}
	}
	if got := outs[6].Shape().Dimensions; len(got) != 4 || got[0] != bsz || got[1] != heads || got[2] != n || got[3] != hd {
		t.Fatalf("q has shape %v", got)
	}
	if got := outs[7].Shape().Dimensions; len(got) != 3 || got[0] != bsz || got[1] != n || got[2] != heads*hd {
		t.Fatalf("MergeHeads output has shape %v", got)
	}
}
