package analysis

import (
	"fmt"
	"math"
	"sort"
)

// GroundTruthScore compares where a model looked with where it should look.
type GroundTruthScore struct {
	// RelevantMass = Σ_{k: g_k > 0} a_k / Σ_k a_k: the share of the attention paid to
	// the lines the ground truth marks relevant (NaN when Σ a = 0).
	RelevantMass float64
	// UniformBaseline = |{k: g_k > 0}| / K: RelevantMass of attention spread evenly over
	// the K lines, the chance level to compare RelevantMass with.
	UniformBaseline float64
	// WeightedTruth = Σ_k a_k g_k / Σ_k a_k: the ground-truth weight of a line drawn
	// with probability proportional to its attention (NaN when Σ a = 0).
	WeightedTruth float64
	// Spearman is Spearman's ρ between a and g: Pearson's correlation of their ranks,
	// tied values sharing their mean rank (NaN when a or g is constant).
	Spearman float64
}

// ScoreGroundTruth scores line-level attention a (a_k ≥ 0: the attention paid to the
// tokens of line k) against ground-truth line weights g (the attention_weights of
// followup-attention's prompt creators: assignment chains weigh a line 1 − depth/max_depth
// in the dependency tree of the queried variable). RelevantMass and UniformBaseline are
// the attention-mass view, Spearman the rank view used by followup-attention's
// comparator (Paltenghi et al., "Follow-up Attention: An Empirical Study of Developer
// and Neural Model Code Exploration", IEEE TSE 2024); see GroundTruthScore for the
// formulas.
func ScoreGroundTruth(a, g []float64) (GroundTruthScore, error) {
	if len(a) != len(g) || len(a) == 0 {
		return GroundTruthScore{}, fmt.Errorf("%d line attentions for %d ground-truth weights (want equal, at least one)", len(a), len(g))
	}
	var total, rel, weighted float64
	nRel := 0
	for k, w := range g {
		total += a[k]
		weighted += a[k] * w
		if w > 0 {
			rel += a[k]
			nRel++
		}
	}
	s := GroundTruthScore{UniformBaseline: float64(nRel) / float64(len(g)), RelevantMass: math.NaN(), WeightedTruth: math.NaN()}
	if total > 0 {
		s.RelevantMass, s.WeightedTruth = rel/total, weighted/total
	}
	s.Spearman = pearson(averageRanks(a), averageRanks(g))
	return s, nil
}

// averageRanks returns the 1-based ranks of x, ties sharing their mean rank.
func averageRanks(x []float64) []float64 {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return x[idx[i]] < x[idx[j]] })
	r := make([]float64, len(x))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && x[idx[j+1]] == x[idx[i]] {
			j++
		}
		mean := float64(i+j)/2 + 1
		for k := i; k <= j; k++ {
			r[idx[k]] = mean
		}
		i = j + 1
	}
	return r
}

// pearson is Pearson's correlation coefficient, NaN when either input is constant.
func pearson(x, y []float64) float64 {
	n := float64(len(x))
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx, my = mx/n, my/n
	var sxy, sxx, syy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	if sxx == 0 || syy == 0 {
		return math.NaN()
	}
	return sxy / math.Sqrt(sxx*syy)
}
