// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package fastmath

import (
	"math"
	"math/rand/v2"
	"testing"
)

// attnscope patch: the slice kernels (AVX-512 where available) agree bit for bit with
// the scalar functions, and the scalar functions with float64 math.
func TestActivationSlices(t *testing.T) {
	if !hasAVX512 {
		t.Log("no AVX-512 on this CPU (or built without GOEXPERIMENT=simd): the slices run the scalar code")
	}
	var xs []float32
	for x := float32(-100); x <= 100; x += 0.0005 {
		xs = append(xs, x)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		xs = append(xs, math.Float32frombits(r.Uint32())) // any bit pattern, NaN and Inf included
	}
	xs = append(xs, 0, float32(math.Copysign(0, -1)), 88.02969, -88.02969, 88.1, -88.1, 1e-40, -1e-40)
	for _, tc := range []struct {
		name   string
		slice  func(in, out []float32)
		scalar func(float32) float32
		exact  func(float64) float64
	}{
		{"sigmoid", SigmoidSlice, Sigmoid32, func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }},
		{"gelu_tanh", GeluTanhSlice, GeluTanh32, func(x float64) float64 {
			return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
		}},
	} {
		out := make([]float32, len(xs))
		tc.slice(xs, out)
		for i, x := range xs {
			want := tc.scalar(x)
			if math.Float32bits(out[i]) != math.Float32bits(want) && !(out[i] != out[i] && want != want) {
				t.Fatalf("%s(%g): slice %g, scalar %g", tc.name, x, out[i], want)
			}
			if math.Abs(float64(x)) <= 100 {
				e := tc.exact(float64(x))
				if d := math.Abs(float64(want) - e); d > 2.5e-6*math.Max(1, math.Abs(e)) {
					t.Fatalf("%s(%g) = %g, float64 %g", tc.name, x, want, e)
				}
			}
		}
	}
}

func TestExpShiftAndScaleSlices(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	in := make([]float32, 1003)
	for i := range in {
		in[i] = float32(r.NormFloat64() * 30)
	}
	for _, shift := range []float32{0, 7.5, -3, 100} {
		out := make([]float32, len(in))
		ExpShiftSlice(in, out, shift)
		for i, x := range in {
			if want := Exp32(x - shift); math.Float32bits(out[i]) != math.Float32bits(want) {
				t.Fatalf("exp(%g − %g): slice %g, scalar %g", x, shift, out[i], want)
			}
		}
		want := append([]float32(nil), out...)
		ScaleSlice(out, 0.37)
		for i := range out {
			if w := want[i] * 0.37; math.Float32bits(out[i]) != math.Float32bits(w) {
				t.Fatalf("scale: %g, want %g", out[i], w)
			}
		}
	}
}

func BenchmarkGeluTanhSlice(b *testing.B) {
	in := make([]float32, 128*3072)
	for i := range in {
		in[i] = float32(i%200-100) / 25
	}
	out := make([]float32, len(in))
	b.ResetTimer()
	for range b.N {
		GeluTanhSlice(in, out)
	}
}
