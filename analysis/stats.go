package analysis

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// EntropyConvention selects one of the entropy formulas of the originals.
type EntropyConvention string

// Entropy conventions.
const (
	// EntropyExact: H_i = −Σ_j p_ij ln p_ij on the row normalised to sum 1, 0·ln 0 = 0
	// (PROPOSED, spec §1.10 item 4). Rows with no mass are skipped in means.
	EntropyExact EntropyConvention = "exact"
	// EntropyAnalyzer: e_i = −Σ_j w_ij ln(w_ij + 1e−8) on the raw weights (the autoencoder
	// AttentionDataAnalyzer, spec §3.3 item 6). Every row counts.
	EntropyAnalyzer EntropyConvention = "analyzer"
	// EntropyShifted: ã = a + 1e−10, H = −Σ_j ã_j ln ã_j (Text_to_Python's notebook,
	// spec §5.4). Every row counts.
	EntropyShifted EntropyConvention = "shifted"
)

// RowEntropy returns the entropy of one attention row under convention c and whether the
// row counts (false only for an all-zero row under EntropyExact).
func RowEntropy(row []float64, c EntropyConvention) (float64, bool) {
	var div, add float64
	raw := false
	switch c {
	case EntropyExact, "":
		s := 0.0
		for _, v := range row {
			s += v
		}
		if s <= 0 {
			return 0, false
		}
		div = s
	case EntropyAnalyzer:
		add, raw = 1e-8, true
	case EntropyShifted:
		add = 1e-10
	default:
		return math.NaN(), false
	}
	if h, ok := entropyTermsVec(row, 0, div, add, raw); ok {
		return h, true
	}
	h := 0.0
	for _, v := range row {
		h = entropyTerm(h, v, div, add, raw)
	}
	return h, true
}

// entropyTerm is h − c·ln c for one weight v of RowEntropy's conventions: c = v/div
// (skipped unless c > 0) when div ≠ 0, else c = v + add, multiplied by v itself
// instead of c when raw (the analyzer's w·ln(w + 1e−8)).
func entropyTerm(h, v, div, add float64, raw bool) float64 {
	if div != 0 {
		if p := v / div; p > 0 {
			h -= p * math.Log(p)
		}
		return h
	}
	a := v + add
	if raw {
		return h - v*math.Log(a)
	}
	return h - a*math.Log(a)
}

func checkConvention(c EntropyConvention) error {
	switch c {
	case EntropyExact, EntropyAnalyzer, EntropyShifted, "":
		return nil
	}
	return fmt.Errorf("entropy convention %q: want exact, analyzer or shifted", c)
}

// RowStats holds per-row statistics of a [L,H,N,N] tensor.
type RowStats struct {
	// Entropy[l,h,i] and MaxWeight[l,h,i] (= max_j a_ij), shape [L,H,N].
	Entropy, MaxWeight *Tensor
	// Valid[l*H*N + h*N + i] says whether row i counts (see RowEntropy).
	Valid []bool
}

// Rows computes the entropy (convention c) and maximum weight of every attention row of
// a [L,H,N,N] tensor (weights must be finite and ≥ 0). Under EntropyShifted the maximum
// is taken of the shifted row (max_j a_ij + 1e−10), as in §5.4.
func Rows(att *Tensor, c EntropyConvention) (*RowStats, error) {
	if err := Validate(att, Check{NonNegative: true}); err != nil {
		return nil, err
	}
	if err := checkConvention(c); err != nil {
		return nil, err
	}
	L, H, N := att.Shape[0], att.Shape[1], att.Shape[2]
	rs := &RowStats{Entropy: New(L, H, N), MaxWeight: New(L, H, N), Valid: make([]bool, L*H*N)}
	for l := 0; l < L; l++ {
		for h := 0; h < H; h++ {
			m := att.Matrix(l, h)
			for i := 0; i < N; i++ {
				row := m[i*N : (i+1)*N]
				k := (l*H+h)*N + i
				rs.Entropy.Data[k], rs.Valid[k] = RowEntropy(row, c)
				mx := slices.Max(row)
				if c == EntropyShifted {
					mx += 1e-10
				}
				rs.MaxWeight.Data[k] = mx
			}
		}
	}
	return rs, nil
}

// HeadMeans averages a per-row statistic [L,H,N] over the valid rows of each head,
// giving [L,H] (0 for a head without valid rows); valid may be nil (all rows count).
func HeadMeans(rows *Tensor, valid []bool) *Tensor {
	L, H, N := rows.Shape[0], rows.Shape[1], rows.Shape[2]
	out := New(L, H)
	for u := 0; u < L*H; u++ {
		s, n := 0.0, 0
		for i := 0; i < N; i++ {
			if valid == nil || valid[u*N+i] {
				s += rows.Data[u*N+i]
				n++
			}
		}
		if n > 0 {
			out.Data[u] = s / float64(n)
		}
	}
	return out
}

// LayerMeans averages a per-head statistic [L,H] over heads, giving [L].
func LayerMeans(heads *Tensor) *Tensor {
	L, H := heads.Shape[0], heads.Shape[1]
	out := New(L)
	for l := 0; l < L; l++ {
		for h := 0; h < H; h++ {
			out.Data[l] += heads.Data[l*H+h]
		}
		out.Data[l] /= float64(H)
	}
	return out
}

// DefaultSparsityThreshold is the autoencoder analyzer's threshold (spec §3.3 item 6).
const DefaultSparsityThreshold = 0.1

// Sparsity is the autoencoder analyzer's head sparsity: the fraction of the N² weights of
// each head below threshold (0.1 by default, when threshold is 0). Output [L,H]; the
// per-layer value (fraction over all heads) is LayerMeans of it, since heads have equal size.
func Sparsity(att *Tensor, threshold float64) (*Tensor, error) {
	if err := Validate(att, Check{}); err != nil {
		return nil, err
	}
	if threshold == 0 {
		threshold = DefaultSparsityThreshold
	}
	L, H, N := att.Shape[0], att.Shape[1], att.Shape[2]
	out := New(L, H)
	for l := 0; l < L; l++ {
		for h := 0; h < H; h++ {
			n := 0
			for _, v := range att.Matrix(l, h) {
				if v < threshold {
					n++
				}
			}
			out.Data[l*H+h] = float64(n) / float64(N*N)
		}
	}
	return out, nil
}

// Received is the autoencoder analyzer's attention received per key position (spec §3.3
// item 10): the column sums of the head-mean matrix, r_l[j] = Σ_i mean_h A[l,h,i,j].
// Output [L,N].
func Received(att *Tensor) (*Tensor, error) {
	if err := Validate(att, Check{}); err != nil {
		return nil, err
	}
	L, H, N := att.Shape[0], att.Shape[1], att.Shape[2]
	out := New(L, N)
	for l := 0; l < L; l++ {
		dst := out.Data[l*N : (l+1)*N]
		for h := 0; h < H; h++ {
			m := att.Matrix(l, h)
			for i := 0; i < N; i++ {
				for j, v := range m[i*N : (i+1)*N] {
					dst[j] += v
				}
			}
		}
		for j := range dst {
			dst[j] /= float64(H)
		}
	}
	return out, nil
}

// StepEntropy is Text_to_Python's per-decoding-step statistics (spec §5.4): with
// ã = a + 1e−10, H = −Σ_j ã_j ln ã_j and m = max_j ã_j.
func StepEntropy(a []float64) (h, m float64) {
	h, _ = RowEntropy(a, EntropyShifted)
	return h, slices.Max(a) + 1e-10
}

// JSDistance is the Jensen–Shannon distance with scipy.spatial.distance.jensenshannon's
// convention: p and q are normalised to sum 1, m = (p+q)/2,
// d = sqrt((KL(p‖m) + KL(q‖m))/2) with natural logarithms (0·ln 0 = 0). It returns false
// when p or q has no mass.
func JSDistance(p, q []float64) (float64, bool) {
	sp, sq := 0.0, 0.0
	for k := range p {
		sp += p[k]
		sq += q[k]
	}
	if sp <= 0 || sq <= 0 {
		return 0, false
	}
	js := 0.0
	for k := range p {
		a, b := p[k]/sp, q[k]/sq
		m := (a + b) / 2
		if a > 0 {
			js += a * math.Log(a/m)
		}
		if b > 0 {
			js += b * math.Log(b/m)
		}
	}
	return math.Sqrt(max(js/2, 0)), true
}

// meanRowJS is mean_i JSdist(A[i,:], B[i,:]) over the rows where both have mass (0 when
// none has), with the number of rows used.
func meanRowJS(a, b []float64, n int) (float64, int) {
	s, c := 0.0, 0
	for i := 0; i < n; i++ {
		if d, ok := JSDistance(a[i*n:(i+1)*n], b[i*n:(i+1)*n]); ok {
			s += d
			c++
		}
	}
	if c == 0 {
		return 0, 0
	}
	return s / float64(c), c
}

// UnitJSD is the PROPOSED JSD heatmap between all (layer, head) units (spec §1.10 item 6):
// D[u,v] = mean_i JSdist(A_u[i,:], A_v[i,:]) (scipy convention, rows with zero mass
// skipped), u = l·H + h. Output [L·H, L·H], symmetric with a zero diagonal. It is
// UnitJSDContext without cancellation.
func UnitJSD(att *Tensor) (*Tensor, error) { return UnitJSDContext(context.Background(), att) }

// UnitJSDContext is UnitJSD, O((L·H)²·N²), with the heads of each pair of layers spread
// over GOMAXPROCS goroutines (UnitJSDLayers on views of att); ctx cancels it between units.
func UnitJSDContext(ctx context.Context, att *Tensor) (*Tensor, error) {
	if err := Validate(att, Check{NonNegative: true}); err != nil {
		return nil, err
	}
	return UnitJSDLayers(ctx, att.Shape[0], LayerViews(att))
}

// parallelFor runs f(0..n−1) on GOMAXPROCS goroutines; f(k) must write only its own
// cells. Once ctx is done no further f(k) starts and ctx's error is returned.
func parallelFor(ctx context.Context, n int, f func(k int)) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				k := int(next.Add(1)) - 1
				if k >= n {
					return
				}
				f(k)
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// LayerJSD is the L×L version of UnitJSD on head-averaged rows: D[l,m] =
// mean_i JSdist(mean_h A[l,h,i,:], mean_h A[m,h,i,:]). Output [L,L].
func LayerJSD(att *Tensor) (*Tensor, error) {
	if err := Validate(att, Check{NonNegative: true}); err != nil {
		return nil, err
	}
	c, err := reduceHeads(att, HeadMean)
	if err != nil {
		return nil, err
	}
	L, N := c.Shape[0], c.Shape[1]
	out := New(L, L)
	for l := 0; l < L; l++ {
		for m := l + 1; m < L; m++ {
			d, _ := meanRowJS(c.Matrix(l, 0), c.Matrix(m, 0), N)
			out.Data[l*L+m], out.Data[m*L+l] = d, d
		}
	}
	return out, nil
}

// CrispinessPoints is the length of a crispiness curve.
const CrispinessPoints = 100

// Crispiness is the PROPOSED crispiness array (spec §1.10 item 7): the vector is
// normalised to sum 1 and sorted descending, s_1 ≥ … ≥ s_n, and c[k] = s_{⌊k·n/100⌋+1},
// k = 0..99 (the weight at the k-th rank percentile). It returns false for a vector
// without mass.
func Crispiness(a []float64) ([]float64, bool) {
	s, ok := sortedShares(a)
	if !ok {
		return nil, false
	}
	out := make([]float64, CrispinessPoints)
	n := len(s)
	for k := range out {
		out[k] = s[k*n/CrispinessPoints]
	}
	return out, true
}

// CrispinessMass is the cumulative-mass variant of Crispiness (spec §1.10 item 7,
// PROPOSED): c[k] = Σ_{r ≤ ⌈(k+1)·n/100⌉} s_r, the share of the mass held by the top
// (k+1)% of the ranks; c[99] = 1.
func CrispinessMass(a []float64) ([]float64, bool) {
	s, ok := sortedShares(a)
	if !ok {
		return nil, false
	}
	n := len(s)
	cum := make([]float64, n+1)
	for r, v := range s {
		cum[r+1] = cum[r] + v
	}
	out := make([]float64, CrispinessPoints)
	for k := range out {
		r := ((k+1)*n + CrispinessPoints - 1) / CrispinessPoints
		out[k] = cum[r]
	}
	return out, true
}

func sortedShares(a []float64) ([]float64, bool) {
	s := 0.0
	for _, v := range a {
		s += v
	}
	if len(a) == 0 || !(s > 0) {
		return nil, false
	}
	out := make([]float64, len(a))
	for k, v := range a {
		out[k] = v / s
	}
	slices.SortFunc(out, func(x, y float64) int { return -cmpFloat(x, y) })
	return out, true
}

func cmpFloat(x, y float64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// HeadCrispiness averages the crispiness curves (Crispiness, or CrispinessMass when mass
// is true) of the rows with mass of each head of a [L,H,N,N] tensor. Output [L,H,100].
func HeadCrispiness(att *Tensor, mass bool) (*Tensor, error) {
	if err := Validate(att, Check{NonNegative: true}); err != nil {
		return nil, err
	}
	L, H, N := att.Shape[0], att.Shape[1], att.Shape[2]
	out := New(L, H, CrispinessPoints)
	f := Crispiness
	if mass {
		f = CrispinessMass
	}
	for l := 0; l < L; l++ {
		for h := 0; h < H; h++ {
			m := att.Matrix(l, h)
			dst := out.Data[(l*H+h)*CrispinessPoints : (l*H+h+1)*CrispinessPoints]
			n := 0
			for i := 0; i < N; i++ {
				c, ok := f(m[i*N : (i+1)*N])
				if !ok {
					continue
				}
				for k, v := range c {
					dst[k] += v
				}
				n++
			}
			if n > 0 {
				for k := range dst {
					dst[k] /= float64(n)
				}
			}
		}
	}
	return out, nil
}
