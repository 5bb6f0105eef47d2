package compare

import (
	"context"
	"encoding/csv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

const testConfig = `human_att_folder: human
machine_att_folder: machine
output_comparison_folder: out
comparisons:
  - name: plain
    type: vector
    comparison_function: spearman_rank
    transformations:
      - name: convert_vect_to_probabilities
    human: {subfolder: weights, suffix: _human}
    machine: {subfolder: weights, suffix: _m}
  - name: top3
    type: matrix
    comparison_function: top_3_overlap
    comparison_output_subcolumns: [value, token_index]
    transformations:
      - name: keep_only_tokens_seen_by_model
      - name: normalize_both_matrices_by_line
    human: {subfolder: followup, suffix: _human}
    machine:
      - {subfolder: followup, suffix: _followup}
      - {subfolder: naive, suffix: _naive}
`

// setup writes a human run (three sessions: two on a.py, one on b.py) and a machine
// run (two tries of each file) under a temporary folder, and the config.
func setup(t *testing.T, same bool) (string, *Config) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 12
	shared := map[string]map[string]*Array{}
	arrays := func(it item) map[string]*Array {
		if same { // every item of a file carries the same arrays
			if a, ok := shared[it.source]; ok {
				return a
			}
		}
		a := map[string]*Array{"weights": randomVector(rng, n), "followup": randomMatrix(rng, n), "naive": randomMatrix(rng, n)}
		shared[it.source] = a
		return a
	}
	writeRun(t, filepath.Join(dir, "human"), []item{
		{id: "h1", source: "a.py", user: "ann", task: "0"},
		{id: "h2", source: "a.py", user: "bob", task: "3"},
		{id: "h3", source: "b.py", user: "ann", task: "1"},
	}, n, arrays)
	writeRun(t, filepath.Join(dir, "machine"), []item{
		{id: "a.py_0", source: "a.py"}, {id: "a.py_1", source: "a.py", try: 1},
		{id: "b.py_0", source: "b.py"}, {id: "b.py_1", source: "b.py", try: 1},
	}, n, arrays)
	path := filepath.Join(dir, "cmp.yaml")
	if err := os.WriteFile(path, []byte(testConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return dir, cfg
}

func readCSV(t *testing.T, path string) ([]string, []map[string]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, c := range recs[0] {
			m[c] = r[i]
		}
		rows = append(rows, m)
	}
	return recs[0], rows
}

func TestRunPairsColumnsAndParquet(t *testing.T) {
	dir, cfg := setup(t, false)
	fixed := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	sum, err := Run(context.Background(), cfg, Options{Now: func() time.Time { return fixed }})
	if err != nil {
		t.Fatal(err)
	}
	// Each human session × the two tries of its file = 6 pairs per machine section;
	// ordered human pairs on a.py = 2.
	if sum.Pairs != 6+2+6+6+2 || len(sum.Outputs) != 5 {
		t.Fatalf("summary %+v", sum)
	}
	cols, rows := readCSV(t, filepath.Join(dir, "out", "plain_m.csv"))
	wantStart := []string{"comparison_name", "comparison_function", "source_code", "user_name", "task_number",
		"input_human_filestem", "input_machine_filestem", "transformation_0.name", "comparison_type", "correlation", "pvalue"}
	if !slices.Equal(cols[:len(wantStart)], wantStart) || !slices.Contains(cols, "provenance.machine.subfolder") ||
		!slices.Equal(cols[len(cols)-4:], []string{"time_ts_sec", "time_human", "human_att_folder", "machine_att_folder"}) {
		t.Fatalf("columns %v", cols)
	}
	var pairs []string
	for _, r := range rows {
		pairs = append(pairs, r["input_human_filestem"]+"~"+r["input_machine_filestem"])
		if r["comparison_name"] != "plain_m" || r["time_human"] != "2026-12-02 10:00:00" || r["comparison_type"] != "vector" {
			t.Fatalf("row %v", r)
		}
	}
	if want := []string{"h1~a.py_0", "h1~a.py_1", "h2~a.py_0", "h2~a.py_1", "h3~b.py_0", "h3~b.py_1"}; !slices.Equal(pairs, want) {
		t.Fatalf("pairs %v, want %v", pairs, want)
	}
	// Exploded top-3 rows: 12 rows per pair, top_3.value and top_3.token_index.
	_, rows = readCSV(t, filepath.Join(dir, "out", "top3_naive.csv"))
	if len(rows) != 6*12 || rows[5]["top_3.token_index"] != "5" || rows[0]["top_3"] == "" {
		t.Fatalf("%d rows, first %v", len(rows), rows[0])
	}
	cols, rows = readCSV(t, filepath.Join(dir, "out", "top3_human.csv"))
	if !slices.Contains(cols, "user_name_b") || len(rows) != 2*12 || rows[0]["human_a"] != "h1" || rows[0]["human_b"] != "h2" || rows[0]["user_name_b"] != "bob" {
		t.Fatalf("human pairs: %v %d rows %v", cols, len(rows), rows[0])
	}
	// The Parquet copy holds the same rows, numbers as doubles.
	f, err := os.Open(filepath.Join(dir, "out", "top3_naive.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if pf.NumRows() != int64(len(rows)*3) { // 6 pairs × 12 rows
		t.Fatalf("parquet has %d rows", pf.NumRows())
	}
	col, ok := pf.Schema().Lookup("top_3.value")
	if !ok || col.Node.Type().Kind() != parquet.Double {
		t.Fatalf("top_3.value column: %v", col)
	}
	_, csvRows := readCSV(t, filepath.Join(dir, "out", "top3_naive.csv"))
	rr := parquet.NewReader(pf)
	defer rr.Close()
	row := make([]parquet.Row, 1)
	for i := 0; i < len(csvRows); i++ {
		if _, err := rr.ReadRows(row); err != nil && i < len(csvRows)-1 {
			t.Fatal(err)
		}
		got := row[0][col.ColumnIndex].Double()
		want, _ := strconv.ParseFloat(csvRows[i]["top_3.value"], 64)
		if got != want {
			t.Fatalf("row %d: parquet %v, csv %v", i, got, want)
		}
	}
}

// Identical human and machine arrays give perfect scores.
func TestIdenticalInputsScorePerfectly(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		n := 3 + rng.IntN(20)
		m := randomMatrix(rng, n)
		v := randomVector(rng, n)
		check := func(name string, h, x *Array, ok func(Result) bool) {
			r := run(t, name, nil, h, x)
			if !ok(r) {
				t.Fatalf("%s on identical inputs: %+v", name, r)
			}
		}
		check("spearman_rank", v, v.Clone(), func(r Result) bool { return r.Scalars[0].Value == 1.0 && r.Scalars[1].Value == 0.0 })
		check("mse", m, m.Clone(), func(r Result) bool { return r.Scalars[0].Value == 0.0 })
		check("compare_mean_reciprocal_rank", m, m.Clone(), func(r Result) bool { return r.Scalars[0].Value == 1.0 })
		check("compare_harmonic_rank", m, m.Clone(), func(r Result) bool { return r.Scalars[0].Value == 1.0 })
		all := func(f func(e []Value) bool) func(Result) bool {
			return func(r Result) bool {
				for _, e := range r.Elements {
					if !f(e) {
						return false
					}
				}
				return len(r.Elements) == n
			}
		}
		check("perfect_match", m, m.Clone(), all(func(e []Value) bool { return e[0] == 1 }))
		check("rank", m, m.Clone(), all(func(e []Value) bool { return e[0] == 1 }))
		check("top_3_overlap", m, m.Clone(), all(func(e []Value) bool { return e[0] == min(3, n) }))
		check("jsd_line_by_line", m, m.Clone(), all(func(e []Value) bool { return e[0] == 0.0 }))
		check("mse_line_by_line", m, m.Clone(), all(func(e []Value) bool { return e[0] == 0.0 }))
		check("spearman_rank_by_line", m, m.Clone(), all(func(e []Value) bool {
			return e[0] == nil || math.Abs(e[0].(float64)-1) < 1e-12 // a row with one non-zero entry ties the rest
		}))
	}
}

// Permuting the tokens: the same permutation of both sides changes no score; a
// permutation of the machine alone moves its top targets, and the scores follow.
func TestTokenPermutation(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 20 {
		n := 4 + rng.IntN(20)
		h, m := randomVector(rng, n), randomVector(rng, n)
		perm := rng.Perm(n)
		ph, pm := make([]float64, n), make([]float64, n)
		for i, j := range perm {
			ph[i], pm[i] = h.Data[j], m.Data[j]
		}
		a := run(t, "spearman_rank", nil, h, m)
		b := run(t, "spearman_rank", nil, Vector(ph), Vector(pm))
		if math.Abs(a.Scalars[0].Value.(float64)-b.Scalars[0].Value.(float64)) > 1e-12 {
			t.Fatalf("spearman changed under a joint permutation: %v %v", a.Scalars, b.Scalars)
		}
		// Reversing the machine's order of a strictly increasing human vector: ρ = −1.
		inc := make([]float64, n)
		dec := make([]float64, n)
		for i := range inc {
			inc[i], dec[i] = float64(i), float64(n-i)
		}
		if r := run(t, "spearman_rank", nil, Vector(inc), Vector(dec)); r.Scalars[0].Value != -1.0 {
			t.Fatalf("reversed: %v", r.Scalars)
		}
		// Matrix: swapping the machine's columns c1 ↔ c2 of the identity-like matrix
		// moves the top of rows c1 and c2: perfect match 0 there, 1 elsewhere; rank 2.
		mat := &Array{Shape: []int{n, n}, Data: make([]float64, n*n)}
		for i := range n {
			for j := range n {
				mat.Data[i*n+j] = 1 / (1 + math.Abs(float64(i-j)))
			}
		}
		c1, c2 := rng.IntN(n), rng.IntN(n)
		for c1 == c2 {
			c2 = rng.IntN(n)
		}
		sw := mat.Clone()
		for i := range n {
			r := sw.Row(i)
			r[c1], r[c2] = r[c2], r[c1]
		}
		pmRes := run(t, "perfect_match", nil, mat, sw)
		for i, e := range pmRes.Elements {
			want := 1
			if i == c1 || i == c2 {
				want = 0
			}
			if e[0] != want {
				t.Fatalf("perfect match row %d (swap %d,%d): %v, want %d", i, c1, c2, e, want)
			}
		}
	}
}

func TestJSDSymmetric(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 200 {
		n := 1 + rng.IntN(30)
		p, q := randomVector(rng, n).Data, randomVector(rng, n).Data
		if rng.IntN(3) == 0 {
			p[rng.IntN(n)] = 0
		}
		a, b := JSDistance(p, q), JSDistance(q, p)
		if math.Abs(a-b) > 1e-15 || a < 0 || a > math.Sqrt(math.Ln2)+1e-12 {
			t.Fatalf("JSD(p,q) = %v, JSD(q,p) = %v", a, b)
		}
	}
	if JSDistance([]float64{1, 0}, []float64{0, 1}) != math.Sqrt(math.Ln2) {
		t.Fatal("disjoint supports: √ln2 expected")
	}
}

func TestBadInput(t *testing.T) {
	for _, tc := range []struct{ edit, want string }{
		{"name: convert_vect_to_probabilities", "cmp.yaml:9: comparison \"plain\": unknown transformation \"nope\""},
		{"comparison_function: spearman_rank", "cmp.yaml:7: comparison \"plain\": unknown comparison_function \"nope\""},
		{"type: vector", "unknown field \"colour\""},
	} {
		_, cfg := setup(t, false)
		text := strings.Replace(testConfig, tc.edit, map[bool]string{true: "type: vector\n    colour: red", false: strings.Split(tc.edit, ":")[0] + ": nope"}[tc.edit == "type: vector"], 1)
		_ = cfg
		_, err := ParseConfig("cmp.yaml", []byte(text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("edit %q: error %v, want %q", tc.edit, err, tc.want)
		}
	}
	_, err := ParseConfig("cmp.yaml", []byte(strings.Replace(testConfig, "- name: keep_only_tokens_seen_by_model", "- name: keep_only_lines_seen_by_model\n        kwargs: {off_by_two: true}", 1)))
	if err == nil || !strings.Contains(err.Error(), "cmp.yaml:18:") || !strings.Contains(err.Error(), `unknown keyword "off_by_two"`) {
		t.Errorf("unknown keyword: %v", err)
	}
	_, err = ParseConfig("cmp.yaml", []byte(strings.Replace(testConfig, "{subfolder: naive, suffix: _naive}", "{subfolder: naive, suffix: _naive, colour: red}", 1)))
	if err == nil || !strings.Contains(err.Error(), "colour") {
		t.Errorf("unknown key in a machine list entry: %v", err)
	}

	// Shapes that differ: a clear sentence naming the files; nothing written.
	dir, cfg := setup(t, false)
	bad := filepath.Join(dir, "machine", "derived", "naive", "b.py_1.npy")
	if err := writeArray(bad, &Array{Shape: []int{5, 5}, Data: make([]float64, 25)}); err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), cfg, Options{})
	if err == nil || !strings.Contains(err.Error(), "b.py_1.npy") || !strings.Contains(err.Error(), "h3.npy") ||
		!strings.Contains(err.Error(), "equal shapes expected") || !strings.Contains(err.Error(), `comparison "top3"`) {
		t.Fatalf("shape mismatch: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "out"))
	if len(entries) != 0 {
		t.Fatalf("outputs left after the error: %v", entries)
	}
}

// The rows are the same, in the same order, whatever the number of workers.
func TestWorkersDoNotChangeOutputs(t *testing.T) {
	fixed := func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	var outs [2]string
	for k, w := range []int{1, 3} {
		dir, cfg := setup(t, false)
		if _, err := Run(context.Background(), cfg, Options{Now: fixed, Workers: w}); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"plain_m", "top3_followup", "top3_human"} {
			b, err := os.ReadFile(filepath.Join(dir, "out", n+".csv"))
			if err != nil {
				t.Fatal(err)
			}
			outs[k] += strings.ReplaceAll(string(b), dir, "DIR")
		}
	}
	if outs[0] != outs[1] {
		t.Fatal("outputs differ between 1 and 3 workers")
	}
}
