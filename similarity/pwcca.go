package similarity

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/attnscope/attnscope/tensor"
)

// PWCCAOptions configure PWCCA.
type PWCCAOptions struct {
	// Reg is pyrcca's regularisation r ≥ 0 added to the diagonal of XᵀX and YᵀY
	// (BERT-non-text uses 1e-4 for localization, 1e-3 for fluorescence, 1.5e-3 for
	// stability).
	Reg float64
	// Uncentred reproduces BERT-non-text exactly: X and Y enter the CCA without
	// subtracting their column means (its code comments say inputs must be zero-mean
	// but never centre them). The default centres both, as CCA is defined.
	Uncentred bool
}

// PWCCAResult is the outcome of PWCCA.
type PWCCAResult struct {
	// Correlations are the canonical correlations ρ_k (Pearson correlations of the
	// canonical variates), in the order of decreasing eigenvalue.
	Correlations []float64
	// Weights are the normalised projection weights α_k / Σα.
	Weights []float64
	// PWCCA is Σ_k α_k ρ_k / Σα; Distance is 1 − PWCCA.
	PWCCA, Distance float64
}

// PWCCA computes projection-weighted CCA between X (n×d_x) and Y (n×d_y) as
// BERT-non-text's utils.PWCCA with pyrcca's linear CCA (see the package
// documentation for the formulas), with three definitions where the original
// returns NaN, crashes or misaligns:
//
//   - The number of canonical pairs is c = min(rank X, rank Y) (numerical ranks of
//     the matrices as used, centred or not, with numpy.linalg.matrix_rank's
//     tolerance) instead of min(d_x, d_y): the eigenvalues beyond the ranks are zeros
//     whose eigenvectors are arbitrary and whose variates are constant (NaN
//     correlations in the original). For full-rank inputs both agree.
//   - With Reg = 0 the covariance of a rank-deficient X is singular (scipy's eigh
//     fails); CCA depends only on the column spaces, so X and Y enter through
//     orthonormal bases of their column spaces (U of the thin SVD) and the canonical
//     correlations are the singular values of U_xᵀU_y (Björck & Golub 1973), which is
//     also the numerically stable way for full-rank inputs. With Reg > 0 the
//     regularised eigenproblem is solved as the SVD of L_x⁻¹ C_xy L_y⁻ᵀ (L the Cholesky
//     factors of C_xx + rI, C_yy + rI), whose singular values are the positive
//     eigenvalues of the pencil.
//   - Every ρ_k keeps its weight α_k (the original drops exactly-zero correlations
//     but not their weights). A canonical variate that is constant over the tokens
//     (possible only uncentred) has no Pearson correlation: an error.
func PWCCA(x, y *tensor.Tensor, opt PWCCAOptions) (PWCCAResult, error) {
	if !(opt.Reg >= 0) || math.IsInf(opt.Reg, 0) {
		return PWCCAResult{}, fmt.Errorf("PWCCA: regularisation %v, a finite value ≥ 0 expected", opt.Reg)
	}
	X, Y, err := pair(x, y)
	if err != nil {
		return PWCCAResult{}, fmt.Errorf("PWCCA: %w", err)
	}
	if !opt.Uncentred {
		X, Y = centred(X), centred(Y)
	}
	var ux, uy *mat.Dense
	if opt.Reg == 0 {
		ux, uy, err = ccaVariatesExact(X, Y)
	} else {
		ux, uy, err = ccaVariatesReg(X, Y, opt.Reg)
	}
	if err != nil {
		return PWCCAResult{}, fmt.Errorf("PWCCA: %w", err)
	}
	_, c := ux.Dims()
	rho := make([]float64, c)
	for k := range c {
		r, ok := pearson(column(ux, k), column(uy, k))
		if !ok {
			return PWCCAResult{}, fmt.Errorf("PWCCA: canonical variate %d is constant over the tokens, its correlation is undefined (uncentred inputs with a constant direction; use the centred default)", k+1)
		}
		rho[k] = r
	}
	q := ux
	if opt.Reg != 0 {
		q = thinQ(ux)
	}
	var xq mat.Dense
	xq.Mul(X.T(), q)
	alpha := make([]float64, c)
	var sum float64
	for k := range c {
		for _, v := range mat.Col(nil, k, &xq) {
			alpha[k] += math.Abs(v)
		}
		sum += alpha[k]
	}
	if sum == 0 {
		return PWCCAResult{}, errors.New("PWCCA: every projection weight is 0")
	}
	res := PWCCAResult{Correlations: rho, Weights: alpha}
	for k := range c {
		alpha[k] /= sum
		res.PWCCA += alpha[k] * rho[k]
	}
	if _, err := finite("PWCCA", res.PWCCA); err != nil {
		return PWCCAResult{}, err
	}
	res.Distance = 1 - res.PWCCA
	return res, nil
}

// ranks returns the numerical ranks of X and Y, an error when one is 0.
func ranks(X, Y *mat.Dense) (int, int, error) {
	out := [2]int{}
	for i, m := range []*mat.Dense{X, Y} {
		s, err := singularValues(m)
		if err != nil {
			return 0, 0, err
		}
		n, d := m.Dims()
		if out[i] = numericalRank(s, n, d); out[i] == 0 {
			return 0, 0, fmt.Errorf("%s is zero after centring (every token has the same representation): no canonical direction", [2]string{"X", "Y"}[i])
		}
	}
	return out[0], out[1], nil
}

// ccaVariatesExact returns the canonical variates (n×c each, unit norm) of
// unregularised CCA from orthonormal bases of the column spaces.
func ccaVariatesExact(X, Y *mat.Dense) (*mat.Dense, *mat.Dense, error) {
	bx, err := rangeBasis("X", X)
	if err != nil {
		return nil, nil, err
	}
	by, err := rangeBasis("Y", Y)
	if err != nil {
		return nil, nil, err
	}
	var m mat.Dense
	m.Mul(bx.T(), by)
	a, _, b, err := thinSVD(&m)
	if err != nil {
		return nil, nil, err
	}
	_, c := a.Dims()
	var ux, uy mat.Dense
	ux.Mul(bx, a.Slice(0, a.RawMatrix().Rows, 0, c))
	uy.Mul(by, b.Slice(0, b.RawMatrix().Rows, 0, c))
	return &ux, &uy, nil
}

// rangeBasis returns an orthonormal basis (n×rank) of the column space of a.
func rangeBasis(what string, a *mat.Dense) (*mat.Dense, error) {
	u, s, _, err := thinSVD(a)
	if err != nil {
		return nil, err
	}
	n, d := a.Dims()
	r := numericalRank(s, n, d)
	if r == 0 {
		return nil, fmt.Errorf("%s is zero after centring (every token has the same representation): no canonical direction", what)
	}
	return mat.DenseCopyOf(u.Slice(0, n, 0, r)), nil
}

// ccaVariatesReg returns the canonical variates X W_x, Y W_y of pyrcca's regularised
// CCA for the c = min(rank X, rank Y) largest eigenvalues.
func ccaVariatesReg(X, Y *mat.Dense, reg float64) (*mat.Dense, *mat.Dense, error) {
	rx, ry, err := ranks(X, Y)
	if err != nil {
		return nil, nil, err
	}
	lx, err := regCholesky("X", X, reg)
	if err != nil {
		return nil, nil, err
	}
	ly, err := regCholesky("Y", Y, reg)
	if err != nil {
		return nil, nil, err
	}
	var cxy mat.Dense
	cxy.Mul(X.T(), Y)
	t := cxy.RawMatrix()
	tg := blas64.General{Rows: t.Rows, Cols: t.Cols, Stride: t.Stride, Data: t.Data}
	blas64.Trsm(blas.Left, blas.NoTrans, 1, lx, tg)
	blas64.Trsm(blas.Right, blas.Trans, 1, ly, tg)
	p, _, r, err := thinSVD(&cxy)
	if err != nil {
		return nil, nil, err
	}
	c := min(rx, ry)
	wx := mat.DenseCopyOf(p.Slice(0, p.RawMatrix().Rows, 0, c))
	wy := mat.DenseCopyOf(r.Slice(0, r.RawMatrix().Rows, 0, c))
	for _, w := range []struct {
		m *mat.Dense
		l blas64.Triangular
	}{{wx, lx}, {wy, ly}} {
		g := w.m.RawMatrix()
		blas64.Trsm(blas.Left, blas.Trans, 1, w.l, blas64.General{Rows: g.Rows, Cols: g.Cols, Stride: g.Stride, Data: g.Data})
	}
	var ux, uy mat.Dense
	ux.Mul(X, wx)
	uy.Mul(Y, wy)
	return &ux, &uy, nil
}

// regCholesky returns the lower Cholesky factor of AᵀA + reg·I (symmetrised).
func regCholesky(what string, a *mat.Dense, reg float64) (blas64.Triangular, error) {
	_, d := a.Dims()
	var c mat.Dense
	c.Mul(a.T(), a)
	for _, v := range c.RawMatrix().Data {
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return blas64.Triangular{}, fmt.Errorf("%sᵀ%s overflows float64 (values too large; rescale the inputs)", what, what)
		}
	}
	s := mat.NewSymDense(d, nil)
	for i := range d {
		for j := i; j < d; j++ {
			s.SetSym(i, j, (c.At(i, j)+c.At(j, i))/2)
		}
		s.SetSym(i, i, s.At(i, i)+reg)
	}
	var ch mat.Cholesky
	if !ch.Factorize(s) {
		return blas64.Triangular{}, fmt.Errorf("%sᵀ%s + %g·I is not positive definite in floating point: raise the regularisation", what, what, reg)
	}
	var l mat.TriDense
	ch.LTo(&l)
	return l.RawTriangular(), nil
}
