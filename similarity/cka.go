package similarity

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/attnscope/attnscope/tensor"
)

// LinearCKA returns linear CKA between X and Y: ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) for
// the centred matrices (Kornblith et al. 2019, eq. 4 of the feature-space form),
// computed through the n×n Gram matrices instead when that is cheaper (n < d). A
// representation that is constant over the tokens has no CKA: an error.
func LinearCKA(x, y *tensor.Tensor) (float64, error) {
	X, Y, err := pair(x, y)
	if err != nil {
		return 0, fmt.Errorf("linear CKA: %w", err)
	}
	if err := checkVaries(X, Y); err != nil {
		return 0, fmt.Errorf("linear CKA: %w", err)
	}
	X, Y = centred(X), centred(Y)
	n, dx := X.Dims()
	_, dy := Y.Dims()
	if n*n*(dx+dy) < n*(dx*dx+dy*dy+dx*dy) {
		kx, ky := gramLinear(X), gramLinear(Y)
		return ckaFromParts(frobDot(kx, ky), frob(kx), frob(ky))
	}
	sx, sy := selfNorm(X), selfNorm(Y)
	return ckaFromParts(crossNorm2(X, Y), sx, sy)
}

// ckaFromParts returns cross / (nx·ny), an error when a norm is zero.
func ckaFromParts(cross, nx, ny float64) (float64, error) {
	switch {
	case nx == 0:
		return 0, errors.New("CKA: X is constant over the tokens (its centred Gram matrix is zero)")
	case ny == 0:
		return 0, errors.New("CKA: Y is constant over the tokens (its centred Gram matrix is zero)")
	}
	return finite("CKA", cross/(nx*ny))
}

// selfNorm returns ‖AᵀA‖_F.
func selfNorm(a *mat.Dense) float64 { return math.Sqrt(crossNorm2(a, a)) }

// crossNorm2 returns ‖AᵀB‖²_F.
func crossNorm2(a, b *mat.Dense) float64 {
	var s float64
	for _, v := range crossProduct(a, b) {
		s += v * v
	}
	return s
}

// gramLinear returns AAᵀ (n×n).
func gramLinear(a *mat.Dense) *mat.Dense {
	var k mat.Dense
	k.Mul(a, a.T())
	return &k
}

func frobDot(a, b *mat.Dense) float64 {
	var s float64
	bd := b.RawMatrix().Data
	for i, v := range a.RawMatrix().Data {
		s += v * bd[i]
	}
	return s
}

func frob(a *mat.Dense) float64 { return math.Sqrt(frobDot(a, a)) }

// LinearCKAMatrix returns linear CKA between every xs[i] and ys[j] (row-major
// len(xs)×len(ys)), centring a copy of each representation and computing each
// ‖XᵀX‖_F once.
func LinearCKAMatrix(xs, ys []*tensor.Tensor) ([]float64, error) {
	return linearCKAMatrix(xs, ys, false)
}

// LinearCKAMatrixInPlace is LinearCKAMatrix centring xs and ys in place instead of
// copying them (half the memory for many large layers); their column means are
// subtracted when it returns, even with an error.
func LinearCKAMatrixInPlace(xs, ys []*tensor.Tensor) ([]float64, error) {
	return linearCKAMatrix(xs, ys, true)
}

func linearCKAMatrix(xs, ys []*tensor.Tensor, inPlace bool) ([]float64, error) {
	if len(xs) == 0 || len(ys) == 0 {
		return nil, errors.New("linear CKA matrix: no representations")
	}
	prep := func(what string, ts []*tensor.Tensor) ([]*mat.Dense, []float64, error) {
		ms := make([]*mat.Dense, len(ts))
		norms := make([]float64, len(ts))
		for i, t := range ts {
			m, err := asMatrix(fmt.Sprintf("%s[%d]", what, i), t)
			if err != nil {
				return nil, nil, err
			}
			if i > 0 && m.RawMatrix().Rows != ms[0].RawMatrix().Rows {
				return nil, nil, fmt.Errorf("%s[%d] has %d tokens, %s[0] %d: the same tokens expected", what, i, m.RawMatrix().Rows, what, ms[0].RawMatrix().Rows)
			}
			if isConstant(m) {
				return nil, nil, fmt.Errorf("%s[%d] is constant over the tokens: no CKA", what, i)
			}
			if inPlace {
				centreInPlace(m)
				ms[i] = m
			} else {
				ms[i] = centred(m)
			}
			if norms[i] = selfNorm(ms[i]); norms[i] == 0 {
				return nil, nil, fmt.Errorf("%s[%d] is constant over the tokens (its centred Gram matrix is zero): no CKA", what, i)
			}
		}
		return ms, norms, nil
	}
	mx, nx, err := prep("X", xs)
	if err != nil {
		return nil, fmt.Errorf("linear CKA matrix: %w", err)
	}
	my, ny, err := prep("Y", ys)
	if err != nil {
		return nil, fmt.Errorf("linear CKA matrix: %w", err)
	}
	if a, b := mx[0].RawMatrix().Rows, my[0].RawMatrix().Rows; a != b {
		return nil, fmt.Errorf("linear CKA matrix: X has %d tokens and Y %d: the same tokens expected", a, b)
	}
	out := make([]float64, len(xs)*len(ys))
	for i := range mx {
		for j := range my {
			v, err := finite("linear CKA matrix", crossNorm2(mx[i], my[j])/(nx[i]*ny[j]))
			if err != nil {
				return nil, err
			}
			out[i*len(ys)+j] = v
		}
	}
	return out, nil
}

// Kernel selects the kernel of CKA: linear (the zero value) or RBF.
type Kernel struct {
	// RBF selects exp(−‖x_i − x_j‖² / (2 t² m)), m the median of the squared distances
	// between all pairs of tokens of the input (Kornblith et al.'s gram_rbf).
	RBF bool
	// Threshold is t (0 means 1).
	Threshold float64
}

func (k Kernel) String() string {
	if k.RBF {
		return fmt.Sprintf("rbf(threshold %g)", k.threshold())
	}
	return "linear"
}

func (k Kernel) threshold() float64 {
	if k.Threshold == 0 {
		return 1
	}
	return k.Threshold
}

// gram returns the (uncentred) Gram matrix of a under k.
func (k Kernel) gram(what string, a *mat.Dense) (*mat.Dense, error) {
	if !k.RBF {
		return gramLinear(a), nil
	}
	if t := k.threshold(); !(t > 0) || math.IsInf(t, 0) {
		return nil, fmt.Errorf("RBF threshold %v, a finite value > 0 expected", k.Threshold)
	}
	g := gramLinear(a)
	n, _ := g.Dims()
	raw := g.RawMatrix()
	sq := make([]float64, n)
	for i := range n {
		sq[i] = raw.Data[i*raw.Stride+i]
	}
	for i := range n {
		row := raw.Data[i*raw.Stride : i*raw.Stride+n]
		for j := range row {
			row[j] = -2*row[j] + sq[i] + sq[j]
		}
	}
	med := median(raw.Data[:n*n])
	if med == 0 {
		return nil, fmt.Errorf("%s: the median squared distance between tokens is 0 (most tokens have the same representation): the RBF bandwidth is undefined", what)
	}
	s := 2 * k.threshold() * k.threshold() * med
	for i, v := range raw.Data[:n*n] {
		raw.Data[i] = math.Exp(-v / s)
	}
	return g, nil
}

// median is numpy.median of v (mean of the two middle values for an even count).
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// centreGram returns HKH.
func centreGram(k *mat.Dense) *mat.Dense {
	n, _ := k.Dims()
	out := mat.DenseCopyOf(k)
	raw := out.RawMatrix()
	means := make([]float64, n)
	for i := range n {
		for j, v := range raw.Data[i*raw.Stride : i*raw.Stride+n] {
			means[j] += v
		}
	}
	var grand float64
	for j := range means {
		means[j] /= float64(n)
		grand += means[j]
	}
	grand /= float64(n)
	for i := range n {
		row := raw.Data[i*raw.Stride : i*raw.Stride+n]
		for j := range row {
			row[j] += grand - means[i] - means[j]
		}
	}
	return out
}

// CKA returns CKA between X and Y under kernel k: ⟨K̄, L̄⟩_F / (‖K̄‖_F ‖L̄‖_F) with
// centred Gram matrices (Kornblith et al. 2019). The linear kernel goes through
// LinearCKA; the RBF kernel needs n×n Gram matrices (use MinibatchCKA for many
// tokens).
func CKA(x, y *tensor.Tensor, k Kernel) (float64, error) {
	if !k.RBF {
		return LinearCKA(x, y)
	}
	X, Y, err := pair(x, y)
	if err != nil {
		return 0, fmt.Errorf("RBF CKA: %w", err)
	}
	if err := checkVaries(X, Y); err != nil {
		return 0, fmt.Errorf("RBF CKA: %w", err)
	}
	kx, err := k.gram("X", X)
	if err != nil {
		return 0, fmt.Errorf("RBF CKA: %w", err)
	}
	ky, err := k.gram("Y", Y)
	if err != nil {
		return 0, fmt.Errorf("RBF CKA: %w", err)
	}
	kx, ky = centreGram(kx), centreGram(ky)
	return ckaFromParts(frobDot(kx, ky), frob(kx), frob(ky))
}

// MinibatchCKA accumulates CKA over minibatches with the unbiased HSIC estimator
// (Nguyen, Raghu & Kornblith 2021), for representations too large for one Gram
// matrix: Add each minibatch (the same tokens of X and Y, at least 4), then Value.
type MinibatchCKA struct {
	Kernel     Kernel
	xy, xx, yy float64
	batches    int
}

// Add accumulates HSIC₁(K,L), HSIC₁(K,K) and HSIC₁(L,L) of one minibatch.
func (m *MinibatchCKA) Add(x, y *tensor.Tensor) error {
	X, Y, err := pair(x, y)
	if err != nil {
		return fmt.Errorf("minibatch CKA, batch %d: %w", m.batches+1, err)
	}
	if n := X.RawMatrix().Rows; n < 4 {
		return fmt.Errorf("minibatch CKA, batch %d: %d tokens, the unbiased HSIC estimator needs at least 4", m.batches+1, n)
	}
	kx, err := m.Kernel.gram("X", X)
	if err != nil {
		return fmt.Errorf("minibatch CKA, batch %d: %w", m.batches+1, err)
	}
	ky, err := m.Kernel.gram("Y", Y)
	if err != nil {
		return fmt.Errorf("minibatch CKA, batch %d: %w", m.batches+1, err)
	}
	m.xy += unbiasedHSIC(kx, ky)
	m.xx += unbiasedHSIC(kx, kx)
	m.yy += unbiasedHSIC(ky, ky)
	m.batches++
	return nil
}

// Value returns mean HSIC₁(K,L) / sqrt(mean HSIC₁(K,K) · mean HSIC₁(L,L)).
func (m *MinibatchCKA) Value() (float64, error) {
	if m.batches == 0 {
		return 0, errors.New("minibatch CKA: no minibatch added")
	}
	if math.IsInf(m.xx, 0) || math.IsInf(m.yy, 0) || math.IsNaN(m.xy) {
		return finite("minibatch CKA", math.NaN())
	}
	if !(m.xx > 0) || !(m.yy > 0) {
		return 0, fmt.Errorf("minibatch CKA: the unbiased HSIC of X with itself (%g) or of Y with itself (%g) is not positive: the representations are (nearly) constant", m.xx, m.yy)
	}
	return finite("minibatch CKA", m.xy/math.Sqrt(m.xx*m.yy))
}

// unbiasedHSIC is HSIC₁ of Song et al. 2012 (eq. 5) for Gram matrices k and l; their
// diagonals are ignored.
func unbiasedHSIC(k, l *mat.Dense) float64 {
	n, _ := k.Dims()
	kr, lr := k.RawMatrix(), l.RawMatrix()
	var tr, sumK, sumL, rows float64
	for i := range n {
		krow := kr.Data[i*kr.Stride : i*kr.Stride+n]
		lrow := lr.Data[i*lr.Stride : i*lr.Stride+n]
		var rk, rl float64
		for j := range krow {
			if j == i {
				continue
			}
			tr += krow[j] * lrow[j]
			rk += krow[j]
			rl += lrow[j]
		}
		sumK += rk
		sumL += rl
		rows += rk * rl
	}
	nf := float64(n)
	return (tr + sumK*sumL/((nf-1)*(nf-2)) - 2/(nf-2)*rows) / (nf * (nf - 3))
}

// checkVaries returns an error naming X or Y when one is constant over the tokens.
func checkVaries(X, Y *mat.Dense) error {
	if isConstant(X) {
		return errors.New("X is constant over the tokens (every token has the same representation): CKA is undefined")
	}
	if isConstant(Y) {
		return errors.New("Y is constant over the tokens (every token has the same representation): CKA is undefined")
	}
	return nil
}
