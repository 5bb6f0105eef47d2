package compare

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func apply(t *testing.T, p *Pair, steps ...string) {
	t.Helper()
	trs := Transformations()
	for _, name := range steps {
		tr := trs[name]
		kw, _, err := checkKwargs(tr.Kwargs, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Run(p, kw); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func applyKw(t *testing.T, p *Pair, name string, given map[string]any) error {
	t.Helper()
	tr := Transformations()[name]
	kw, _, err := checkKwargs(tr.Kwargs, given)
	if err != nil {
		t.Fatal(err)
	}
	return tr.Run(p, kw)
}

func fmtRows(a *Array) string {
	s := ""
	for i := 0; i < a.Shape[0]; i++ {
		s += fmt.Sprintf("%.6g", a.Row(i))
	}
	return s
}

// Oracle 16's transformations: normalize_both_matrices_by_line and
// convert_vect_to_probabilities.
func TestTransformationOracle16(t *testing.T) {
	p := &Pair{Human: oracleH.Clone(), Machine: oracleM.Clone(), HumanMeta: &Meta{}, MachineMeta: &Meta{}}
	apply(t, p, "normalize_both_matrices_by_line")
	if got, want := fmtRows(p.Human), "[0 0 0][0.75 0.25 0][0.166667 0.333333 0.5]"; got != want {
		t.Errorf("human %s, want %s", got, want)
	}
	if got, want := fmtRows(p.Machine), "[1 0 0][0.333333 0.666667 0][0.5 0.333333 0.166667]"; got != want {
		t.Errorf("machine %s, want %s", got, want)
	}
	v := &Pair{Human: Vector([]float64{1, 3}), Machine: Vector([]float64{2, 2})}
	apply(t, v, "convert_vect_to_probabilities")
	if fmt.Sprint(v.Human.Data, v.Machine.Data) != "[0.25 0.75] [0.5 0.5]" {
		t.Errorf("probabilities %v %v", v.Human.Data, v.Machine.Data)
	}
}

// Oracle 15: convert_to_token_to_lines, then keep_only_lines_seen_by_model (with the
// original's off-by-one: 10×1; intended: 10×2).
func TestTokenToLinesOracle15(t *testing.T) {
	meta := &Meta{Text: "def f(a):\n    return a\n", Tokens: []string{"def", " f", "(", "a", "):", "\n", "   ", " return", " a", "\n"}}
	h := &Array{Shape: []int{10, 10}}
	for i := range 100 {
		h.Data = append(h.Data, float64(i))
	}
	m := h.Clone()
	for i := range m.Data {
		m.Data[i] *= 2
	}
	p := &Pair{Human: h, Machine: m, HumanMeta: meta, MachineMeta: meta}
	apply(t, p, "convert_to_token_to_lines")
	if got := fmtRows(p.Human); p.Human.Shape[1] != 2 || got[:len("[15 30][75 70][135 110]")] != "[15 30][75 70][135 110]" || p.Human.Row(9)[0] != 555 || p.Human.Row(9)[1] != 390 {
		t.Fatalf("token to lines: %v %s", p.Human.Shape, got)
	}
	if p.Machine.Row(1)[0] != 150 {
		t.Fatalf("machine %v", p.Machine.Row(1))
	}
	q := &Pair{Human: p.Human.Clone(), Machine: p.Machine.Clone(), HumanMeta: meta, MachineMeta: meta}
	if err := applyKw(t, q, "keep_only_lines_seen_by_model", map[string]any{"original_off_by_one": true}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(q.Human.Shape) != "[10 1]" {
		t.Fatalf("original off-by-one: %v", q.Human.Shape)
	}
	apply(t, p, "keep_only_lines_seen_by_model")
	if fmt.Sprint(p.Human.Shape) != "[10 2]" {
		t.Fatalf("intended: %v", p.Human.Shape)
	}
}

// Oracle 12 through convert_to_char_level: the machine's BPE token weights to the
// prompt's characters (replication and equal_share); the human text ends with
// "Answer", so nothing is cut.
func TestConvertToCharLevelOracle12(t *testing.T) {
	text := "def sum(a, b):\n    c ="
	meta := &Meta{Text: text, Tokens: []string{"def", "Ġsum", "(", "a", ",", "Ġb", "):", "Ċ", "Ġ", "Ġ", "Ġ", "Ġc", "Ġ="}}
	w := []float64{3, 3, 1, 1, 1, 2, 2, 1, 1, 1, 1, 2, 2}
	for _, tc := range []struct{ mode, want string }{
		{"replication", "[3 3 3 3 3 3 3 1 1 1 2 2 2 2 1 1 1 1 2 2 2 2]"},
		{"equal_share", "[1 1 1 0.75 0.75 0.75 0.75 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1]"},
	} {
		p := &Pair{Human: Vector(make([]float64, len(text))), Machine: Vector(w), HumanMeta: &Meta{Text: text + "\n# Answer"}, MachineMeta: meta}
		if err := applyKw(t, p, "convert_to_char_level", map[string]any{"mapping_from_token_to_char": tc.mode}); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(p.Machine.Data); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.mode, got, tc.want)
		}
	}
	// Cut after the human text's last "Answer".
	p := &Pair{Human: Vector(make([]float64, 30)), Machine: Vector(w), HumanMeta: &Meta{Text: "# Answer: x"}, MachineMeta: meta}
	if err := applyKw(t, p, "convert_to_char_level", nil); err != nil {
		t.Fatal(err)
	}
	if len(p.Human.Data) != 8 || len(p.Machine.Data) != 8 {
		t.Fatalf("cut: %d %d, want 8", len(p.Human.Data), len(p.Machine.Data))
	}
}

// remove_base_human_behavior on a hand-computed case: base p(d) from a CSV with
// distances −1, 0, 1 and probabilities 1, 2, 1 (normalised 0.25, 0.5, 0.25).
func TestRemoveBaseBehavior(t *testing.T) {
	dir := t.TempDir()
	csv := "distance_current_to_target,prob_to_go_to_target_mean\n1,1\n-1,1\n0,2\n"
	if err := os.WriteFile(filepath.Join(dir, "base.csv"), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	h := Matrix([][]float64{{2, 2, 0}, {1, 1, 2}, {0, 0, 5}})
	p := &Pair{Human: h.Clone(), Machine: h.Clone(), HumanMeta: &Meta{}, MachineMeta: &Meta{}, Dir: dir}
	kw := map[string]any{"path_csv_normalization_prob_human": "base.csv", "mode": "subtract"}
	if err := applyKw(t, p, "remove_base_human_behavior", kw); err != nil {
		t.Fatal(err)
	}
	// Row 0 normalised [.5 .5 0], base [p(0) p(1) p(2)] = [.5 .25 0] → [0 .25 0].
	// Row 1 [.25 .25 .5], base [.25 .5 .25] → [0 −.25 .25]. Row 2 [0 0 1] − [0 .25 .5].
	if got, want := fmtRows(p.Human), "[0 0.25 0][0 -0.25 0.25][0 -0.25 0.5]"; got != want {
		t.Fatalf("subtract: %s, want %s", got, want)
	}
	if got := fmtRows(p.Machine); got != "[0.5 0.5 0][0.25 0.25 0.5][0 0 1]" {
		t.Fatalf("machine without a base CSV: only normalised, got %s", got)
	}
	// The original's quirk: a machine without CSV divided by a base of ones.
	p = &Pair{Human: h.Clone(), Machine: h.Clone(), HumanMeta: &Meta{}, MachineMeta: &Meta{}, Dir: dir}
	kw = map[string]any{"path_csv_normalization_prob_human": "base.csv", "mode": "divide", "min_base_value": 1e-5, "machine_base_all_ones": true}
	if err := applyKw(t, p, "remove_base_human_behavior", kw); err != nil {
		t.Fatal(err)
	}
	if math.Abs(p.Machine.Row(2)[2]-1/(1+1e-5)) > 1e-15 || math.Abs(p.Human.Row(0)[1]-0.5/(0.25+1e-5)) > 1e-12 {
		t.Fatalf("divide: human %v machine %v", p.Human.Rows(), p.Machine.Rows())
	}
	p.Dir = t.TempDir()
	if err := applyKw(t, p, "remove_base_human_behavior", kw); err == nil {
		t.Fatal("missing CSV accepted")
	}
}

// tok_k_overlap_far_j: with token meaning, the columns within 1 of the row are
// excluded; with the original's swapped meaning, "token" uses the line instead.
func TestTopKFar(t *testing.T) {
	h := Matrix([][]float64{{5, 4, 3, 2, 1}, {5, 4, 3, 2, 1}, {1, 2, 3, 4, 5}, {1, 1, 1, 1, 9}, {9, 1, 1, 1, 1}})
	meta := &Meta{Text: "a b\nc d\ne", Tokens: []string{"a", "Ġb", "Ċ", "c", "Ġd"}}
	r := run(t, "tok_k_overlap_far_j", Kwargs{"k": 2, "neighbors_to_exclude": 1, "columns_meaning": "token"}, h, h.Clone())
	r.Elements[0] = r.Elements[0][:4]
	if got := fmt.Sprint(r.Elements[0][2]); got != "[2 3]" { // row 0: columns 0, 1 excluded
		t.Fatalf("row 0 top: %s", got)
	}
	f := Functions()["tok_k_overlap_far_j"]
	kw, _, _ := checkKwargs(f.Kwargs, map[string]any{"k": 2, "neighbors_to_exclude": 0, "columns_meaning": "token", "original_swapped_meaning": true})
	res, err := f.Run(Inputs{Human: h, Machine: h.Clone(), HumanMeta: meta, MachineMeta: meta}, kw)
	if err != nil {
		t.Fatal(err)
	}
	// Token 3 ("c") is on line 1: the swapped meaning excludes column 1, not 3.
	if got := fmt.Sprint(res.Elements[3][2]); got != "[4 3]" {
		t.Fatalf("swapped meaning row 3 top: %s", got)
	}
}
