package similarity

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/attnscope/attnscope/tensor"
)

// SVCCAOptions configure SVCCA.
type SVCCAOptions struct {
	// Variance is the fraction of each representation's variance (sum of squared
	// singular values of the centred matrix) its kept directions must explain; 0
	// means 0.99 (Raghu et al. 2017).
	Variance float64
	// Dims, when > 0, keeps that many leading directions instead (Google's SVCCA
	// notebooks keep 20), or all non-zero ones when fewer.
	Dims int
}

// SVCCAResult is the outcome of SVCCA.
type SVCCAResult struct {
	// KeptX and KeptY are the numbers of singular directions kept.
	KeptX, KeptY int
	// Correlations are the min(KeptX, KeptY) canonical correlations, descending.
	Correlations []float64
	// SVCCA is their mean.
	SVCCA float64
}

// SVCCA centres X and Y, keeps each one's leading singular directions (opt), and
// returns the mean canonical correlation between the reduced representations
// U_k S_k. As CCA depends only on column spaces, the correlations are the singular
// values of U_{k,x}ᵀ U_{k,y} (clipped to 1 against rounding). Directions with a
// singular value at or below numpy.linalg.matrix_rank's tolerance are never kept,
// so rank-deficient inputs have a defined value; a constant representation is an
// error.
func SVCCA(x, y *tensor.Tensor, opt SVCCAOptions) (SVCCAResult, error) {
	if opt.Variance == 0 {
		opt.Variance = 0.99
	}
	if !(opt.Variance > 0 && opt.Variance <= 1) {
		return SVCCAResult{}, fmt.Errorf("SVCCA: variance fraction %v, a value in (0, 1] expected", opt.Variance)
	}
	if opt.Dims < 0 {
		return SVCCAResult{}, fmt.Errorf("SVCCA: %d dimensions, a count ≥ 0 expected", opt.Dims)
	}
	X, Y, err := pair(x, y)
	if err != nil {
		return SVCCAResult{}, fmt.Errorf("SVCCA: %w", err)
	}
	var bases [2]*mat.Dense
	var kept [2]int
	for i, m := range []*mat.Dense{centred(X), centred(Y)} {
		u, s, _, err := thinSVD(m)
		if err != nil {
			return SVCCAResult{}, fmt.Errorf("SVCCA: %w", err)
		}
		n, d := m.Dims()
		r := numericalRank(s, n, d)
		if r == 0 {
			return SVCCAResult{}, fmt.Errorf("SVCCA: %s is constant over the tokens (zero after centring)", [2]string{"X", "Y"}[i])
		}
		k := keepDims(s[:r], opt)
		kept[i] = k
		bases[i] = mat.DenseCopyOf(u.Slice(0, n, 0, k))
	}
	var m mat.Dense
	m.Mul(bases[0].T(), bases[1])
	rho, err := singularValues(&m)
	if err != nil {
		return SVCCAResult{}, fmt.Errorf("SVCCA: %w", err)
	}
	res := SVCCAResult{KeptX: kept[0], KeptY: kept[1], Correlations: rho}
	for i, v := range rho {
		rho[i] = math.Min(v, 1)
		res.SVCCA += rho[i]
	}
	res.SVCCA /= float64(len(rho))
	if _, err := finite("SVCCA", res.SVCCA); err != nil {
		return SVCCAResult{}, err
	}
	return res, nil
}

// keepDims is the number of leading singular values s (all non-zero) to keep.
func keepDims(s []float64, opt SVCCAOptions) int {
	if opt.Dims > 0 {
		return min(opt.Dims, len(s))
	}
	var total float64
	for _, v := range s {
		total += v * v
	}
	var acc float64
	for k, v := range s {
		acc += v * v
		if acc >= opt.Variance*total {
			return k + 1
		}
	}
	return len(s)
}
