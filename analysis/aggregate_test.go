package analysis

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

const tol = 1e-6

// toy is the shared toy attention of spec §7: L=2, H=1, N=3.
var (
	toyA0 = [][]float64{{1, 0, 0}, {0.5, 0.5, 0}, {0.2, 0.3, 0.5}}
	toyA1 = [][]float64{{1, 0, 0}, {0.9, 0.1, 0}, {0.1, 0.1, 0.8}}
)

func toy(t *testing.T, heads int) *Tensor {
	t.Helper()
	m, err := FromMatrices(toyA0, toyA1)
	if err != nil {
		t.Fatal(err)
	}
	N := 3
	out := New(2, heads, N, N)
	for l := 0; l < 2; l++ {
		for h := 0; h < heads; h++ {
			copy(out.Matrix(l, h), m.Matrix(l, 0))
		}
	}
	return out
}

func flat(m ...[][]float64) []float64 {
	var out []float64
	for _, mat := range m {
		for _, r := range mat {
			out = append(out, r...)
		}
	}
	return out
}

func assertClose(t *testing.T, name string, got, want []float64, eps float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	for k := range got {
		if math.Abs(got[k]-want[k]) > eps || math.IsNaN(got[k]) {
			t.Fatalf("%s: value %d = %.9g, want %.9g (±%g)\ngot  %v\nwant %v", name, k, got[k], want[k], eps, got, want)
		}
	}
}

func assertShape(t *testing.T, name string, got *Tensor, want ...int) {
	t.Helper()
	if len(got.Shape) != len(want) {
		t.Fatalf("%s: shape %v, want %v", name, got.Shape, want)
	}
	for i := range want {
		if got.Shape[i] != want[i] {
			t.Fatalf("%s: shape %v, want %v", name, got.Shape, want)
		}
	}
}

// randomAttention returns causal (or full) row-stochastic attention with a fixed seed.
func randomAttention(seed uint64, L, H, N int, causal bool) *Tensor {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	t := New(L, H, N, N)
	for l := 0; l < L; l++ {
		for h := 0; h < H; h++ {
			m := t.Matrix(l, h)
			for i := 0; i < N; i++ {
				row := m[i*N : (i+1)*N]
				s := 0.0
				for j := range row {
					if causal && j > i {
						break
					}
					row[j] = r.ExpFloat64()
					s += row[j]
				}
				for j := range row {
					row[j] /= s
				}
			}
		}
	}
	return t
}

func TestRolloutOracle(t *testing.T) {
	// Oracle 1: head mean, no residual (the pass), with two identical heads.
	for _, heads := range []int{1, 2} {
		r, err := Rollout(toy(t, heads), RolloutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		assertShape(t, "rollout", r, 2, 3, 3)
		assertClose(t, "rollout", r.Data, flat(toyA0, [][]float64{{1, 0, 0}, {0.95, 0.05, 0}, {0.31, 0.29, 0.4}}), tol)
		c, err := SumLayers(r)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float64, 9)
		for k := range want {
			want[k] = r.Data[k] + r.Data[9+k]
		}
		assertClose(t, "rollout_condensed_all", c.Data, want, tol)
	}
	// Oracle 2: with residual.
	r, err := Rollout(toy(t, 2), RolloutOptions{Residual: true})
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "rollout residual", r.Data, flat(
		[][]float64{{1, 0, 0}, {0.25, 0.75, 0}, {0.1, 0.15, 0.75}},
		[][]float64{{1, 0, 0}, {0.5875, 0.4125, 0}, {0.1525, 0.1725, 0.675}}), tol)
	// Residual rollout equals rollout of the 0.5A+0.5I matrices without residual.
	c, _ := ReduceHeads(toy(t, 1), HeadMean)
	hw, err := ResidualWeights(c)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := RolloutMatrices(hw, false)
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "rollout of 0.5A+0.5I", r2.Data, r.Data, 1e-12)
}

func TestRolloutInvariants(t *testing.T) {
	// Identity attention ⇒ identity rollout at every layer.
	id := New(3, 2, 4, 4)
	for l := 0; l < 3; l++ {
		for h := 0; h < 2; h++ {
			for i := 0; i < 4; i++ {
				id.Matrix(l, h)[i*4+i] = 1
			}
		}
	}
	for _, res := range []bool{false, true} {
		r, err := Rollout(id, RolloutOptions{Residual: res})
		if err != nil {
			t.Fatal(err)
		}
		for l := 0; l < 3; l++ {
			for i := 0; i < 4; i++ {
				for j := 0; j < 4; j++ {
					want := 0.0
					if i == j {
						want = 1
					}
					if got := r.Matrix(l, 0)[i*4+j]; got != want {
						t.Fatalf("residual=%v layer %d [%d,%d] = %g, want %g", res, l, i, j, got, want)
					}
				}
			}
		}
	}
	for seed := uint64(1); seed <= 5; seed++ {
		att := randomAttention(seed, 4, 3, 7, seed%2 == 0)
		for _, res := range []bool{false, true} {
			r, err := Rollout(att, RolloutOptions{Residual: res})
			if err != nil {
				t.Fatal(err)
			}
			for l := 0; l < 4; l++ {
				m := r.Matrix(l, 0)
				for i := 0; i < 7; i++ {
					s := 0.0
					for _, v := range m[i*7 : (i+1)*7] {
						s += v
					}
					if math.Abs(s-1) > 1e-12 {
						t.Fatalf("seed %d residual=%v layer %d row %d sums to %g", seed, res, l, i, s)
					}
				}
			}
			// Duplicating heads leaves the head-mean rollout unchanged.
			dup := New(4, 6, 7, 7)
			for l := 0; l < 4; l++ {
				for h := 0; h < 6; h++ {
					copy(dup.Matrix(l, h), att.Matrix(l, h%3))
				}
			}
			r2, err := Rollout(dup, RolloutOptions{Residual: res})
			if err != nil {
				t.Fatal(err)
			}
			assertClose(t, "duplicated heads", r2.Data, r.Data, 1e-12)
		}
	}
}

func TestTransitiveOracle(t *testing.T) {
	att := toy(t, 1)
	left, err := Transitive(att, DefaultTransitive)
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "left", left.Data, flat(toyA0, [][]float64{{1.5, 0, 0}, {1.175, 0.325, 0}, {0.305, 0.345, 0.85}}), tol)
	o := DefaultTransitive
	o.Direction = Right
	right, err := Transitive(att, o)
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "right", right.Data, flat(toyA0, [][]float64{{1.5, 0, 0}, {1.175, 0.325, 0}, {0.41, 0.24, 0.85}}), tol)
	// The two-layer variant equals the recurrence's last slice when L = 2.
	for _, d := range []Direction{Left, Right} {
		o.Direction = d
		tw, err := TransitiveTwoLayer(att, o)
		if err != nil {
			t.Fatal(err)
		}
		full, _ := Transitive(att, o)
		assertClose(t, "two-layer "+string(d), tw.Data, full.Matrix(1, 0), 1e-12)
	}
	// α = β = 0 ⇒ T_l = C_l, for every head reduction.
	rnd := randomAttention(7, 3, 2, 5, true)
	for _, how := range []HeadReduce{HeadSum, HeadMean, HeadMax} {
		for _, d := range []Direction{Left, Right} {
			tr, err := Transitive(rnd, TransitiveOptions{Heads: how, Direction: d})
			if err != nil {
				t.Fatal(err)
			}
			c, _ := ReduceHeads(rnd, how)
			assertClose(t, "α=β=0 "+string(how), tr.Data, c.Data, 1e-12)
		}
	}
	if _, err := Transitive(att, TransitiveOptions{Direction: "up"}); err == nil {
		t.Fatal("mult_direction up accepted")
	}
	if _, err := TransitiveTwoLayer(randomAttention(1, 1, 1, 3, true), DefaultTransitive); err == nil {
		t.Fatal("two-layer variant accepted a single layer")
	}
}

func TestFollowUpOracle(t *testing.T) {
	att := toy(t, 1)
	ctx := context.Background()
	all, err := FollowUpAllLayers(ctx, att)
	if err != nil {
		t.Fatal(err)
	}
	assertShape(t, "all layers", all, 1, 3, 3)
	want := []float64{0.959371, 0.919145, 1, 0.909065, 0.970143, 1, 1, 1, 1}
	assertClose(t, "F", all.Data, want, tol)
	if got := all.Data[1]; math.Abs(got-0.07/math.Sqrt(0.29*0.02)) > 1e-12 {
		t.Fatalf("F[0,1] = %v, want 0.07/‖(0.5,0.2)‖‖(0.1,0.1)‖", got)
	}
	plain, err := FollowUp(ctx, att)
	if err != nil {
		t.Fatal(err)
	}
	scaled, err := FollowUpScaled(ctx, att)
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "plain", plain.Data, want, tol)
	assertClose(t, "scaled = plain for L=2", scaled.Data, plain.Data, 0)
	if _, err := FollowUpAllLayers(ctx, randomAttention(1, 1, 1, 3, true)); err == nil {
		t.Fatal("one layer accepted")
	}
}

// followUpDirect is the original's direct formula, element by element.
func followUpDirect(att *Tensor) *Tensor {
	L, H, N := att.Shape[0], att.Shape[1], att.Shape[2]
	B := func(l, k, i int) float64 {
		s := 0.0
		for h := 0; h < H; h++ {
			s += att.At(l, h, k, i)
		}
		return s
	}
	out := New(L-1, N, N)
	for l := 0; l < L-1; l++ {
		for i := 0; i < N; i++ {
			for j := 0; j < N; j++ {
				var d, nu, nv float64
				for k := max(i, j); k < N; k++ {
					u, v := B(l, k, i), B(l+1, k, j)
					d += u * v
					nu += u * u
					nv += v * v
				}
				if nu != 0 && nv != 0 {
					out.Set(d/(math.Sqrt(nu)*math.Sqrt(nv)), l, i, j)
				}
			}
		}
	}
	return out
}

func TestFollowUpProperties(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		att := randomAttention(seed, 4, 3, 9, seed%2 == 1)
		got, err := FollowUpAllLayers(context.Background(), att)
		if err != nil {
			t.Fatal(err)
		}
		assertShape(t, "all layers", got, 3, 9, 9)
		assertClose(t, "vs direct formula", got.Data, followUpDirect(att).Data, 1e-12)
		for k, v := range got.Data {
			if v < 0 || v > 1+1e-12 {
				t.Fatalf("seed %d: term %d = %g outside [0,1]", seed, k, v)
			}
		}
		sc, _ := FollowUpScaled(context.Background(), att)
		want := make([]float64, 81)
		for l := 0; l < 3; l++ {
			for k := range want {
				want[k] += float64(l+1) * got.Matrix(l, 0)[k]
			}
		}
		assertClose(t, "scaled", sc.Data, want, 1e-12)
	}
	// Zero vectors give 0, not NaN.
	z := New(2, 1, 3, 3)
	f, err := FollowUpAllLayers(context.Background(), z)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range f.Data {
		if v != 0 {
			t.Fatalf("zero attention gave %v", f.Data)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := FollowUpAllLayers(ctx, randomAttention(1, 3, 1, 50, true)); err == nil {
		t.Fatal("cancelled context not reported")
	}
}

func TestNaiveAndRaw(t *testing.T) {
	att := toy(t, 1)
	mx, err := NaiveMax(att)
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "max", mx.Data, flat([][]float64{{1, 0, 0}, {0.9, 0.5, 0}, {0.2, 0.3, 0.8}}), tol)
	mn, err := NaiveMean(att)
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "mean", mn.Data, flat([][]float64{{1, 0, 0}, {0.7, 0.3, 0}, {0.15, 0.2, 0.65}}), tol)
	two := toy(t, 2)
	last, err := RawLastLayer(two)
	if err != nil {
		t.Fatal(err)
	}
	want := flat(toyA1)
	for k := range want {
		want[k] *= 2
	}
	assertClose(t, "raw last", last.Data, want, tol)
	first, err := RawFirstLayer(two)
	if err != nil {
		t.Fatal(err)
	}
	want = flat(toyA0)
	for k := range want {
		want[k] *= 2
	}
	assertClose(t, "raw first", first.Data, want, tol)
	a0, _ := FromFloat64([]int{3, 3}, flat(toyA0))
	mf, err := MeanOfFollowers(a0)
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "mean of followers", mf.Data, []float64{0.566667, 0.4, 0.5}, tol)
}

func TestValidationErrors(t *testing.T) {
	bad := toy(t, 1)
	bad.Data[4] = math.NaN()
	tests := []struct {
		name string
		att  *Tensor
	}{
		{"nil", nil},
		{"rank 3", &Tensor{Shape: []int{2, 3, 3}, Data: make([]float64, 18)}},
		{"non-square", &Tensor{Shape: []int{1, 1, 2, 3}, Data: make([]float64, 6)}},
		{"NaN", bad},
	}
	for _, tc := range tests {
		if _, err := Rollout(tc.att, RolloutOptions{}); err == nil {
			t.Errorf("%s: Rollout accepted it", tc.name)
		}
		if _, err := FollowUpAllLayers(context.Background(), tc.att); err == nil {
			t.Errorf("%s: FollowUp accepted it", tc.name)
		}
	}
	_, err := NaiveMean(bad)
	if err == nil || err.Error() != "layer 0, head 0, row 1: weight at key 1 is NaN, want a finite number" {
		t.Fatalf("NaN error = %v", err)
	}
}
