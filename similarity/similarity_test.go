package similarity

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/stats"
	"github.com/attnscope/attnscope/tensor"
)

func mat2(rows [][]float64) *tensor.Tensor {
	t := tensor.New(len(rows), len(rows[0]))
	for i, r := range rows {
		copy(t.Data[i*len(r):], r)
	}
	return t
}

func randn(rng *rand.Rand, n, d int) *tensor.Tensor {
	t := tensor.New(n, d)
	for i := range t.Data {
		t.Data[i] = rng.NormFloat64()
	}
	return t
}

// matmul returns a (n×k) times b (k×m).
func matmul(a, b *tensor.Tensor) *tensor.Tensor {
	n, k, m := a.Shape[0], a.Shape[1], b.Shape[1]
	out := tensor.New(n, m)
	for i := range n {
		for p := range k {
			for j := range m {
				out.Data[i*m+j] += a.Data[i*k+p] * b.Data[p*m+j]
			}
		}
	}
	return out
}

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.IsNaN(got) || math.Abs(got-want) > tol {
		t.Errorf("%s = %.9g, want %.9g (±%g)", what, got, want, tol)
	}
}

// Oracle 32 (BERT-non-text's utils.PWCCA with pyrcca, run on the original code):
// uncentred, reg 0 and 0.1.
func TestPWCCAOracle32(t *testing.T) {
	x := mat2([][]float64{{1, 0}, {0, 1}, {1, 1}, {2, 1}, {0, 3}})
	y := mat2([][]float64{{2, 1}, {1, 0}, {3, 1}, {5, 2}, {3, -1}})
	for _, c := range []struct {
		reg      float64
		rho      []float64
		pw, dist float64
	}{
		{0, []float64{1.0, 0.982288}, 0.992576, 0.007424},
		{0.1, []float64{0.999730, 0.982636}, 0.992650, 1 - 0.992650},
	} {
		r, err := PWCCA(x, y, PWCCAOptions{Reg: c.reg, Uncentred: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Correlations) != 2 {
			t.Fatalf("reg %v: %d correlations", c.reg, len(r.Correlations))
		}
		for k, want := range c.rho {
			near(t, "rho", r.Correlations[k], want, 1e-6)
		}
		near(t, "PWCCA", r.PWCCA, c.pw, 1e-6)
		near(t, "distance", r.Distance, c.dist, 1e-6)
	}
}

// Oracle 32's invariants: Y = X·R with R invertible gives PWCCA 1; independent
// noise gives a small value.
func TestPWCCAInvariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(32, 1))
	x := randn(rng, 60, 3)
	r := randn(rng, 3, 3)
	for _, unc := range []bool{false, true} {
		got, err := PWCCA(x, matmul(x, r), PWCCAOptions{Uncentred: unc})
		if err != nil {
			t.Fatal(err)
		}
		near(t, "PWCCA(X, XR)", got.PWCCA, 1, 1e-7)
	}
	noise, err := PWCCA(x, randn(rng, 60, 2), PWCCAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if noise.PWCCA <= 0 || noise.PWCCA > 0.5 {
		t.Errorf("PWCCA(X, noise) = %v, a small value expected", noise.PWCCA)
	}
	// Rank-deficient X (a repeated neuron): a defined value, equal to that of X
	// without the copy when unregularised (CCA depends on the column space only).
	xd := tensor.New(60, 4)
	for i := range 60 {
		copy(xd.Data[i*4:], x.Data[i*3:i*3+3])
		xd.Data[i*4+3] = x.Data[i*3]
	}
	y := randn(rng, 60, 5)
	a, err := PWCCA(xd, y, PWCCAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := PWCCA(x, y, PWCCAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Correlations) != 3 {
		t.Fatalf("rank-deficient X: %d canonical pairs, 3 expected", len(a.Correlations))
	}
	for k := range b.Correlations {
		near(t, "rho rank-deficient", a.Correlations[k], b.Correlations[k], 1e-10)
	}
	if math.IsNaN(a.PWCCA) {
		t.Fatal("NaN")
	}
	if reg, err := PWCCA(xd, y, PWCCAOptions{Reg: 1e-3}); err != nil || len(reg.Correlations) != 3 || math.IsNaN(reg.PWCCA) {
		t.Fatalf("regularised rank-deficient: %+v, %v", reg, err)
	}
}

// Oracle 33: matching costs, intended totals and the original's value.
func TestMatchingOracle33(t *testing.T) {
	id := []float64{1, 0, 0, 1}
	uni := []float64{0.5, 0.5, 0.5, 0.5}
	heads := func(a, b []float64) *tensor.Tensor {
		return &tensor.Tensor{Shape: []int{2, 2, 2}, Data: append(append([]float64{}, a...), b...)}
	}
	xs := []*tensor.Tensor{heads(id, uni), heads([]float64{1, 0, 1, 0}, []float64{0, 1, 0, 1})}
	ys := []*tensor.Tensor{heads(uni, id), heads([]float64{0, 1, 0, 1}, []float64{1, 0, 0, 1})}
	wantCost := [][]float64{{2, 0, 0, 2}, {4, 0, 2, 2}}
	var costs []*tensor.Tensor
	var perms [][]int
	var totals []float64
	for s := range xs {
		c, err := HeadCosts(xs[s], ys[s])
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range wantCost[s] {
			near(t, "cost", c.Data[i], w, 1e-12)
		}
		p, total, err := MatchHeads(c)
		if err != nil {
			t.Fatal(err)
		}
		costs, perms, totals = append(costs, c), append(perms, p), append(totals, total)
	}
	m, sd, err := MeanStd(totals)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "total 0", totals[0], 0, 1e-12)
	near(t, "total 1", totals[1], 2, 1e-12)
	near(t, "mean", m, 1, 1e-12)
	near(t, "std", sd, 1, 1e-12)
	q, err := QuirkTotals(costs, perms)
	if err != nil {
		t.Fatal(err)
	}
	m, sd, _ = MeanStd(q)
	near(t, "quirk mean", m, 6, 1e-12)
	near(t, "quirk std", sd, 0, 1e-12)
	// The original needs as many samples as heads.
	if _, err := QuirkTotals(costs[:1], perms[:1]); err == nil || !strings.Contains(err.Error(), "as many samples as heads") {
		t.Fatalf("quirk with 1 sample, 2 heads: %v", err)
	}
}

// bruteForce is the minimum total cost over all injections of rows into columns.
func bruteForce(cost []float64, rows, cols int) float64 {
	best := math.Inf(1)
	used := make([]bool, cols)
	var rec func(r int, acc float64)
	rec = func(r int, acc float64) {
		if r == rows {
			best = min(best, acc)
			return
		}
		for c := range cols {
			if !used[c] {
				used[c] = true
				rec(r+1, acc+cost[r*cols+c])
				used[c] = false
			}
		}
	}
	rec(0, 0)
	return best
}

func TestAssignAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for trial := range 3000 {
		rows, cols := 1+rng.IntN(7), 1+rng.IntN(7)
		cost := make([]float64, rows*cols)
		for i := range cost {
			switch trial % 3 {
			case 0:
				cost[i] = rng.Float64()*200 - 100
			case 1:
				cost[i] = float64(rng.IntN(4)) // many ties
			default:
				cost[i] = math.Exp(rng.NormFloat64() * 5)
			}
		}
		perm, total, err := Assign(cost, rows, cols)
		if err != nil {
			t.Fatal(err)
		}
		var want float64
		if rows <= cols {
			want = bruteForce(cost, rows, cols)
		} else {
			tr := make([]float64, len(cost))
			for r := range rows {
				for c := range cols {
					tr[c*rows+r] = cost[r*cols+c]
				}
			}
			want = bruteForce(tr, cols, rows)
		}
		if math.Abs(total-want) > 1e-9*(1+math.Abs(want)) {
			t.Fatalf("%d×%d %v: total %v, brute force %v", rows, cols, cost, total, want)
		}
		seen := map[int]bool{}
		var sum float64
		assigned := 0
		for r, c := range perm {
			if c < 0 {
				continue
			}
			if seen[c] || c >= cols {
				t.Fatalf("perm %v is not an injection", perm)
			}
			seen[c] = true
			sum += cost[r*cols+c]
			assigned++
		}
		if assigned != min(rows, cols) || math.Abs(sum-total) > 1e-9*(1+math.Abs(sum)) {
			t.Fatalf("perm %v: %d assigned, sum %v, total %v", perm, assigned, sum, total)
		}
	}
	if _, _, err := Assign([]float64{1, math.NaN()}, 1, 2); err == nil {
		t.Fatal("NaN cost accepted")
	}
	if _, _, err := Assign([]float64{1, 2, 3}, 2, 2); err == nil {
		t.Fatal("wrong size accepted")
	}
}

func TestCKAProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	x := randn(rng, 40, 6)
	y := randn(rng, 40, 9)
	for _, k := range []Kernel{{}, {RBF: true}, {RBF: true, Threshold: 0.5}} {
		self, err := CKA(x, x, k)
		if err != nil {
			t.Fatal(err)
		}
		near(t, k.String()+" CKA(X,X)", self, 1, 1e-12)
		v, err := CKA(x, y, k)
		if err != nil {
			t.Fatal(err)
		}
		if !(v > 0 && v < 1) {
			t.Errorf("%v CKA(X,Y) = %v", k, v)
		}
	}
	// Linear CKA is invariant to orthogonal transforms and isotropic scaling; the Gram
	// route (n < d) and the feature route agree.
	q := randn(rng, 6, 6)
	qq := thinQ(asDense(q))
	xr := matmul(x, &tensor.Tensor{Shape: []int{6, 6}, Data: qq.RawMatrix().Data})
	for i := range xr.Data {
		xr.Data[i] *= 3
	}
	a, _ := LinearCKA(x, y)
	b, _ := LinearCKA(xr, y)
	near(t, "CKA(XQ·3, Y)", b, a, 1e-12)
	wide := randn(rng, 10, 30)
	wide2 := randn(rng, 10, 25)
	g, _ := LinearCKA(wide, wide2)
	m, err := LinearCKAMatrix([]*tensor.Tensor{wide}, []*tensor.Tensor{wide2})
	if err != nil {
		t.Fatal(err)
	}
	near(t, "Gram vs feature route", g, m[0], 1e-12)
	w1, w2 := wide.Clone(), wide2.Clone()
	ip, err := LinearCKAMatrixInPlace([]*tensor.Tensor{w1}, []*tensor.Tensor{w2})
	if err != nil {
		t.Fatal(err)
	}
	near(t, "in place", ip[0], m[0], 1e-12)
	var colSum float64
	for i := range 10 {
		colSum += w1.Data[i*30]
	}
	near(t, "centred in place", colSum, 0, 1e-12)
	// Minibatch CKA with one batch equals the debiased CKA; it is invariant to
	// shifting the features (no centring needed) and is close to full CKA.
	var mb, shifted MinibatchCKA
	for b := range 4 {
		xb, yb := takeRange(x, b*10, 10), takeRange(y, b*10, 10)
		if err := mb.Add(xb, yb); err != nil {
			t.Fatal(err)
		}
		xs := xb.Clone()
		for i := range xs.Data {
			xs.Data[i] += 5
		}
		if err := shifted.Add(xs, yb); err != nil {
			t.Fatal(err)
		}
	}
	v1, err := mb.Value()
	if err != nil {
		t.Fatal(err)
	}
	v2, _ := shifted.Value()
	near(t, "minibatch CKA shift-invariant", v2, v1, 1e-10)
	var selfMB MinibatchCKA
	_ = selfMB.Add(takeRange(x, 0, 20), takeRange(x, 0, 20))
	sv, _ := selfMB.Value()
	near(t, "minibatch CKA(X,X)", sv, 1, 1e-12)
}

func asDense(t *tensor.Tensor) *denseAlias { return newDense(t) }

func takeRange(t *tensor.Tensor, from, n int) *tensor.Tensor {
	d := t.Shape[1]
	return &tensor.Tensor{Shape: []int{n, d}, Data: append([]float64(nil), t.Data[from*d:(from+n)*d]...)}
}

func TestSVCCA(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	x := randn(rng, 50, 4)
	r := randn(rng, 4, 4)
	got, err := SVCCA(x, matmul(x, r), SVCCAOptions{Variance: 1})
	if err != nil {
		t.Fatal(err)
	}
	near(t, "SVCCA(X, XR)", got.SVCCA, 1, 1e-12)
	d, err := SVCCA(x, randn(rng, 50, 3), SVCCAOptions{Dims: 2})
	if err != nil || d.KeptX != 2 || d.KeptY != 2 || len(d.Correlations) != 2 {
		t.Fatalf("Dims 2: %+v %v", d, err)
	}
}

func TestBadInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	x := randn(rng, 20, 3)
	constant := tensor.New(20, 3)
	for i := range constant.Data {
		constant.Data[i] = 2
	}
	nan := x.Clone()
	nan.Data[7] = math.NaN()
	measures := map[string]Measure{
		"pwcca": func(a, b *tensor.Tensor) (float64, error) { r, err := PWCCA(a, b, PWCCAOptions{}); return r.PWCCA, err },
		"pwcca-reg": func(a, b *tensor.Tensor) (float64, error) {
			r, err := PWCCA(a, b, PWCCAOptions{Reg: 0.1})
			return r.PWCCA, err
		},
		"svcca": func(a, b *tensor.Tensor) (float64, error) { r, err := SVCCA(a, b, SVCCAOptions{}); return r.SVCCA, err },
		"cka":   LinearCKA,
		"rbf":   func(a, b *tensor.Tensor) (float64, error) { return CKA(a, b, Kernel{RBF: true}) },
	}
	for name, m := range measures {
		for what, y := range map[string]*tensor.Tensor{
			"constant":      constant,
			"NaN":           nan,
			"fewer tokens":  randn(rng, 19, 3),
			"one dimension": {Shape: []int{60}, Data: make([]float64, 60)},
		} {
			v, err := m(x, y)
			if err == nil {
				t.Errorf("%s with %s Y: %v, no error", name, what, v)
			} else if strings.Contains(err.Error(), "NaN") && what != "NaN" {
				t.Errorf("%s with %s: %v", name, what, err)
			}
		}
	}
	huge := x.Clone()
	for i := range huge.Data {
		huge.Data[i] *= 1e300
	}
	for name, m := range measures {
		if v, err := m(huge, x); err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
			t.Errorf("%s with values near 1e300: %v without an error", name, v)
		}
	}
	if _, err := PWCCA(huge, x, PWCCAOptions{Reg: 0.1}); err == nil || !strings.Contains(err.Error(), "overflows") {
		t.Errorf("regularised PWCCA with values near 1e300: %v", err)
	}
	var big MinibatchCKA
	if err := big.Add(huge, x); err == nil {
		if v, err := big.Value(); err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
			t.Errorf("minibatch CKA with values near 1e300: %v", v)
		}
	}
	if _, err := PWCCA(x, x, PWCCAOptions{Reg: -1}); err == nil {
		t.Error("negative regularisation accepted")
	}
	var mb MinibatchCKA
	if _, err := mb.Value(); err == nil {
		t.Error("empty minibatch CKA has a value")
	}
	if err := mb.Add(takeRange(x, 0, 3), takeRange(x, 0, 3)); err == nil {
		t.Error("3-token minibatch accepted")
	}
}

func TestBootstrap(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 1))
	x := randn(rng, 80, 4)
	y := randn(rng, 80, 4)
	for i := range y.Data {
		y.Data[i] = 0.7*x.Data[i] + 0.3*y.Data[i]
	}
	v, _ := LinearCKA(x, y)
	iv, err := Bootstrap(x, y, LinearCKA, stats.BootstrapOptions{Resamples: 300, Method: stats.Percentile, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !(iv.Low <= v && v <= iv.High && iv.Low > 0 && iv.High <= 1) {
		t.Fatalf("CKA %v, interval [%v, %v]", v, iv.Low, iv.High)
	}
	// A measure failing on a resample is an error, not a NaN bound.
	c := tensor.New(80, 2)
	c.Data[0] = 1 // one non-constant token: resamples without it are constant
	if _, err := Bootstrap(x, c, LinearCKA, stats.BootstrapOptions{Resamples: 200, Method: stats.Percentile}); err == nil {
		t.Fatal("no error for constant resamples")
	}
}
