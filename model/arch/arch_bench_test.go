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

// TestGeluForms: the fused tanh-GELU kernel and its decomposed sigmoid form give the
// same float32 values, within 2e-6 of the float64 formula.
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
	for i := range a {
		want := 0.5 * float64(data[i]) * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(float64(data[i])+0.044715*math.Pow(float64(data[i]), 3))))
		if math.Abs(float64(a[i])-want) > 2e-6*math.Max(1, math.Abs(want)) || math.Abs(float64(s[i])-want) > 2e-6*math.Max(1, math.Abs(want)) {
			t.Fatalf("x=%g: tanh form %g, sigmoid form %g, float64 %g", data[i], a[i], s[i], want)
		}
		// Training differentiates the decomposed form: the fused kernel rounds alike.
		if a[i] != s[i] {
			t.Fatalf("x=%g: fused kernel %g, decomposed form %g: not identical", data[i], a[i], s[i])
		}
	}
}
