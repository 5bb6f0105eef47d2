package arch

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/gobackend"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/core/tensors"
)

func randTensor(rng *rand.Rand, dims ...int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = rng.Float32() - 0.5
	}
	return tensors.FromFlatDataAndDimensions(v, dims...)
}

// TestFusedQKV: the backend's fused QKV projection (GPT-2 attention's c_attn) gives
// the Conv1D-and-slices result, with and without a bias, batched, within float32
// rounding (both sum x·W in the same matmul kernel and add the bias once).
func TestFusedQKV(t *testing.T) {
	backend := gobackend.GetBackend()
	rng := rand.New(rand.NewPCG(3, 4))
	const bsz, n, width, d = 2, 37, 48, 48
	x, w, bias := randTensor(rng, bsz, n, width), randTensor(rng, width, 3*d), randTensor(rng, 3*d)
	for _, withBias := range []bool{true, false} {
		run := func(fused bool) [][]float32 {
			e, err := NewExec(backend, func(x, w, b *Node) []*Node {
				if !withBias {
					b = nil
				}
				if fused {
					q, k, v := FusedQKV(x, w, b, d)
					return []*Node{q, k, v}
				}
				qkv := Conv1D(x, w, b)
				return []*Node{SliceAxis(qkv, 2, AxisRange(0, d)), SliceAxis(qkv, 2, AxisRange(d, 2*d)), SliceAxis(qkv, 2, AxisRange(2*d, 3*d))}
			})
			if err != nil {
				t.Fatal(err)
			}
			outs, err := e.Call(x, w, bias)
			if err != nil {
				t.Fatal(err)
			}
			res := make([][]float32, len(outs))
			for i, o := range outs {
				if got := o.Shape().Dimensions; len(got) != 3 || got[0] != bsz || got[1] != n || got[2] != d {
					t.Fatalf("output %d has shape %v, want [%d %d %d]", i, got, bsz, n, d)
				}
				res[i] = tensors.MustCopyFlatData[float32](o)
			}
			return res
		}
		got, want := run(true), run(false)
		for i := range want {
			for j := range want[i] {
				if diff := math.Abs(float64(got[i][j] - want[i][j])); diff > 2e-6*math.Max(1, math.Abs(float64(want[i][j]))) {
					t.Fatalf("bias %v, output %d element %d: fused %g, Conv1D and slices %g", withBias, i, j, got[i][j], want[i][j])
				}
			}
		}
	}
}

// BenchmarkProjections times the four projections of a GPT-2-small block at N = 128
// (c_attn 768→2304, c_proj 768→768, c_fc 768→3072, mlp c_proj 3072→768) through the
// backend's fused dense op, with the weight a graph input as model.Load passes it
// (packed into panels on every call) and as a graph constant (the Go backend packs a
// constant weight once and caches the panels). Run with -cpu 1 for one thread; on a
// shared machine take the best of several -count runs.
func BenchmarkProjections(b *testing.B) {
	backend := gobackend.GetBackend()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range []struct {
		name    string
		m, k, n int
	}{{"c_attn", 128, 768, 2304}, {"attn_c_proj", 128, 768, 768}, {"c_fc", 128, 768, 3072}, {"mlp_c_proj", 128, 3072, 768}} {
		x, w, bias := randTensor(rng, s.m, s.k), randTensor(rng, s.k, s.n), randTensor(rng, s.n)
		for _, constant := range []bool{false, true} {
			name := fmt.Sprintf("%s/%dx%dx%d/input_weight", s.name, s.m, s.k, s.n)
			if constant {
				name = fmt.Sprintf("%s/%dx%dx%d/constant_weight", s.name, s.m, s.k, s.n)
			}
			b.Run(name, func(b *testing.B) {
				var call func() []*tensors.Tensor
				if constant {
					e := MustNewExec(backend, func(x *Node) *Node { return Conv1D(x, Const(x.Graph(), w), Const(x.Graph(), bias)) })
					call = func() []*tensors.Tensor { return e.MustCall(x) }
				} else {
					e := MustNewExec(backend, Conv1D)
					call = func() []*tensors.Tensor { return e.MustCall(x, w, bias) }
				}
				call()[0].FinalizeAll() // compile (and pack a constant weight)
				b.ResetTimer()
				for range b.N {
					call()[0].FinalizeAll()
				}
				b.ReportMetric(2*float64(s.m*s.k*s.n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
