package analysis

import (
	"math"
	"testing"
)

func TestAnalyzerEntropyOracle29(t *testing.T) {
	w, _ := FromFloat64([]int{1, 1, 2, 2}, []float64{1, 0, 0.95, 0.05})
	rs, err := Rows(w, EntropyAnalyzer)
	if err != nil {
		t.Fatal(err)
	}
	if e := rs.Entropy.Data[0]; math.Abs(e-(-1e-8)) > 1e-12 {
		t.Fatalf("row 0 entropy %g, want −1e−8", e)
	}
	assertClose(t, "row entropies", rs.Entropy.Data, []float64{0, 0.198515}, tol)
	head := HeadMeans(rs.Entropy, rs.Valid)
	assertClose(t, "head entropy", head.Data, []float64{0.099258}, tol)
	sp, err := Sparsity(w, 0)
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "sparsity", sp.Data, []float64{0.5}, 0)

	u, _ := FromFloat64([]int{1, 1, 2, 2}, []float64{0.5, 0.5, 0.5, 0.5})
	for _, c := range []EntropyConvention{EntropyAnalyzer, EntropyExact} {
		rs, err := Rows(u, c)
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "uniform entropy "+string(c), HeadMeans(rs.Entropy, rs.Valid).Data, []float64{math.Ln2}, tol)
	}
	sp, _ = Sparsity(u, 0)
	assertClose(t, "uniform sparsity", sp.Data, []float64{0}, 0)
	rc, err := Received(u)
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "received", rc.Data, []float64{1, 1}, 0)
}

func TestStepEntropyOracle35(t *testing.T) {
	h, m := StepEntropy([]float64{0.7, 0.2, 0.1})
	if math.Abs(h-0.801819) > tol || math.Abs(m-0.7000000001) > 1e-15 {
		t.Fatalf("H = %.9g, max = %.12g; want 0.801819, 0.7000000001", h, m)
	}
	for _, S := range []int{2, 5, 30} {
		u := make([]float64, S)
		for k := range u {
			u[k] = 1 / float64(S)
		}
		if h, _ := StepEntropy(u); math.Abs(h-math.Log(float64(S))) > 1e-8 {
			t.Fatalf("uniform over %d: H = %g, want ln %d", S, h, S)
		}
		one := make([]float64, S)
		one[0] = 1
		if h, _ := StepEntropy(one); math.Abs(h) > 1e-7 {
			t.Fatalf("one-hot over %d: H = %g, want ≈ 0", S, h)
		}
	}
}

func TestJSDistance(t *testing.T) {
	// Oracle 16's jsd_list (scipy's jensenshannon on the rows of H and M).
	tests := []struct {
		p, q []float64
		want float64
		ok   bool
	}{
		{[]float64{0, 0, 0}, []float64{0.5, 0, 0}, 0, false},
		{[]float64{3, 1, 0}, []float64{1, 2, 0}, 0.300410, true},
		{[]float64{1, 2, 3}, []float64{3, 2, 1}, 0.295310, true},
		{[]float64{1, 0}, []float64{0, 1}, math.Sqrt(math.Ln2), true},
		{[]float64{2, 2}, []float64{1, 1}, 0, true},
	}
	for _, tc := range tests {
		d, ok := JSDistance(tc.p, tc.q)
		if ok != tc.ok || math.Abs(d-tc.want) > tol {
			t.Errorf("JSDistance(%v, %v) = %v, %v; want %v, %v", tc.p, tc.q, d, ok, tc.want, tc.ok)
		}
	}
}

func TestJSDMatrices(t *testing.T) {
	att := randomAttention(11, 3, 2, 6, true)
	u, err := UnitJSD(att)
	if err != nil {
		t.Fatal(err)
	}
	assertShape(t, "unit JSD", u, 6, 6)
	for a := 0; a < 6; a++ {
		if u.At(a, a) != 0 {
			t.Fatalf("diagonal %d = %g", a, u.At(a, a))
		}
		for b := 0; b < 6; b++ {
			if u.At(a, b) != u.At(b, a) || u.At(a, b) < 0 || u.At(a, b) > math.Sqrt(math.Ln2)+1e-12 {
				t.Fatalf("D[%d,%d] = %g, D[%d,%d] = %g", a, b, u.At(a, b), b, a, u.At(b, a))
			}
		}
	}
	// D[(0,0),(0,1)] by hand.
	want := 0.0
	for i := 0; i < 6; i++ {
		d, _ := JSDistance(att.Matrix(0, 0)[i*6:(i+1)*6], att.Matrix(0, 1)[i*6:(i+1)*6])
		want += d / 6
	}
	assertClose(t, "D[0,1]", []float64{u.At(0, 1)}, []float64{want}, 1e-12)
	l, err := LayerJSD(att)
	if err != nil {
		t.Fatal(err)
	}
	assertShape(t, "layer JSD", l, 3, 3)
	// Identical layers are at distance 0.
	same := New(2, 2, 6, 6)
	copy(same.Data[:72], att.Data[:72])
	copy(same.Data[72:], att.Data[:72])
	l, _ = LayerJSD(same)
	assertClose(t, "identical layers", l.Data, []float64{0, 0, 0, 0}, 1e-12)
}

func TestCrispiness(t *testing.T) {
	c, ok := Crispiness([]float64{1, 0, 3, 0})
	if !ok {
		t.Fatal("no curve")
	}
	m, _ := CrispinessMass([]float64{1, 0, 3, 0})
	for k := 0; k < 100; k++ {
		want, wantM := 0.0, 1.0
		switch {
		case k < 25:
			want, wantM = 0.75, 0.75
		case k < 50:
			want = 0.25
		}
		if c[k] != want || math.Abs(m[k]-wantM) > 1e-15 {
			t.Fatalf("k = %d: crispiness %g, mass %g; want %g, %g", k, c[k], m[k], want, wantM)
		}
	}
	if _, ok := Crispiness([]float64{0, 0}); ok {
		t.Fatal("curve for a vector without mass")
	}
	// n ≥ 100: c[k] = s_{⌊k·n/100⌋+1}; uniform vector gives a flat curve at 1/n.
	u := make([]float64, 250)
	for k := range u {
		u[k] = 2
	}
	c, _ = Crispiness(u)
	for _, v := range c {
		if math.Abs(v-1.0/250) > 1e-15 {
			t.Fatalf("uniform curve %v", c)
		}
	}
	hc, err := HeadCrispiness(randomAttention(2, 2, 2, 5, true), true)
	if err != nil {
		t.Fatal(err)
	}
	assertShape(t, "head crispiness", hc, 2, 2, 100)
	for u := 0; u < 4; u++ {
		if v := hc.Data[u*100+99]; math.Abs(v-1) > 1e-12 {
			t.Fatalf("cumulative mass ends at %g", v)
		}
	}
}

func TestHeadsDiversityRedundancyCollapse(t *testing.T) {
	// Layer 0: two identical heads; layer 1: identity vs uniform-causal.
	N := 4
	att := New(2, 2, N, N)
	base := randomAttention(3, 1, 1, N, true)
	copy(att.Matrix(0, 0), base.Data)
	copy(att.Matrix(0, 1), base.Data)
	uni, _ := UniformBaseline(N)
	for i := 0; i < N; i++ {
		att.Matrix(1, 0)[i*N+i] = 1
	}
	copy(att.Matrix(1, 1), uni.Data)
	d, err := HeadDiversity(att)
	if err != nil {
		t.Fatal(err)
	}
	if d.Data[0] != 0 || !(d.Data[1] > 0.1) {
		t.Fatalf("diversity %v, want 0 for identical heads and > 0.1 for identity vs uniform", d.Data)
	}
	pairs, err := RedundantHeads(att, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) != 1 || pairs[0] != (HeadPair{0, 0, 1, 0}) {
		t.Fatalf("redundant pairs %v, want layer 0 heads 0,1", pairs)
	}
	cs, err := Collapse(att, CollapseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 4 {
		t.Fatalf("%d heads", len(cs))
	}
	id, un := cs[2], cs[3]
	if id.Uniform || id.RankCollapse || id.NormEntropy != 0 {
		t.Fatalf("identity head %+v", id)
	}
	if !un.Uniform || math.Abs(un.NormEntropy-1) > 1e-12 || un.RankCollapse {
		t.Fatalf("uniform causal head %+v", un)
	}
	// Every row the same full distribution: rank collapse, not uniform.
	same := New(1, 1, 3, 3)
	for i := 0; i < 3; i++ {
		copy(same.Data[i*3:], []float64{0.9, 0.05, 0.05})
	}
	cs, _ = Collapse(same, CollapseOptions{})
	if !cs[0].RankCollapse || cs[0].Uniform || cs[0].RowJS != 0 {
		t.Fatalf("identical rows %+v", cs[0])
	}
}

func TestStatsInputErrors(t *testing.T) {
	neg, _ := FromFloat64([]int{1, 1, 2, 2}, []float64{1, 0, -0.5, 1.5})
	if _, err := Rows(neg, EntropyExact); err == nil {
		t.Fatal("negative weight accepted")
	}
	ok, _ := FromFloat64([]int{1, 1, 2, 2}, []float64{1, 0, 0.5, 0.5})
	if _, err := Rows(ok, "bits"); err == nil {
		t.Fatal("unknown convention accepted")
	}
	if _, err := UnitJSD(&Tensor{Shape: []int{2, 2}, Data: make([]float64, 4)}); err == nil {
		t.Fatal("rank 2 accepted")
	}
}
