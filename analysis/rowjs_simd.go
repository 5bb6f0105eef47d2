//go:build goexperiment.simd && amd64

package analysis

import (
	"context"
	"math"
	"simd/archsimd"
)

// haveVecLog reports whether the AVX2 kernels below can run on this CPU; have512
// whether the eight-lane AVX-512 ones (rowjs_simd512.go) can.
var (
	haveVecLog = archsimd.X86.AVX2()
	have512    = archsimd.X86.AVX512()
)

// Constants of Go's math.Log on amd64 (math/log_amd64.s, from FreeBSD's e_log.c).
const (
	logHSqrt2 = 7.07106781186547524401e-01
	logLn2Hi  = 6.93147180369123816490e-01
	logLn2Lo  = 1.90821492927058770002e-10
	logL1     = 6.666666666666735130e-01
	logL2     = 3.999999999940941908e-01
	logL3     = 2.857142874366239149e-01
	logL4     = 2.222219843214978396e-01
	logL5     = 1.818357216161805012e-01
	logL6     = 1.531383769920937332e-01
	logL7     = 1.479819860511658591e-01
)

// log4 is math.Log of four positive finite numbers, computed with exactly the
// operations, in the same order, of Go's amd64 math.Log (math/log_amd64.s): frexp by
// bit masks (subnormals taken as that code takes them), the f1 ≤ √2/2 adjustment, and
// the same polynomial; every step is one IEEE-754 operation, so each lane equals
// math.Log bit for bit (TestLog4MatchesMathLog). Lanes that are 0, negative, infinite
// or NaN give unspecified values: callers mask them.
func log4(x archsimd.Float64x4) archsimd.Float64x4 {
	bits := x.AsUint64x4()
	f1 := bits.And(archsimd.BroadcastUint64x4(0x000FFFFFFFFFFFFF)).
		Or(archsimd.BroadcastUint64x4(0x3FE0000000000000)).AsFloat64x4()
	// Biased exponent as a float64: OR it into the mantissa of 2^52 and subtract 2^52.
	e := bits.ShiftAllRight(52).And(archsimd.BroadcastUint64x4(0x7FF)).
		Or(archsimd.BroadcastUint64x4(0x4330000000000000)).AsFloat64x4().
		Sub(archsimd.BroadcastFloat64x4(1 << 52))
	k := e.Sub(archsimd.BroadcastFloat64x4(0x3FE))
	one := archsimd.BroadcastFloat64x4(1)
	// asm: CMPSD $5 (not less than): the adjustment applies when f1 ≤ √2/2.
	adj := one.Masked(f1.LessEqual(archsimd.BroadcastFloat64x4(logHSqrt2)))
	k = k.Sub(adj)
	f1 = f1.Mul(adj.Add(one))
	f := f1.Sub(one)
	s := f.Div(archsimd.BroadcastFloat64x4(2).Add(f))
	s2 := s.Mul(s)
	s4 := s2.Mul(s2)
	t1 := archsimd.BroadcastFloat64x4(logL7).Mul(s4).Add(archsimd.BroadcastFloat64x4(logL5)).
		Mul(s4).Add(archsimd.BroadcastFloat64x4(logL3)).Mul(s4).Add(archsimd.BroadcastFloat64x4(logL1))
	t1 = s2.Mul(t1)
	t2 := archsimd.BroadcastFloat64x4(logL6).Mul(s4).Add(archsimd.BroadcastFloat64x4(logL4)).
		Mul(s4).Add(archsimd.BroadcastFloat64x4(logL2))
	t2 = t2.Mul(s4)
	r := t1.Add(t2)
	hfsq := archsimd.BroadcastFloat64x4(0.5).Mul(f).Mul(f)
	a := s.Mul(hfsq.Add(r)).Add(archsimd.BroadcastFloat64x4(logLn2Lo).Mul(k))
	b := hfsq.Sub(a).Sub(f)
	return k.Mul(archsimd.BroadcastFloat64x4(logLn2Hi)).Sub(b)
}

// logMasked4 is math.Log of the lanes of x selected by use (the others are unspecified):
// log4 when every selected lane is positive and finite, else math.Log lane by lane
// (an infinite quotient arises when a weight is so small that half of it rounds to 0).
func logMasked4(x archsimd.Float64x4, use archsimd.Mask64x4) archsimd.Float64x4 {
	ok := x.Greater(archsimd.BroadcastFloat64x4(0)).And(x.Less(archsimd.BroadcastFloat64x4(math.Inf(1))))
	if use.ToBits()&^ok.ToBits() == 0 {
		return log4(x)
	}
	var v [4]float64
	x.StoreArray(&v)
	bits := use.ToBits()
	for l := range v {
		if bits&(1<<l) != 0 {
			v[l] = math.Log(v[l])
		} else {
			v[l] = 0
		}
	}
	return archsimd.LoadFloat64x4Array(&v)
}

// rowJS4 computes JSDistance(p, q_t) for the four rows q_t = qt[j*stride+t] (t = 0..3,
// the rows stored column-wise) against one row p, both already divided by their sums
// (pn = p/Σp, qt = q/Σq element by element, as JSDistance does), over the elements
// 0..n−1; p is zero from np on. Each lane adds, element by element, a·ln(a/m) when a > 0,
// then b·ln(b/m) when b > 0, with m = (a+b)/2: the operations of JSDistance in its
// order, so each lane's sum equals JSDistance's bit for bit (a masked term adds +0, which
// leaves a sum that is never −0 unchanged). Where a = 0, b/m is exactly 2 unless b/2 is
// rounded (b subnormal), so ln 2 is used without evaluating the logarithm when every
// lane's quotient is 2. It returns the four sums js (the distance is sqrt(max(js/2, 0))).
func rowJS4(pn, qt []float64, stride, np, n int) [4]float64 {
	js := archsimd.BroadcastFloat64x4(0)
	zero := archsimd.BroadcastFloat64x4(0)
	two := archsimd.BroadcastFloat64x4(2)
	ln2 := archsimd.BroadcastFloat64x4(math.Log(2))
	for j := 0; j < min(np, n); j++ {
		a := archsimd.BroadcastFloat64x4(pn[j])
		b := archsimd.LoadFloat64x4(qt[j*stride : j*stride+4])
		m := a.Add(b).Div(two)
		pa, pb := a.Greater(zero), b.Greater(zero)
		ta := a.Mul(logMasked4(a.Div(m), pa)).Masked(pa)
		tb := b.Mul(logMasked4(b.Div(m), pb)).Masked(pb)
		js = js.Add(ta).Add(tb)
	}
	for j := np; j < n; j++ {
		b := archsimd.LoadFloat64x4(qt[j*stride : j*stride+4])
		pos := b.Greater(zero)
		if pos.ToBits() == 0 {
			continue // every term is masked: adding +0 changes nothing
		}
		m := zero.Add(b).Div(two)
		q := b.Div(m)
		lq := ln2
		if q.Equal(two).Or(b.Equal(zero)).ToBits() != 0xF {
			lq = logMasked4(q, pos)
		}
		js = js.Add(b.Mul(lq).Masked(pos))
	}
	var out [4]float64
	js.StoreArray(&out)
	return out
}

// rowPairsJSVec is rowPairsJS with eight (AVX-512, rowJS8) or four (AVX2, rowJS4) row
// pairs per step; ok is false when the CPU lacks AVX2 (the caller then runs the scalar
// loop).
func rowPairsJSVec(ctx context.Context, m []float64, N int) (js float64, pairs int, ok bool) {
	if !haveVecLog || N < 2 {
		return 0, 0, false
	}
	lanes := 4
	if have512 {
		lanes = 8
	}
	return rowPairsJSLanes(ctx, m, N, lanes)
}

// rowPairsJSLanes is rowPairsJSVec with lanes (4 or 8) pairs per step.
func rowPairsJSLanes(ctx context.Context, m []float64, N, lanes int) (js float64, pairs int, ok bool) {
	// Rows divided by their sums (as JSDistance divides them), the rows also stored
	// column-wise (qt[j*stride+k] = row k's element j) with zero columns as padding.
	stride := N + lanes
	pn := make([]float64, N*N)
	qt := make([]float64, N*stride)
	mass := make([]bool, N+lanes)
	last := make([]int, N+lanes) // one past the last non-zero element of each row
	for i := 0; i < N; i++ {
		row := m[i*N : (i+1)*N]
		s := 0.0
		for _, v := range row {
			s += v
		}
		if s <= 0 {
			continue
		}
		mass[i] = true
		for j, v := range row {
			x := v / s
			pn[i*N+j] = x
			qt[j*stride+i] = x
			if v != 0 {
				last[i] = j + 1
			}
		}
	}
	for i := 0; i < N && ctx.Err() == nil; i++ {
		if !mass[i] {
			continue
		}
		p := pn[i*N : (i+1)*N]
		for k := i + 1; k < N; k += lanes {
			n := last[i]
			for _, l := range last[k : k+lanes] {
				n = max(n, l)
			}
			var d [8]float64
			if lanes == 8 {
				d = rowJS8(p, qt[k:], stride, last[i], n)
			} else {
				d4 := rowJS4(p, qt[k:], stride, last[i], n)
				copy(d[:], d4[:])
			}
			for t := 0; t < lanes && k+t < N; t++ {
				if mass[k+t] {
					js += math.Sqrt(max(d[t]/2, 0))
					pairs++
				}
			}
		}
	}
	return js, pairs, true
}
