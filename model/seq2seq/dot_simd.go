//go:build goexperiment.simd && amd64

package seq2seq

import "simd/archsimd"

var haveFMA = archsimd.X86.AVX2() && archsimd.X86.FMA()

// dot is Σ a[i]·b[i] in float32: eight-lane fused multiply–adds (AVX2 + FMA) where the
// CPU has them, else dotScalar.
func dot(a, b []float32) float32 {
	if !haveFMA || len(a) < 16 {
		return dotScalar(a, b)
	}
	b = b[:len(a)]
	s0, s1 := archsimd.BroadcastFloat32x8(0), archsimd.BroadcastFloat32x8(0)
	i := 0
	for ; i+16 <= len(a); i += 16 {
		s0 = archsimd.LoadFloat32x8(a[i:i+8]).MulAdd(archsimd.LoadFloat32x8(b[i:i+8]), s0)
		s1 = archsimd.LoadFloat32x8(a[i+8:i+16]).MulAdd(archsimd.LoadFloat32x8(b[i+8:i+16]), s1)
	}
	var lanes [8]float32
	s0.Add(s1).StoreArray(&lanes)
	sum := ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
	for ; i < len(a); i++ {
		sum += a[i] * b[i]
	}
	return sum
}
