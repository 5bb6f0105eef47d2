package viz

import (
	"fmt"
	"math"
	"slices"
)

// Matrix is a dense row-major matrix of float64 values: Data[r*Cols+c].
type Matrix struct {
	Rows, Cols int
	Data       []float64
}

// NewMatrix wraps data (not copied) as a rows × cols matrix.
func NewMatrix(rows, cols int, data []float64) (Matrix, error) {
	if rows < 0 || cols < 0 || rows*cols != len(data) {
		return Matrix{}, fmt.Errorf("matrix %d×%d needs %d values, got %d", rows, cols, max(rows*cols, 0), len(data))
	}
	return Matrix{Rows: rows, Cols: cols, Data: data}, nil
}

// MatrixFromFloat32 converts row-major float32 data to a Matrix.
func MatrixFromFloat32(rows, cols int, data []float32) (Matrix, error) {
	if rows < 0 || cols < 0 || rows*cols != len(data) {
		return Matrix{}, fmt.Errorf("matrix %d×%d needs %d values, got %d", rows, cols, max(rows*cols, 0), len(data))
	}
	d := make([]float64, len(data))
	for i, v := range data {
		d[i] = float64(v)
	}
	return Matrix{Rows: rows, Cols: cols, Data: d}, nil
}

// At returns the value at row r, column c.
func (m Matrix) At(r, c int) float64 { return m.Data[r*m.Cols+c] }

// finiteRange returns the smallest and largest finite values (0, 0 if none).
func finiteRange(v []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		lo = min(lo, x)
		hi = max(hi, x)
	}
	if lo > hi {
		return 0, 0
	}
	return lo, hi
}

// percentile returns numpy's default (linear) percentile q ∈ [0, 100] of the finite
// values of v.
func percentile(v []float64, q float64) float64 {
	s := make([]float64, 0, len(v))
	for _, x := range v {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		return 0
	}
	slices.Sort(s)
	pos := q / 100 * float64(len(s)-1)
	i := int(math.Floor(pos))
	if i >= len(s)-1 {
		return s[len(s)-1]
	}
	f := pos - float64(i)
	return s[i]*(1-f) + s[i+1]*f
}

// quantile returns an order statistic near the q-th percentile (q ∈ [0, 100]) of the
// finite values of v: the value of rank ⌊q/100·(n−1)⌋ in sorted order, found by
// selection in O(n) expected time (used for colour-scale clipping, where the exact
// interpolation of numpy's percentile does not matter). scratch may be reused.
func quantile(v []float64, q float64, scratch []float64) (float64, []float64) {
	s := scratch[:0]
	for _, x := range v {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		return 0, s
	}
	k := int(q / 100 * float64(len(s)-1))
	k = min(max(k, 0), len(s)-1)
	lo, hi := 0, len(s)-1
	for lo < hi {
		pivot := s[(lo+hi)/2]
		i, j := lo, hi
		for i <= j {
			for s[i] < pivot {
				i++
			}
			for s[j] > pivot {
				j--
			}
			if i <= j {
				s[i], s[j] = s[j], s[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return s[k], s
		}
	}
	return s[k], s
}
