package stats

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/attnscope/attnscope/internal/pyoracle"
)

// oracleCase is one generated input for the SciPy oracle (testdata/scipy_oracle.py).
type oracleCase struct {
	Kind   string    `json:"kind"`
	X      []float64 `json:"x,omitempty"`
	Y      []float64 `json:"y,omitempty"`
	Method string    `json:"method,omitempty"`
	Paired bool      `json:"paired,omitempty"`
	Dist   []float64 `json:"dist,omitempty"`
	Stat   string    `json:"stat,omitempty"`
	Level  float64   `json:"level,omitempty"`
}

type oracleResult struct {
	Stat *float64  `json:"stat"`
	P    *float64  `json:"p"`
	Lo   *float64  `json:"lo"`
	Hi   *float64  `json:"hi"`
	Adj  []float64 `json:"adj"`
}

// sample draws n values of one of three kinds: continuous normal, small integers
// (many ties) or one-decimal values.
func sample(rng *rand.Rand, n, kind int) []float64 {
	x := make([]float64, n)
	for i := range x {
		switch kind {
		case 0:
			x[i] = rng.NormFloat64()*2 + 1
		case 1:
			x[i] = float64(rng.IntN(5))
		default:
			x[i] = math.Round(rng.Float64()*30) / 10
		}
	}
	return x
}

func size(rng *rand.Rand, lo, hi int) int {
	if rng.IntN(3) == 0 { // tiny samples often
		return lo + rng.IntN(3)
	}
	return lo + rng.IntN(hi-lo+1)
}

// oracleCases generates the inputs and the Go answers for them.
func oracleCases(t *testing.T) ([]oracleCase, []oracleResult) {
	rng := rand.New(rand.NewPCG(12, 2026))
	var cases []oracleCase
	var got []oracleResult
	add := func(c oracleCase, r oracleResult) { cases = append(cases, c); got = append(got, r) }
	res := func(r Result, err error) oracleResult {
		if err != nil {
			t.Fatal(err)
		}
		return oracleResult{Stat: &r.Statistic, P: &r.P}
	}
	const per = 200
	for i := range per {
		kind := i % 3
		n := size(rng, 2, 40)
		x, y := sample(rng, n, kind), sample(rng, n, kind)
		if i%5 == 0 { // correlated
			for j := range y {
				y[j] = x[j] + sample(rng, 1, kind)[0]/2
			}
		}
		add(oracleCase{Kind: "pearson", X: x, Y: y}, res(Pearson(x, y)))
		add(oracleCase{Kind: "spearman", X: x, Y: y}, res(Spearman(x, y)))
		kx, ky := x, y
		if i%4 == 3 { // exact path beyond 33 values: at most one discordant pair
			kx = sample(rng, 40+rng.IntN(30), 0)
			ky = append([]float64(nil), kx...)
			sort.Float64s(kx)
			sort.Float64s(ky)
			if i%8 == 3 {
				ky[3], ky[4] = ky[4], ky[3]
			}
		}
		add(oracleCase{Kind: "kendall", X: kx, Y: ky}, res(KendallTauB(kx, ky)))
	}
	for i := range per {
		kind := i % 3
		x, y := sample(rng, size(rng, 2, 30), kind), sample(rng, size(rng, 2, 30), kind)
		if i%2 == 0 {
			for j := range y {
				y[j] += 0.7
			}
		}
		add(oracleCase{Kind: "student", X: x, Y: y}, res(StudentTTest(x, y)))
		add(oracleCase{Kind: "welch", X: x, Y: y}, res(WelchT(x, y)))
		mx, my := x, y
		if i%3 == 0 { // exact path: a small sample, no ties
			mx, my = sample(rng, 1+rng.IntN(8), 0), sample(rng, 1+rng.IntN(25), 0)
		}
		add(oracleCase{Kind: "mannwhitney", X: mx, Y: my}, res(MannWhitneyU(mx, my)))
	}
	for i := range per {
		kind := i % 3
		n := size(rng, 1, 60)
		x, y := sample(rng, n, kind), sample(rng, n, kind)
		if i%4 == 0 {
			for j := range y {
				y[j] = x[j] - 0.4 + sample(rng, 1, kind)[0]/3
			}
		}
		if kind != 0 && n > 1 {
			y[0] = x[0] // a zero difference
		}
		allZero := true
		for j := range x {
			allZero = allZero && x[j] == y[j]
		}
		if allZero {
			y[0] = x[0] + 1
		}
		r, err := Wilcoxon(x, y)
		method := "approx"
		if r.Method == "exact" {
			method = "exact"
		}
		add(oracleCase{Kind: "wilcoxon", X: x, Y: y, Method: method}, res(r, err))
	}
	for i := range per {
		kind := i % 3
		paired := i%2 == 1
		var x, y []float64
		if paired {
			n := 2 + rng.IntN(9) // 2^10 ≤ 9999: exact
			x, y = sample(rng, n, kind), sample(rng, n, kind)
		} else {
			n1 := 2 + rng.IntN(6)
			n2 := 2 + rng.IntN(12-n1) // C(13, 6) = 1716 ≤ 9999: exact
			x, y = sample(rng, n1, kind), sample(rng, n2, kind)
		}
		r, err := PermutationTest(x, y, PermutationOptions{Paired: paired, Seed: uint64(i)})
		if err == nil && r.Method != "exact" {
			t.Fatalf("permutation case %d: %s test, exact expected", i, r.Method)
		}
		add(oracleCase{Kind: "permutation", X: x, Y: y, Paired: paired}, res(r, err))
	}
	median := func(v []float64) float64 {
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		if len(s)%2 == 1 {
			return s[len(s)/2]
		}
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	for i := range per {
		x := sample(rng, size(rng, 3, 40), i%3)
		if i%3 == 1 && constant(x) {
			x[0]++
		}
		stat, name := Mean, "mean"
		if i%4 == 1 {
			stat, name = median, "median"
		}
		method, mname := BCa, "bca"
		if i%2 == 0 {
			method, mname = Percentile, "percentile"
		}
		level := []float64{0.95, 0.9, 0.99, 0.5}[i%4]
		iv, err := Bootstrap(x, stat, BootstrapOptions{Resamples: 200 + rng.IntN(300), Level: level, Method: method, Seed: uint64(i)})
		lo, hi := iv.Low, iv.High
		if err != nil { // degenerate BCa: SciPy answers NaN
			lo, hi = math.NaN(), math.NaN()
		}
		add(oracleCase{Kind: "bootstrap", X: x, Dist: iv.Distribution, Stat: name, Level: level, Method: mname},
			oracleResult{Lo: &lo, Hi: &hi})
	}
	for i := range per {
		p := make([]float64, 1+rng.IntN(30))
		for j := range p {
			p[j] = math.Pow(rng.Float64(), 3)
			if i%3 == 0 {
				p[j] = math.Round(p[j]*20) / 20 // ties, zeros and ones
			}
		}
		h, err := Holm(p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := BenjaminiHochberg(p)
		if err != nil {
			t.Fatal(err)
		}
		add(oracleCase{Kind: "holm", X: p}, oracleResult{Adj: h})
		add(oracleCase{Kind: "fdr_bh", X: p}, oracleResult{Adj: b})
	}
	return cases, got
}

// TestAgainstSciPy compares every statistic of the package with SciPy (1.10 on
// Debian 12; statsmodels for Holm and Benjamini–Hochberg) on generated inputs
// including ties, zero differences and samples of one to three values: statistics
// within 1e-10 (relative to max(1, |value|)), p-values within 1e-8.
func TestAgainstSciPy(t *testing.T) {
	py := pyoracle.Python(t, "scipy", "statsmodels")
	cases, got := oracleCases(t)
	if len(cases) < 2000 {
		t.Fatalf("only %d cases generated", len(cases))
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "cases.json"), filepath.Join(dir, "results.json")
	b, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, filepath.Join("testdata", "scipy_oracle.py"), in, out)
	cmd.WaitDelay = time.Second
	done := make(chan error, 1)
	go func() { o, err := cmd.CombinedOutput(); done <- wrapOut(err, o) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("scipy oracle: %v", err)
		}
	case <-time.After(5 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("scipy oracle did not finish in 5 minutes")
	}
	var want struct {
		SciPy   string         `json:"scipy"`
		Results []oracleResult `json:"results"`
	}
	b, err = os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if len(want.Results) != len(cases) {
		t.Fatalf("%d results for %d cases", len(want.Results), len(cases))
	}
	perKind := map[string]int{}
	bad := 0
	for i, c := range cases {
		perKind[c.Kind]++
		if msg := mismatch(got[i], want.Results[i]); msg != "" {
			bad++
			if bad <= 20 {
				in, _ := json.Marshal(c)
				t.Errorf("case %d (%s): %s\n  input %s", i, c.Kind, msg, trunc(string(in), 600))
			}
		}
	}
	t.Logf("%d cases against SciPy %s: %v; %d mismatches", len(cases), want.SciPy, perKind, bad)
}

func wrapOut(err error, out []byte) error {
	if err != nil {
		return fmt.Errorf("%v: %s", err, trunc(string(out), 2000))
	}
	return nil
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func val(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

func closeTo(got, want, tol float64, relative bool) bool {
	if math.IsNaN(got) || math.IsNaN(want) {
		return math.IsNaN(got) && math.IsNaN(want)
	}
	if got == want {
		return true
	}
	scale := 1.0
	if relative {
		scale = math.Max(1, math.Abs(want))
	}
	return math.Abs(got-want) <= tol*scale
}

func mismatch(g, w oracleResult) string {
	switch {
	case g.Adj != nil:
		if len(g.Adj) != len(w.Adj) {
			return fmt.Sprintf("%d adjusted values, want %d", len(g.Adj), len(w.Adj))
		}
		for i := range g.Adj {
			if !closeTo(g.Adj[i], w.Adj[i], 1e-10, true) {
				return fmt.Sprintf("adjusted p %d = %v, want %v", i, g.Adj[i], w.Adj[i])
			}
		}
	case g.Lo != nil:
		if !closeTo(val(g.Lo), val(w.Lo), 1e-10, true) || !closeTo(val(g.Hi), val(w.Hi), 1e-10, true) {
			return fmt.Sprintf("interval [%v, %v], want [%v, %v]", val(g.Lo), val(g.Hi), val(w.Lo), val(w.Hi))
		}
	default:
		if !closeTo(val(g.Stat), val(w.Stat), 1e-10, true) || !closeTo(val(g.P), val(w.P), 1e-8, false) {
			return fmt.Sprintf("statistic %v p %v, want %v p %v", val(g.Stat), val(g.P), val(w.Stat), val(w.P))
		}
	}
	return ""
}
