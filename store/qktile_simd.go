//go:build goexperiment.simd && amd64

package store

import "simd/archsimd"

// qkChunkPanels is the number of key panels tileVec keeps hot while it runs
// through the rows.
const qkChunkPanels = 32

// have512 reports whether the AVX-512 tile kernel can run on this CPU.
var have512 = archsimd.X86.AVX512()

// tileVec computes the tile with AVX-512: blocks of 4 rows × 16 keys (one key
// panel), eight accumulators of fused multiply–adds over d in order (the products
// of float32 values are exact in float64, so each dot product equals tileScalar's
// bit for bit), then exp(s/√d − lse) eight lanes at a time by exp8. It reports
// false when the CPU lacks AVX-512.
func tileVec(t *qkTile) bool {
	if !have512 {
		return false
	}
	hd := t.hd
	scale := archsimd.BroadcastFloat64x8(t.scale)
	// Keys in chunks of qkChunkPanels panels (256 KiB at head_dim 64, kept in L2)
	// reused by every group of 4 rows, rather than all keys streamed per group.
	for pc := t.c0 / qkPanel; pc*qkPanel < t.c1; pc += qkChunkPanels {
		for i := t.r0; i < t.r1; i += 4 {
			nr := min(4, t.r1-i)
			last := i + nr - 1
			end := min(t.end(last), (pc+qkChunkPanels)*qkPanel)
			if end <= max(t.c0, pc*qkPanel) {
				continue
			}
			q0 := t.q[i*hd : (i+1)*hd]
			q1 := t.q[min(i+1, last)*hd:][:hd]
			q2 := t.q[min(i+2, last)*hd:][:hd]
			q3 := t.q[min(i+3, last)*hd:][:hd]
			for p := pc; p*qkPanel < end; p++ {
				panel := t.kp[p*hd*qkPanel : (p+1)*hd*qkPanel]
				var c [8]archsimd.Float64x8
				c00, c01, c10, c11 := c[0], c[1], c[2], c[3]
				c20, c21, c30, c31 := c[4], c[5], c[6], c[7]
				for d := range hd {
					kd := panel[d*qkPanel : d*qkPanel+qkPanel]
					b0, b1 := archsimd.LoadFloat64x8(kd[:8]), archsimd.LoadFloat64x8(kd[8:16])
					a0 := archsimd.BroadcastFloat64x8(q0[d])
					c00, c01 = a0.MulAdd(b0, c00), a0.MulAdd(b1, c01)
					a1 := archsimd.BroadcastFloat64x8(q1[d])
					c10, c11 = a1.MulAdd(b0, c10), a1.MulAdd(b1, c11)
					a2 := archsimd.BroadcastFloat64x8(q2[d])
					c20, c21 = a2.MulAdd(b0, c20), a2.MulAdd(b1, c21)
					a3 := archsimd.BroadcastFloat64x8(q3[d])
					c30, c31 = a3.MulAdd(b0, c30), a3.MulAdd(b1, c31)
				}
				acc := [4][2]archsimd.Float64x8{{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}}
				j0 := p * qkPanel
				for r := range nr {
					row := t.dst[(i+r-t.r0)*t.stride:]
					lse := archsimd.BroadcastFloat64x8(-t.lse[i+r])
					e := t.end(i + r)
					if j0 >= e {
						continue
					}
					storeLanes(row, exp8(acc[r][0].MulAdd(scale, lse)), j0, t.c0, e)
					if j0+8 < e {
						storeLanes(row, exp8(acc[r][1].MulAdd(scale, lse)), j0+8, t.c0, e)
					}
				}
			}
		}
	}
	return true
}

// storeLanes stores the lanes of v that hold columns j0..j0+7 into row (column j
// at row[j−c0]), those in [c0, end) only.
func storeLanes(row []float64, v archsimd.Float64x8, j0, c0, end int) {
	if j0 >= c0 && j0+8 <= end {
		v.Store(row[j0-c0 : j0-c0+8])
		return
	}
	a, b := max(j0, c0), min(j0+8, end)
	if a >= b {
		return
	}
	var tmp [8]float64
	v.StoreArray(&tmp)
	copy(row[a-c0:b-c0], tmp[a-j0:b-j0])
}

// Constants of exp8: ln 2 split in two (hi with trailing zero bits, as in
// FreeBSD's e_exp.c) and 1/n! for the Taylor polynomial.
const (
	expLog2e = 1.44269504088896338700e+00
	expLn2Hi = 6.93147180369123816490e-01
	expLn2Lo = 1.90821492927058770002e-10
)

var expCoef = [...]float64{
	1.0 / 6227020800, 1.0 / 479001600, 1.0 / 39916800, 1.0 / 3628800, 1.0 / 362880, 1.0 / 40320,
	1.0 / 5040, 1.0 / 720, 1.0 / 120, 1.0 / 24, 1.0 / 6, 1.0 / 2, 1, 1,
}

// exp8 is eˣ of eight lanes within 2 ulp of math.Exp (TestExp8): x = k·ln 2 + r
// with k = round(x/ln 2) and |r| ≤ ln 2/2 (Cody–Waite, two-part ln 2 with fused
// multiply–adds), eʳ by its Taylor polynomial of degree 13 (truncation below
// 5e-18 relative) in Horner form, scaled by 2ᵏ with VSCALEFPD (which underflows
// gradually to 0). x is clamped below at −1100 (e⁻¹¹⁰⁰ is 0 in float64); x must not
// be NaN or +Inf.
func exp8(x archsimd.Float64x8) archsimd.Float64x8 {
	x = x.Max(archsimd.BroadcastFloat64x8(-1100))
	k := x.Mul(archsimd.BroadcastFloat64x8(expLog2e)).RoundScaled(0)
	r := k.MulAdd(archsimd.BroadcastFloat64x8(-expLn2Hi), x)
	r = k.MulAdd(archsimd.BroadcastFloat64x8(-expLn2Lo), r)
	p := archsimd.BroadcastFloat64x8(expCoef[0])
	for _, c := range expCoef[1:] {
		p = p.MulAdd(r, archsimd.BroadcastFloat64x8(c))
	}
	return p.Scale(k)
}
