// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package fastmath

// attnscope patch: slice kernels for the logistic function and the tanh-GELU, 16
// lanes at a time with AVX-512 where the CPU has it (activations_simd_amd64.go) and
// element by element otherwise. Both paths give bit-identical results.

// Sigmoid32 is 1/(1+e^−x) with Exp32, evaluated as e^x/(1+e^x) for x < 0 so that
// the exponential never overflows.
func Sigmoid32(x float32) float32 {
	if x >= 0 {
		return 1 / (1 + Exp32(-x))
	}
	e := Exp32(x)
	return e / (1 + e)
}

// GeluTanh32 is the tanh approximation of GELU, x·σ(2u) with u = √(2/π)(x+0.044715x³),
// evaluated as (x + x·(x·x)·0.044715)·2√(2/π), then Sigmoid32, then the product with x:
// the operations and order of the graph x·Sigmoid(...) built from separate ops.
func GeluTanh32(x float32) float32 {
	return x * Sigmoid32(geluTanhArg(x))
}

// twoSqrt2ByPi is 2·√(2/π) in float32.
const twoSqrt2ByPi = float32(2 * 0.7978845608028654)

func geluTanhArg(x float32) float32 {
	t := float32(x * float32(x*x))
	t = float32(t * 0.044715)
	return float32(float32(x+t) * twoSqrt2ByPi)
}

// SigmoidSlice sets out[i] = Sigmoid32(in[i]); len(out) ≥ len(in).
func SigmoidSlice(in, out []float32) {
	i := 0
	if hasAVX512 {
		i = sigmoidSliceAVX512(in, out)
	}
	for ; i < len(in); i++ {
		out[i] = Sigmoid32(in[i])
	}
}

// GeluTanhSlice sets out[i] = GeluTanh32(in[i]); len(out) ≥ len(in).
func GeluTanhSlice(in, out []float32) {
	i := 0
	if hasAVX512 {
		i = geluTanhSliceAVX512(in, out)
	}
	for ; i < len(in); i++ {
		out[i] = GeluTanh32(in[i])
	}
}

// ExpShiftSlice sets out[i] = Exp32(in[i] − shift); len(out) ≥ len(in). (Softmax's
// exponentials.)
func ExpShiftSlice(in, out []float32, shift float32) {
	i := 0
	if hasAVX512 {
		i = expShiftSliceAVX512(in, out, shift)
	}
	for ; i < len(in); i++ {
		out[i] = Exp32(in[i] - shift)
	}
}

// ScaleSlice multiplies every element of s by f.
func ScaleSlice(s []float32, f float32) {
	i := 0
	if hasAVX512 {
		i = scaleSliceAVX512(s, f)
	}
	for ; i < len(s); i++ {
		s[i] *= f
	}
}
