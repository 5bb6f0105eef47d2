package compare

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/attnscope/attnscope/stats"
)

// Value is one cell of a result: float64, int, nil (None), string or a list of Values.
type Value = any

// Result is what a comparison function returns for one pair: named scalars and at
// most one list (one element per matrix row), each element a tuple of Values.
type Result struct {
	Scalars []Named
	// List is the name of the list column ("top_3_list"), "" when none.
	List     string
	Elements [][]Value
}

// Named is a named scalar result.
type Named struct {
	Name  string
	Value Value
}

// Inputs are the arrays a comparison function compares with their metadata.
type Inputs struct {
	Human, Machine         *Array
	HumanMeta, MachineMeta *Meta
}

// Function is a comparison function of the comparator.
type Function struct {
	Name string
	// Doc is one line: what it computes.
	Doc string
	// Vectors is true when it compares 1-D arrays, false for matrices; AnyShape
	// when it compares arrays of any equal shape.
	Vectors, AnyShape bool
	// List names the list column it returns ("" for scalars only); Fields names the
	// elements of its tuples, Scalars its scalar results.
	List    func(kw Kwargs) string
	Fields  []string
	Scalars []string
	Kwargs  map[string]any // accepted keyword arguments with their defaults
	Run     func(in Inputs, kw Kwargs) (Result, error)
}

// Kwargs are keyword arguments after checking (defaults filled in).
type Kwargs map[string]any

func (k Kwargs) int(name string) int {
	switch v := k[name].(type) {
	case int:
		return v
	case uint64:
		return int(v)
	case int64:
		return int(v)
	case float64:
		return int(v)
	}
	return 0
}

func (k Kwargs) float(name string) float64 {
	switch v := k[name].(type) {
	case int:
		return float64(v)
	case uint64:
		return float64(v)
	case int64:
		return float64(v)
	case float64:
		return v
	}
	return 0
}

func (k Kwargs) bool(name string) bool { b, _ := k[name].(bool); return b }

func (k Kwargs) string(name string) string { s, _ := k[name].(string); return s }

func fixed(name string) func(Kwargs) string { return func(Kwargs) string { return name } }

// Functions returns the comparison functions by name.
func Functions() map[string]*Function {
	fs := []*Function{
		{Name: "spearman_rank", Vectors: true, Doc: "Spearman ρ of two vectors (average ranks) and its two-sided p-value",
			Scalars: []string{"correlation", "pvalue"}, Run: spearmanVector},
		{Name: "spearman_rank_by_line", Doc: "Spearman ρ and p of every row; (-1,-1,row) for a zero human row",
			List: fixed("spearman_res_list"), Fields: []string{"corr", "pval", "token_index"}, Kwargs: map[string]any{"symmetric": false}, Run: spearmanByLine},
		{Name: "mse", AnyShape: true, Doc: "mean squared difference over all cells", Scalars: []string{"msed"}, Run: mse},
		{Name: "mse_line_by_line", Doc: "mean squared difference of every row; -1 for a zero human row",
			List: fixed("mse_list"), Fields: []string{"value", "token_index"}, Kwargs: map[string]any{"symmetric": false}, Run: mseByLine},
		{Name: "jsd_line_by_line", Doc: "Jensen–Shannon distance (natural log) of every row, rows normalised to sum 1; None when undefined",
			List: fixed("jsd_list"), Fields: []string{"value"}, Run: jsdByLine},
		{Name: "compare_mean_reciprocal_rank", Doc: "mean over rows of 1/rank of the human's top target in the machine's order",
			Scalars: []string{"mrr"}, Run: meanReciprocalRank},
		{Name: "compare_harmonic_rank", Doc: "harmonic mean over rows of the rank of the human's top target in the machine's order",
			Scalars: []string{"harmonic_rank"}, Run: harmonicRank},
		{Name: "rank", Doc: "rank of the human's top target in the machine's order, per row; -1 for a zero human row",
			List: fixed("rank_list"), Fields: []string{"value", "token_index"}, Kwargs: map[string]any{"symmetric": false}, Run: rankList},
		{Name: "perfect_match", Doc: "1 if the machine's top target is the human's, per row; -1 for a zero human row",
			List: fixed("perfect_match_list"), Fields: []string{"value", "token_index"}, Kwargs: map[string]any{"symmetric": false}, Run: perfectMatch},
		{Name: "top_k_overlap", Doc: "size of the intersection of the human's and the machine's top k targets, per row",
			List: topKName, Fields: []string{"value", "token_index", "top_human", "top_machine"}, Kwargs: map[string]any{"k": 3, "symmetric": false}, Run: topKOverlap},
		{Name: "top_3_overlap", Doc: "top_k_overlap with k = 3",
			List: fixed("top_3_list"), Fields: []string{"value", "token_index", "top_human", "top_machine"}, Kwargs: map[string]any{"symmetric": false}, Run: topKFixed(3)},
		{Name: "top_10_overlap", Doc: "top_k_overlap with k = 10",
			List: fixed("top_10_list"), Fields: []string{"value", "token_index", "top_human", "top_machine"}, Kwargs: map[string]any{"symmetric": false}, Run: topKFixed(10)},
		{Name: "tok_k_overlap_far_j", Doc: "top-k overlap after removing the columns within neighbors_to_exclude of the row (tokens or lines)",
			List: farName, Fields: []string{"value", "token_index", "top_human", "top_machine"},
			Kwargs: map[string]any{"k": 3, "neighbors_to_exclude": 2, "columns_meaning": "line", "original_swapped_meaning": false, "pass_metadata": true, "symmetric": false},
			Run:    topKFar},
	}
	m := make(map[string]*Function, len(fs))
	for _, f := range fs {
		if f.List == nil {
			f.List = fixed("")
		}
		m[f.Name] = f
	}
	return m
}

func topKName(kw Kwargs) string { return "top_" + strconv.Itoa(kw.int("k")) + "_list" }

func farName(kw Kwargs) string {
	return "top_" + strconv.Itoa(kw.int("k")) + "_far_" + strconv.Itoa(kw.int("neighbors_to_exclude")) + "_list"
}

func spearmanVector(in Inputs, _ Kwargs) (Result, error) {
	r, err := stats.Spearman(in.Human.Data, in.Machine.Data)
	if err != nil {
		return Result{}, err
	}
	return Result{Scalars: []Named{{"correlation", noNaN(r.Statistic)}, {"pvalue", noNaN(r.P)}}}, nil
}

func noNaN(v float64) Value {
	if math.IsNaN(v) {
		return nil
	}
	return v
}

// before reports whether column a comes before column b in row's descending
// order: larger values first, ties with the larger index first — the reverse of a
// stable ascending sort (the original reverses numpy's argsort; the stable sort
// makes ties reproducible). NaN sorts last ascending in NumPy, so first here.
func before(row []float64, a, b int) bool {
	x, y := row[a], row[b]
	switch {
	case x != x || y != y: // NaN
		if x != x && y != y {
			return a > b
		}
		return x != x
	case x != y:
		return x > y
	}
	return a > b
}

// top returns the first k columns of row's descending order (see before), in
// that order, skipping excluded columns (nil: none). O(len(row)·k).
func top(row []float64, k int, excluded []bool) []int {
	out := make([]int, 0, k+1)
	for j := range row {
		if excluded != nil && excluded[j] {
			continue
		}
		if len(out) == k && !before(row, j, out[k-1]) {
			continue
		}
		pos := len(out)
		for pos > 0 && before(row, j, out[pos-1]) {
			pos--
		}
		out = append(out, 0)
		copy(out[pos+1:], out[pos:])
		out[pos] = j
		if len(out) > k {
			out = out[:k]
		}
	}
	return out
}

// first returns the first column of row's descending order.
func first(row []float64) int {
	best := 0
	for j := 1; j < len(row); j++ {
		if before(row, j, best) {
			best = j
		}
	}
	return best
}

// position returns the 1-based position of column target in row's descending order.
func position(row []float64, target int) int {
	p := 1
	for j := range row {
		if j != target && before(row, j, target) {
			p++
		}
	}
	return p
}

// descending returns all column indices of row in descending order (see before).
func descending(row []float64) []int {
	idx := make([]int, len(row))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		if before(row, a, b) {
			return -1
		}
		if before(row, b, a) {
			return 1
		}
		return 0
	})
	return idx
}

func sum(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

// skip reports whether row i is skipped: a zero human row, or with symmetric a zero
// machine row too.
func skip(in Inputs, i int, kw Kwargs) bool {
	if sum(in.Human.Row(i)) == 0 {
		return true
	}
	return kw.bool("symmetric") && sum(in.Machine.Row(i)) == 0
}

func perRow(in Inputs, kw Kwargs, name string, skipped func(i int) []Value, f func(i int, h, m []float64) ([]Value, error)) (Result, error) {
	res := Result{List: name}
	for i := 0; i < in.Human.Shape[0]; i++ {
		if skipped != nil && skip(in, i, kw) {
			res.Elements = append(res.Elements, skipped(i))
			continue
		}
		e, err := f(i, in.Human.Row(i), in.Machine.Row(i))
		if err != nil {
			return Result{}, fmt.Errorf("row %d: %w", i, err)
		}
		res.Elements = append(res.Elements, e)
	}
	return res, nil
}

func spearmanByLine(in Inputs, kw Kwargs) (Result, error) {
	return perRow(in, kw, "spearman_res_list", func(i int) []Value { return []Value{-1, -1, i} },
		func(i int, h, m []float64) ([]Value, error) {
			r, err := stats.Spearman(h, m)
			if err != nil {
				return nil, err
			}
			if math.IsNaN(r.Statistic) {
				return []Value{nil, nil, i}, nil
			}
			return []Value{r.Statistic, noNaN(r.P), i}, nil
		})
}

func mse(in Inputs, _ Kwargs) (Result, error) {
	var s float64
	for i, h := range in.Human.Data {
		d := h - in.Machine.Data[i]
		s += d * d
	}
	return Result{Scalars: []Named{{"msed", s / float64(len(in.Human.Data))}}}, nil
}

func mseByLine(in Inputs, kw Kwargs) (Result, error) {
	return perRow(in, kw, "mse_list", func(i int) []Value { return []Value{-1, i} },
		func(i int, h, m []float64) ([]Value, error) {
			var s float64
			for j := range h {
				s += (h[j] - m[j]) * (h[j] - m[j])
			}
			return []Value{s / float64(len(h)), i}, nil
		})
}

// JSDistance is the Jensen–Shannon distance of two non-negative vectors normalised
// to sum 1 (scipy.spatial.distance.jensenshannon, natural log):
// √(½KL(p‖m) + ½KL(q‖m)), m = (p+q)/2; NaN when a vector sums to 0.
func JSDistance(p, q []float64) float64 {
	sp, sq := sum(p), sum(q)
	var js float64
	for i := range p {
		a, b := p[i]/sp, q[i]/sq
		m := (a + b) / 2
		js += relEntr(a, m) + relEntr(b, m)
	}
	return math.Sqrt(js / 2)
}

// relEntr is scipy.special.rel_entr: x·ln(x/y), 0 at x = 0, +Inf for y = 0 < x.
func relEntr(x, y float64) float64 {
	switch {
	case math.IsNaN(x) || math.IsNaN(y):
		return math.NaN()
	case x > 0 && y > 0:
		return x * math.Log(x/y)
	case x == 0 && y >= 0:
		return 0
	}
	return math.Inf(1)
}

func jsdByLine(in Inputs, kw Kwargs) (Result, error) {
	r, err := perRow(in, kw, "jsd_list", nil, func(i int, h, m []float64) ([]Value, error) {
		return []Value{noNaN(JSDistance(h, m))}, nil
	})
	// The original's list holds bare values, not tuples.
	return r, err
}

// ranks returns, for every row, the 1-based position of the human's top target
// (the first of its descending order) in the machine's descending order.
func ranks(in Inputs) []int {
	out := make([]int, in.Human.Shape[0])
	for i := range out {
		out[i] = position(in.Machine.Row(i), first(in.Human.Row(i)))
	}
	return out
}

func meanReciprocalRank(in Inputs, _ Kwargs) (Result, error) {
	var s float64
	r := ranks(in)
	for _, v := range r {
		s += 1 / float64(v)
	}
	return Result{Scalars: []Named{{"mrr", s / float64(len(r))}}}, nil
}

func harmonicRank(in Inputs, _ Kwargs) (Result, error) {
	var s float64
	r := ranks(in)
	for _, v := range r {
		s += 1 / float64(v)
	}
	return Result{Scalars: []Named{{"harmonic_rank", float64(len(r)) / s}}}, nil
}

func rankList(in Inputs, kw Kwargs) (Result, error) {
	return perRow(in, kw, "rank_list", func(i int) []Value { return []Value{-1, i} },
		func(i int, h, m []float64) ([]Value, error) {
			return []Value{position(m, first(h)), i}, nil
		})
}

func perfectMatch(in Inputs, kw Kwargs) (Result, error) {
	return perRow(in, kw, "perfect_match_list", func(i int) []Value { return []Value{-1, i} },
		func(i int, h, m []float64) ([]Value, error) {
			v := 0
			if first(m) == first(h) {
				v = 1
			}
			return []Value{v, i}, nil
		})
}

func topKFixed(k int) func(Inputs, Kwargs) (Result, error) {
	return func(in Inputs, kw Kwargs) (Result, error) {
		kw2 := Kwargs{"k": k, "symmetric": kw.bool("symmetric")}
		return topKOverlap(in, kw2)
	}
}

func topKOverlap(in Inputs, kw Kwargs) (Result, error) {
	return topK(in, kw, topKName(kw), func(int) []bool { return nil })
}

func topK(in Inputs, kw Kwargs, name string, excluded func(row int) []bool) (Result, error) {
	k := kw.int("k")
	if k < 1 {
		return Result{}, fmt.Errorf("k = %d, at least 1 expected", k)
	}
	return perRow(in, kw, name, func(i int) []Value { return []Value{-1, i, []int{}, []int{}} },
		func(i int, h, m []float64) ([]Value, error) {
			ex := excluded(i)
			th, tm := top(h, k, ex), top(m, k, ex)
			n := 0
			for _, j := range th {
				if slices.Contains(tm, j) {
					n++
				}
			}
			return []Value{n, i, th, tm}, nil
		})
}

// topKFar is tok_k_overlap_far_j: the top-k overlap after removing the columns near
// the current row. With columns_meaning "token" the columns are tokens and those
// with |j − i| ≤ neighbors_to_exclude go; with "line" the columns are lines and
// those with |j − line(i)| ≤ neighbors_to_exclude go, line(i) the 0-based line of
// token i in the machine's prompt. original_swapped_meaning reproduces
// followup-attention, which uses the token index for "line" and the line for "token".
func topKFar(in Inputs, kw Kwargs) (Result, error) {
	n := kw.int("neighbors_to_exclude")
	meaning := kw.string("columns_meaning")
	if meaning != "line" && meaning != "token" {
		return Result{}, fmt.Errorf("columns_meaning %q, \"line\" or \"token\" expected", meaning)
	}
	if kw.bool("original_swapped_meaning") {
		meaning = map[string]string{"line": "token", "token": "line"}[meaning]
	}
	var lines []int
	if meaning == "line" {
		var err error
		if lines, err = in.MachineMeta.tokenLines(); err != nil {
			return Result{}, err
		}
	}
	cols := in.Human.Shape[1]
	return topK(in, kw, farName(kw), func(i int) []bool {
		center := i
		if meaning == "line" {
			center = -1 << 30
			if i < len(lines) {
				center = lines[i]
			}
		}
		ex := make([]bool, cols)
		for j := range ex {
			ex[j] = j >= center-n && j <= center+n
		}
		return ex
	})
}
