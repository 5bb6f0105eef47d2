package arch

import (
	"math"
	"testing"

	"github.com/gomlx/compute/gobackend"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/core/tensors"
)

func benchAct(b *testing.B, f func(*Node) *Node) {
	backend := gobackend.GetBackend()
	e, err := NewExec(backend, f)
	if err != nil {
		b.Fatal(err)
	}
	data := make([]float32, 128*3072)
	for i := range data {
		data[i] = float32(i%200-100) / 25
	}
	x := tensors.FromFlatDataAndDimensions(data, 128, 3072)
	if _, err := e.Call(x); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		out, err := e.Call(x)
		if err != nil {
			b.Fatal(err)
		}
		out[0].FinalizeAll()
	}
}

// The benchmarks compare the fused backend kernels (GeluTanh, GeluErf) with their
// decomposed forms on one GPT-2-small MLP activation at N=128.
func BenchmarkGeluTanhFused(b *testing.B)   { benchAct(b, GeluTanh) }
func BenchmarkGeluTanhSigmoid(b *testing.B) { benchAct(b, geluTanhSigmoid) }
func BenchmarkGeluErfFused(b *testing.B)    { benchAct(b, GeluErf) }
func BenchmarkGeluErf(b *testing.B)         { benchAct(b, geluErf) }

// TestGeluForms: the backend's fused tanh-GELU kernel and the decomposed sigmoid form
// (which training differentiates) are both within 2e-6 of the float64 formula, and
// within 4 float32 roundings plus 2.5e-7 of each other (they are not bit-identical: the backend
// evaluates 0.5x(1+tanh z), as PyTorch does, with its own SIMD tanh).
func TestGeluForms(t *testing.T) {
	backend := gobackend.GetBackend()
	data := make([]float32, 4001)
	for i := range data {
		data[i] = float32(i-2000) / 200
	}
	x := tensors.FromFlatDataAndDimensions(data, len(data))
	run := func(f func(*Node) *Node) []float32 {
		e, err := NewExec(backend, f)
		if err != nil {
			t.Fatal(err)
		}
		out, err := e.Call(x)
		if err != nil {
			t.Fatal(err)
		}
		return tensors.MustCopyFlatData[float32](out[0])
	}
	a, s := run(GeluTanh), run(geluTanhSigmoid)
	worst := 0.0
	for i := range a {
		xf := float64(data[i])
		want := 0.5 * xf * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(xf+0.044715*xf*xf*xf)))
		tol := 2e-6 * math.Max(1, math.Abs(want))
		if math.Abs(float64(a[i])-want) > tol || math.Abs(float64(s[i])-want) > tol {
			t.Fatalf("x=%g: fused kernel %g, sigmoid form %g, float64 %g", data[i], a[i], s[i], want)
		}
		d := math.Abs(float64(a[i]) - float64(s[i]))
		if d > 4*0x1p-24*math.Abs(want)+2.5e-7 { // 0.5x(1+tanh z) is 0 once tanh z rounds to −1
			t.Fatalf("x=%g: fused kernel %g, decomposed form %g: %.2g apart", data[i], a[i], s[i], d)
		}
		if math.Abs(want) > 1e-3 {
			worst = max(worst, d/math.Abs(want))
		}
	}
	t.Logf("largest relative difference fused vs decomposed where |gelu| > 1e-3: %.3g", worst)
}
