//go:build goexperiment.simd && amd64

package analysis

import "simd/archsimd"

// entropyTermsVec subtracts from h, in order, the terms c·ln c of RowEntropy's
// loops over row (c = v/div when div ≠ 0, only where c > 0; else c = v + add for
// every element, with the weight w = v when raw or c itself): the logarithms
// eight at a time by log8 (each equal to math.Log bit for bit), the products and
// the subtractions one by one in the scalar loop's order, so the result equals the
// scalar loop's bit for bit. ok is false when the CPU lacks AVX-512.
func entropyTermsVec(row []float64, h, div, add float64, raw bool) (float64, bool) {
	if !have512 {
		return h, false
	}
	var c, lg [8]float64
	zero := archsimd.BroadcastFloat64x8(0)
	k := 0
	for ; k+8 <= len(row); k += 8 {
		v := archsimd.LoadFloat64x8(row[k : k+8])
		var x archsimd.Float64x8
		if div != 0 {
			x = v.Div(archsimd.BroadcastFloat64x8(div))
		} else {
			x = v.Add(archsimd.BroadcastFloat64x8(add))
		}
		use := x.Greater(zero)
		if div == 0 {
			use = zero.Equal(zero) // every element (math.Log lane by lane unless all are positive and finite)
		}
		bits := use.ToBits()
		if bits == 0 {
			continue // every term skipped: h unchanged
		}
		x.StoreArray(&c)
		logMasked8(x, use).StoreArray(&lg)
		for l := range 8 {
			switch {
			case div != 0:
				if c[l] > 0 {
					h -= c[l] * lg[l]
				}
			case raw:
				h -= row[k+l] * lg[l]
			default:
				h -= c[l] * lg[l]
			}
		}
	}
	for ; k < len(row); k++ {
		h = entropyTerm(h, row[k], div, add, raw)
	}
	return h, true
}
