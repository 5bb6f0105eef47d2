// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package fastmath

import "simd/archsimd"

// attnscope patch: AVX-512 versions of Exp32, Sigmoid32 and GeluTanh32, operation for
// operation the scalar ones (no fused multiply-add), so the results are bit-identical.

var hasAVX512 = archsimd.X86.AVX512()

// vconst holds the broadcast constants, built once per slice call (broadcasting in
// the loop costs more than the arithmetic).
type vconst struct {
	maxNumF, maxLogF, minLogF, log2E, half, ln2Hi, ln2Lo archsimd.Float32x16
	p7, p6, p5, p4, p3, p2, one, zero, minusOne          archsimd.Float32x16
	c0044715, twoSqrt2ByPi                               archsimd.Float32x16
	bias                                                 archsimd.Int32x16
}

func newVconst() *vconst {
	b := archsimd.BroadcastFloat32x16
	return &vconst{
		maxNumF: b(1.7014117331926442990585209174225846272e38), maxLogF: b(88.02969187150841), minLogF: b(-88.02969187150841),
		log2E: b(1.44269504088896341), half: b(0.5), ln2Hi: b(0.693359375), ln2Lo: b(-2.12194440e-4),
		p7: b(1.9875691500e-4), p6: b(1.3981999507e-3), p5: b(8.3334519073e-3), p4: b(4.1665795894e-2),
		p3: b(1.6666665459e-1), p2: b(5.0000001201e-1), one: b(1), zero: b(0), minusOne: b(-1),
		c0044715: b(0.044715), twoSqrt2ByPi: b(twoSqrt2ByPi),
		bias: archsimd.BroadcastInt32x16(127),
	}
}

// exp32x16 is Exp32 on 16 lanes. a.Merge(b, m) is m ? a : b.
func (c *vconst) exp32x16(x archsimd.Float32x16) archsimd.Float32x16 {
	z := x.Mul(c.log2E).Add(c.half).FloorScaled(0)
	g := x.Sub(z.Mul(c.ln2Hi)).Sub(z.Mul(c.ln2Lo))
	scale := z.ConvertToInt32().Add(c.bias).ShiftAllLeft(23).AsFloat32x16()
	p := c.p7.Mul(g).Add(c.p6)
	p = p.Mul(g).Add(c.p5)
	p = p.Mul(g).Add(c.p4)
	p = p.Mul(g).Add(c.p3)
	p = p.Mul(g).Add(c.p2)
	r := scale.Mul(p.Mul(g.Mul(g)).Add(g).Add(c.one))
	r = c.maxNumF.Merge(r, x.Greater(c.maxLogF))
	return c.zero.Merge(r, x.Less(c.minLogF))
}

// sigmoid32x16 is Sigmoid32 on 16 lanes.
func (c *vconst) sigmoid32x16(x archsimd.Float32x16) archsimd.Float32x16 {
	neg := x.Less(c.zero)
	// e = Exp32(x) for x < 0, Exp32(−x) otherwise.
	e := c.exp32x16(x.Merge(x.Mul(c.minusOne), neg))
	d := c.one.Add(e)
	return e.Div(d).Merge(c.one.Div(d), neg)
}

func sigmoidSliceAVX512(in, out []float32) int {
	c := newVconst()
	n := len(in) &^ 15
	for i := 0; i < n; i += 16 {
		c.sigmoid32x16(archsimd.LoadFloat32x16Slice(in[i:])).StoreSlice(out[i:])
	}
	return n
}

func geluTanhSliceAVX512(in, out []float32) int {
	c := newVconst()
	n := len(in) &^ 15
	for i := 0; i < n; i += 16 {
		x := archsimd.LoadFloat32x16Slice(in[i:])
		u := x.Add(x.Mul(x.Mul(x)).Mul(c.c0044715)).Mul(c.twoSqrt2ByPi)
		x.Mul(c.sigmoid32x16(u)).StoreSlice(out[i:])
	}
	return n
}

func expShiftSliceAVX512(in, out []float32, shift float32) int {
	c := newVconst()
	s := archsimd.BroadcastFloat32x16(shift)
	n := len(in) &^ 15
	for i := 0; i < n; i += 16 {
		c.exp32x16(archsimd.LoadFloat32x16Slice(in[i:]).Sub(s)).StoreSlice(out[i:])
	}
	return n
}

func scaleSliceAVX512(s []float32, f float32) int {
	v := archsimd.BroadcastFloat32x16(f)
	n := len(s) &^ 15
	for i := 0; i < n; i += 16 {
		archsimd.LoadFloat32x16Slice(s[i:]).Mul(v).StoreSlice(s[i:])
	}
	return n
}
