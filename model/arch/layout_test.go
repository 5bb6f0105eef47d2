package arch

import (
	"math/rand/v2"
	"slices"
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

// TestQKVHeads: QKVHeads (gathers on the Go backend) gives exactly the
// slice-reshape-and-transpose results, batched, for grouped-query widths, and the
// gradient through it is the output gradient transposed back into x.
func TestQKVHeads(t *testing.T) {
	backend := gobackend.GetBackend()
	rng := rand.New(rand.NewPCG(7, 8))
	const bsz, n, hd, heads, kvHeads = 2, 37, 8, 4, 2
	width := (heads + 2*kvHeads) * hd
	qkv := randTensor(rng, bsz, n, width)
	transposed := func(x *Node, first, h int) *Node {
		x4 := SliceAxis(Reshape(x, bsz, n, heads+2*kvHeads, hd), 2, AxisRange(first, first+h))
		return TransposeAllDims(x4, 0, 2, 1, 3)
	}
	e, err := NewExec(backend, func(qkv *Node) []*Node {
		q, k, v := QKVHeads(qkv, heads, kvHeads, hd)
		// d/dqkv Σ c·k for c = iota over k's last axis is c transposed into k's columns.
		c := Iota(qkv.Graph(), k.Shape(), 3)
		grad := Gradient(ReduceAllSum(Mul(k, c)), qkv)[0]
		wantGrad := Concatenate([]*Node{
			ZerosLike(SliceAxis(qkv, 2, AxisRange(0, heads*hd))),
			Reshape(TransposeAllDims(c, 0, 2, 1, 3), bsz, n, kvHeads*hd),
			ZerosLike(SliceAxis(qkv, 2, AxisRange((heads+kvHeads)*hd, width))),
		}, 2)
		return []*Node{
			Sub(q, transposed(qkv, 0, heads)), Sub(k, transposed(qkv, heads, kvHeads)), Sub(v, transposed(qkv, heads+kvHeads, kvHeads)),
			Sub(grad, wantGrad), q, k,
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := e.Call(qkv)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"q", "k", "v", "gradient"} {
		for j, d := range tensors.MustCopyFlatData[float32](outs[i]) {
			if d != 0 {
				t.Fatalf("%s element %d differs from slice, reshape and transpose by %g", name, j, d)
			}
		}
	}
	for i, want := range [][]int{{bsz, heads, n, hd}, {bsz, kvHeads, n, hd}} {
		if got := outs[4+i].Shape().Dimensions; !slices.Equal(got, want) {
			t.Fatalf("output %d has shape %v, want %v", i, got, want)
		}
	}
}
