package stats

import (
	"fmt"
	"math"
	"sort"
)

// Holm adjusts p-values for multiple comparisons by Holm's step-down method (Holm
// 1979): with p₍₁₎ ≤ … ≤ p₍ₘ₎, p̃₍ᵢ₎ = min(1, max_{j≤i} (m−j+1)·p₍ⱼ₎), returned
// in the order of p (statsmodels multipletests, method="holm"). It controls the
// family-wise error rate.
func Holm(p []float64) ([]float64, error) {
	order, err := sortedOrder(p)
	if err != nil {
		return nil, fmt.Errorf("holm: %w", err)
	}
	m := len(p)
	out := make([]float64, m)
	run := math.Inf(-1)
	for i, k := range order {
		run = math.Max(run, p[k]*float64(m-i))
		out[k] = math.Min(1, run)
	}
	return out, nil
}

// BenjaminiHochberg adjusts p-values to control the false discovery rate
// (Benjamini & Hochberg 1995): with p₍₁₎ ≤ … ≤ p₍ₘ₎,
// p̃₍ᵢ₎ = min(1, min_{j≥i} p₍ⱼ₎/(j/m)), returned in the order of p (statsmodels
// multipletests, method="fdr_bh"; scipy.stats.false_discovery_control, method="bh").
func BenjaminiHochberg(p []float64) ([]float64, error) {
	order, err := sortedOrder(p)
	if err != nil {
		return nil, fmt.Errorf("benjamini-hochberg: %w", err)
	}
	m := len(p)
	out := make([]float64, m)
	run := math.Inf(1)
	for i := m - 1; i >= 0; i-- {
		k := order[i]
		run = math.Min(run, p[k]/(float64(i+1)/float64(m)))
		out[k] = math.Min(1, run)
	}
	return out, nil
}

func sortedOrder(p []float64) ([]int, error) {
	for i, v := range p {
		if math.IsNaN(v) || v < 0 || v > 1 {
			return nil, fmt.Errorf("p-value %d is %v, a value in [0, 1] expected", i, v)
		}
	}
	order := make([]int, len(p))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return p[order[a]] < p[order[b]] })
	return order, nil
}
