//go:build goexperiment.simd && amd64

package analysis

import (
	"math"
	"simd/archsimd"
)

// The AVX-512 versions of log4, logMasked4 and rowJS4: the same operations on eight
// lanes (each lane bit-identical to math.Log and to JSDistance, as there).

// log8 is math.Log of eight positive finite numbers, computed with exactly the
// operations, in the same order, of Go's amd64 math.Log (math/log_amd64.s): frexp by
// bit masks (subnormals taken as that code takes them), the f1 ≤ √2/2 adjustment, and
// the same polynomial; every step is one IEEE-754 operation, so each lane equals
// math.Log bit for bit (TestLog4MatchesMathLog). Lanes that are 0, negative, infinite
// or NaN give unspecified values: callers mask them.
func log8(x archsimd.Float64x8) archsimd.Float64x8 {
	bits := x.AsUint64x8()
	f1 := bits.And(archsimd.BroadcastUint64x8(0x000FFFFFFFFFFFFF)).
		Or(archsimd.BroadcastUint64x8(0x3FE0000000000000)).AsFloat64x8()
	// Biased exponent as a float64: OR it into the mantissa of 2^52 and subtract 2^52.
	e := bits.ShiftAllRight(52).And(archsimd.BroadcastUint64x8(0x7FF)).
		Or(archsimd.BroadcastUint64x8(0x4330000000000000)).AsFloat64x8().
		Sub(archsimd.BroadcastFloat64x8(1 << 52))
	k := e.Sub(archsimd.BroadcastFloat64x8(0x3FE))
	one := archsimd.BroadcastFloat64x8(1)
	// asm: CMPSD $5 (not less than): the adjustment applies when f1 ≤ √2/2.
	adj := one.Masked(f1.LessEqual(archsimd.BroadcastFloat64x8(logHSqrt2)))
	k = k.Sub(adj)
	f1 = f1.Mul(adj.Add(one))
	f := f1.Sub(one)
	s := f.Div(archsimd.BroadcastFloat64x8(2).Add(f))
	s2 := s.Mul(s)
	s4 := s2.Mul(s2)
	t1 := archsimd.BroadcastFloat64x8(logL7).Mul(s4).Add(archsimd.BroadcastFloat64x8(logL5)).
		Mul(s4).Add(archsimd.BroadcastFloat64x8(logL3)).Mul(s4).Add(archsimd.BroadcastFloat64x8(logL1))
	t1 = s2.Mul(t1)
	t2 := archsimd.BroadcastFloat64x8(logL6).Mul(s4).Add(archsimd.BroadcastFloat64x8(logL4)).
		Mul(s4).Add(archsimd.BroadcastFloat64x8(logL2))
	t2 = t2.Mul(s4)
	r := t1.Add(t2)
	hfsq := archsimd.BroadcastFloat64x8(0.5).Mul(f).Mul(f)
	a := s.Mul(hfsq.Add(r)).Add(archsimd.BroadcastFloat64x8(logLn2Lo).Mul(k))
	b := hfsq.Sub(a).Sub(f)
	return k.Mul(archsimd.BroadcastFloat64x8(logLn2Hi)).Sub(b)
}

// logMasked8 is math.Log of the lanes of x selected by use (the others are unspecified):
// log8 when every selected lane is positive and finite, else math.Log lane by lane
// (an infinite quotient arises when a weight is so small that half of it rounds to 0).
func logMasked8(x archsimd.Float64x8, use archsimd.Mask64x8) archsimd.Float64x8 {
	ok := x.Greater(archsimd.BroadcastFloat64x8(0)).And(x.Less(archsimd.BroadcastFloat64x8(math.Inf(1))))
	if use.ToBits()&^ok.ToBits() == 0 {
		return log8(x)
	}
	var v [8]float64
	x.StoreArray(&v)
	bits := use.ToBits()
	for l := range v {
		if bits&(1<<l) != 0 {
			v[l] = math.Log(v[l])
		} else {
			v[l] = 0
		}
	}
	return archsimd.LoadFloat64x8Array(&v)
}

// rowJS8 computes JSDistance(p, q_t) for the eight rows q_t = qt[j*stride+t] (t = 0..7,
// the rows stored column-wise) against one row p, both already divided by their sums
// (pn = p/Σp, qt = q/Σq element by element, as JSDistance does), over the elements
// 0..n−1; p is zero from np on. Each lane adds, element by element, a·ln(a/m) when a > 0,
// then b·ln(b/m) when b > 0, with m = (a+b)/2: the operations of JSDistance in its
// order, so each lane's sum equals JSDistance's bit for bit (a masked term adds +0, which
// leaves a sum that is never −0 unchanged). Where a = 0, b/m is exactly 2 unless b/2 is
// rounded (b subnormal), so ln 2 is used without evaluating the logarithm when every
// lane's quotient is 2. It returns the eight sums js (the distance is sqrt(max(js/2, 0))).
func rowJS8(pn, qt []float64, stride, np, n int) [8]float64 {
	js := archsimd.BroadcastFloat64x8(0)
	zero := archsimd.BroadcastFloat64x8(0)
	two := archsimd.BroadcastFloat64x8(2)
	ln2 := archsimd.BroadcastFloat64x8(math.Log(2))
	for j := 0; j < min(np, n); j++ {
		a := archsimd.BroadcastFloat64x8(pn[j])
		b := archsimd.LoadFloat64x8(qt[j*stride : j*stride+8])
		m := a.Add(b).Div(two)
		pa, pb := a.Greater(zero), b.Greater(zero)
		ta := a.Mul(logMasked8(a.Div(m), pa)).Masked(pa)
		tb := b.Mul(logMasked8(b.Div(m), pb)).Masked(pb)
		js = js.Add(ta).Add(tb)
	}
	for j := np; j < n; j++ {
		b := archsimd.LoadFloat64x8(qt[j*stride : j*stride+8])
		pos := b.Greater(zero)
		if pos.ToBits() == 0 {
			continue // every term is masked: adding +0 changes nothing
		}
		m := zero.Add(b).Div(two)
		q := b.Div(m)
		lq := ln2
		if q.Equal(two).Or(b.Equal(zero)).ToBits() != 0xFF {
			lq = logMasked8(q, pos)
		}
		js = js.Add(b.Mul(lq).Masked(pos))
	}
	var out [8]float64
	js.StoreArray(&out)
	return out
}
