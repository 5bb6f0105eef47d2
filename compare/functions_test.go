package compare

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

var (
	oracleH = Matrix([][]float64{{0, 0, 0}, {3, 1, 0}, {1, 2, 3}})
	oracleM = Matrix([][]float64{{0.5, 0, 0}, {1, 2, 0}, {3, 2, 1}})
)

func run(t *testing.T, name string, kw Kwargs, h, m *Array) Result {
	t.Helper()
	f := Functions()[name]
	full := Kwargs{}
	for k, v := range f.Kwargs {
		full[k] = v
	}
	for k, v := range kw {
		full[k] = v
	}
	r, err := f.Run(Inputs{Human: h, Machine: m, HumanMeta: &Meta{}, MachineMeta: &Meta{}}, full)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

// approx formats a result for comparison with the oracle's 6 decimals.
func approx(v Value) string {
	switch x := v.(type) {
	case float64:
		return fmt.Sprintf("%.6f", x)
	case []Value:
		s := "["
		for i, e := range x {
			if i > 0 {
				s += " "
			}
			s += approx(e)
		}
		return s + "]"
	case nil:
		return "None"
	}
	return fmt.Sprint(v)
}

func elements(r Result) string {
	s := make([]Value, len(r.Elements))
	for i, e := range r.Elements {
		s[i] = e
	}
	return approx(s)
}

// Oracle 16 of followup-attention (comparison functions on H and M).
func TestComparisonOracle(t *testing.T) {
	scalar := func(name, key string, want float64) {
		r := run(t, name, nil, oracleH, oracleM)
		if len(r.Scalars) == 0 || r.Scalars[0].Name != key || math.Abs(r.Scalars[0].Value.(float64)-want) > 1e-6 {
			t.Errorf("%s = %+v, want %s = %v", name, r.Scalars, key, want)
		}
	}
	scalar("compare_mean_reciprocal_rank", "mrr", 0.444444)
	scalar("compare_harmonic_rank", "harmonic_rank", 2.25)
	scalar("mse", "msed", 1.472222)
	for _, tc := range []struct{ name, list, want string }{
		{"rank", "rank_list", "[[-1 0] [2 1] [3 2]]"},
		{"perfect_match", "perfect_match_list", "[[-1 0] [0 1] [0 2]]"},
		{"top_3_overlap", "top_3_list", "[[-1 0 [] []] [3 1 [0 1 2] [1 0 2]] [3 2 [2 1 0] [0 1 2]]]"},
		{"top_k_overlap", "top_3_list", "[[-1 0 [] []] [3 1 [0 1 2] [1 0 2]] [3 2 [2 1 0] [0 1 2]]]"},
		{"mse_line_by_line", "mse_list", "[[-1 0] [1.666667 1] [2.666667 2]]"},
		{"jsd_line_by_line", "jsd_list", "[[None] [0.300410] [0.295310]]"},
		{"spearman_rank_by_line", "spearman_res_list", "[[-1 -1 0] [0.500000 0.666667 1] [-1.000000 0.000000 2]]"},
	} {
		r := run(t, tc.name, nil, oracleH, oracleM)
		if got := elements(r); r.List != tc.list || got != tc.want {
			t.Errorf("%s: %s = %s, want %s = %s", tc.name, r.List, got, tc.list, tc.want)
		}
	}
	r := run(t, "spearman_rank", nil, Vector([]float64{1, 2, 3, 4}), Vector([]float64{1, 3, 2, 4}))
	if approx(r.Scalars[0].Value)+" "+approx(r.Scalars[1].Value) != "0.800000 0.200000" {
		t.Errorf("vector spearman %+v, want 0.8, 0.2", r.Scalars)
	}
}

// The O(n·k) selections agree with the full descending sort, ties and NaN included.
func TestSelectionsMatchFullSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for range 500 {
		n := 1 + rng.IntN(30)
		row := make([]float64, n)
		for j := range row {
			row[j] = float64(rng.IntN(4))
			if rng.IntN(20) == 0 {
				row[j] = math.NaN()
			}
		}
		d := descending(row)
		// d must be the reverse of a stable ascending sort (NaN last ascending).
		for a := 0; a+1 < n; a++ {
			if before(row, d[a+1], d[a]) {
				t.Fatalf("row %v: order %v", row, d)
			}
		}
		k := 1 + rng.IntN(n)
		if got := top(row, k, nil); !slices.Equal(got, d[:k]) {
			t.Fatalf("top %d of %v: %v, want %v", k, row, got, d[:k])
		}
		if first(row) != d[0] {
			t.Fatalf("first of %v: %d, want %d", row, first(row), d[0])
		}
		target := rng.IntN(n)
		if position(row, target) != slices.Index(d, target)+1 {
			t.Fatalf("position of %d in %v", target, row)
		}
	}
}

// Values are written as Python writes them (pandas to_csv of the original's lists).
func TestReprLikePython(t *testing.T) {
	for _, tc := range []struct {
		v    Value
		want string
	}{
		{1.0, "1.0"}, {0.5, "0.5"}, {1796206639.6792803, "1796206639.6792803"}, {1e16, "1e+16"},
		{1.5e-5, "1.5e-05"}, {0.0001, "0.0001"}, {-1, "-1"}, {nil, "None"}, {math.NaN(), "nan"},
		{[]Value{3, 1, []int{0, 1, 2}, []int{}}, "[3, 1, [0, 1, 2], []]"}, {[]Value{nil, 0.25}, "[None, 0.25]"},
	} {
		if got := repr(tc.v); got != tc.want {
			t.Errorf("repr(%v) = %s, want %s", tc.v, got, tc.want)
		}
	}
}
