package similarity

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"

	"github.com/attnscope/attnscope/tensor"
)

// asMatrix checks that t is a finite [n, d] representation and returns it as a
// matrix (sharing t's data). what names it in errors ("X").
func asMatrix(what string, t *tensor.Tensor) (*mat.Dense, error) {
	if t == nil {
		return nil, fmt.Errorf("%s: no representation", what)
	}
	if len(t.Shape) != 2 {
		return nil, fmt.Errorf("%s has shape %v, [tokens, neurons] expected", what, t.Shape)
	}
	n, d := t.Shape[0], t.Shape[1]
	if n < 2 || d < 1 {
		return nil, fmt.Errorf("%s has shape %v, at least 2 tokens and 1 neuron expected", what, t.Shape)
	}
	if len(t.Data) != n*d {
		return nil, fmt.Errorf("%s: shape %v needs %d values, got %d", what, t.Shape, n*d, len(t.Data))
	}
	for i, v := range t.Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%s: value %v at token %d, neuron %d; finite values expected", what, v, i/d, i%d)
		}
	}
	return mat.NewDense(n, d, t.Data), nil
}

// pair checks two representations of the same tokens.
func pair(x, y *tensor.Tensor) (*mat.Dense, *mat.Dense, error) {
	X, err := asMatrix("X", x)
	if err != nil {
		return nil, nil, err
	}
	Y, err := asMatrix("Y", y)
	if err != nil {
		return nil, nil, err
	}
	if nx, ny := X.RawMatrix().Rows, Y.RawMatrix().Rows; nx != ny {
		return nil, nil, fmt.Errorf("X has %d tokens and Y %d: the same tokens (rows) expected in both", nx, ny)
	}
	return X, Y, nil
}

// centred returns a copy of a with each column's mean subtracted (two passes).
func centred(a *mat.Dense) *mat.Dense {
	out := mat.DenseCopyOf(a)
	centreInPlace(out)
	return out
}

// centreInPlace subtracts each column's mean from a.
func centreInPlace(a *mat.Dense) {
	n, d := a.Dims()
	raw := a.RawMatrix()
	mean := make([]float64, d)
	for i := range n {
		row := raw.Data[i*raw.Stride : i*raw.Stride+d]
		for j, v := range row {
			mean[j] += v
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	for i := range n {
		row := raw.Data[i*raw.Stride : i*raw.Stride+d]
		for j := range row {
			row[j] -= mean[j]
		}
	}
}

// thinSVD returns the thin SVD of a (n×d): U (n×k), singular values (k, descending)
// and V (d×k), k = min(n, d).
func thinSVD(a *mat.Dense) (u *mat.Dense, s []float64, v *mat.Dense, err error) {
	var svd mat.SVD
	if !svd.Factorize(a, mat.SVDThin) {
		return nil, nil, nil, errors.New("the singular value decomposition did not converge")
	}
	u, v = new(mat.Dense), new(mat.Dense)
	svd.UTo(u)
	svd.VTo(v)
	return u, svd.Values(nil), v, nil
}

// numericalRank counts the singular values above max(s)·max(n, d)·ε, the tolerance
// of numpy.linalg.matrix_rank.
func numericalRank(s []float64, n, d int) int {
	if len(s) == 0 {
		return 0
	}
	tol := s[0] * float64(max(n, d)) * 0x1p-52
	r := 0
	for _, v := range s {
		if v > tol {
			r++
		}
	}
	return r
}

// singularValues returns the singular values of a, descending.
func singularValues(a mat.Matrix) ([]float64, error) {
	var svd mat.SVD
	if !svd.Factorize(a, mat.SVDNone) {
		return nil, errors.New("the singular value decomposition did not converge")
	}
	return svd.Values(nil), nil
}

// thinQ returns the n×c matrix with orthonormal columns of the thin (reduced) QR
// decomposition of a (n×c, n ≥ c), by Householder reflections (LAPACK dgeqrf,
// dorgqr).
func thinQ(a *mat.Dense) *mat.Dense {
	n, c := a.Dims()
	q := mat.DenseCopyOf(a)
	g := q.RawMatrix()
	ga := blas64.General{Rows: n, Cols: c, Stride: g.Stride, Data: g.Data}
	tau := make([]float64, c)
	work := make([]float64, 1)
	lapack64.Geqrf(ga, tau, work, -1)
	work = make([]float64, max(int(work[0]), c))
	lapack64.Geqrf(ga, tau, work, len(work))
	lapack64.Orgqr(ga, tau, work, -1)
	if int(work[0]) > len(work) {
		work = make([]float64, int(work[0]))
	}
	lapack64.Orgqr(ga, tau, work, len(work))
	return q
}

// pearson is the Pearson correlation of a and b; ok is false when either has zero
// variance.
func pearson(a, b []float64) (r float64, ok bool) {
	n := float64(len(a))
	var ma, mb float64
	for i := range a {
		ma += a[i]
		mb += b[i]
	}
	ma /= n
	mb /= n
	var sab, saa, sbb float64
	for i := range a {
		da, db := a[i]-ma, b[i]-mb
		sab += da * db
		saa += da * da
		sbb += db * db
	}
	// A variate whose spread is at rounding level relative to its values is
	// constant: its correlation is undefined.
	const rel = 64 * 0x1p-52
	var qa, qb float64
	for i := range a {
		qa += a[i] * a[i]
		qb += b[i] * b[i]
	}
	if saa <= rel*rel*qa || sbb <= rel*rel*qb {
		return 0, false
	}
	return sab / math.Sqrt(saa*sbb), true
}

// column copies column j of a.
func column(a *mat.Dense, j int) []float64 {
	return mat.Col(nil, j, a)
}

// isConstant reports whether every column of a varies over the rows by at most
// 64·ε times the largest magnitude in a: a representation equal for every token up
// to rounding, on which CKA is undefined.
func isConstant(a *mat.Dense) bool {
	n, d := a.Dims()
	raw := a.RawMatrix()
	var big float64
	for i := range n {
		for _, v := range raw.Data[i*raw.Stride : i*raw.Stride+d] {
			big = math.Max(big, math.Abs(v))
		}
	}
	tol := 64 * 0x1p-52 * big
	first := raw.Data[:d]
	for i := 1; i < n; i++ {
		for j, v := range raw.Data[i*raw.Stride : i*raw.Stride+d] {
			if math.Abs(v-first[j]) > 2*tol {
				return false
			}
		}
	}
	return true
}

// finite returns v, or an error when overflow or cancellation made it non-finite
// (inputs of magnitude near the float64 limit).
func finite(what string, v float64) (float64, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%s: the computation overflowed (values too large for float64 products; rescale the inputs)", what)
	}
	return v, nil
}
