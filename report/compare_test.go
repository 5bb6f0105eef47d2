package report

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/compare"
	"github.com/attnscope/attnscope/store"
)

// comparisonFixture writes a human run (4 sessions on 2 files, char-level weights
// and token follow-up matrices), a model run (2 tries per file: weights, follow-up
// and a uniform baseline) and runs attnscope compare over them.
func comparisonFixture(t *testing.T) string {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(4, 4))
	text := "def f(a):\n    return a + 1\n# Question: what?\n# Answer"
	toks := []string{"def", "Ġf", "(a", "):", "Ċ", "ĠĠĠ", "Ġreturn", "Ġa", "Ġ+", "Ġ1", "Ċ", "#", "ĠQuestion", ":", "Ġwhat", "?", "Ċ", "#", "ĠAnswer"}
	n := len(toks)
	mk := func(name string, ids []string, users bool, arrays func() map[string][]float64) {
		r, err := store.Create(filepath.Join(dir, name), store.Meta{Kind: "import"})
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range ids {
			src := []string{"f.py", "g.py"}[i%2]
			s := &store.Sample{ID: id, Text: text, PromptText: text, Tokens: toks, PromptLen: n, Source: src}
			if users {
				s.Extra = map[string]any{"user_name": fmt.Sprintf("u%d", i), "task_number": "1"}
			}
			for pass, v := range arrays() {
				shape := []int{len(v)}
				if len(v) == n*n {
					shape = []int{n, n}
				}
				p := r.DerivedPath(pass, id)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := checkpoint.WriteNpyFile(p, shape, v); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.WriteSample(s); err != nil {
				t.Fatal(err)
			}
		}
	}
	rnd := func(k int, tril bool) []float64 {
		v := make([]float64, k)
		for i := range v {
			if !tril || i%n <= i/n {
				v[i] = rng.Float64()
			}
		}
		return v
	}
	mk("human", []string{"s1", "s2", "s3", "s4"}, true, func() map[string][]float64 {
		return map[string][]float64{"char_weights": rnd(len([]rune(text)), false), "followup": rnd(n*n, true)}
	})
	mk("model", []string{"f.py_0", "g.py_0", "f.py_1", "g.py_1"}, false, func() map[string][]float64 {
		return map[string][]float64{"weights": rnd(n, false), "followup": rnd(n*n, true), "uniform": rnd(n*n, true)}
	})
	cfg := `human_att_folder: human
machine_att_folder: model
output_comparison_folder: comparisons
comparisons:
  - name: plain_weights
    comparison_function: spearman_rank
    transformations: [{name: convert_to_char_level, kwargs: {mapping_from_token_to_char: equal_share}}, {name: convert_vect_to_probabilities}]
    human: {subfolder: char_weights, suffix: _human}
    human_pairs: false
    machine: {subfolder: weights}
  - name: top3
    comparison_function: top_3_overlap
    comparison_output_subcolumns: [value, token_index]
    transformations: [{name: normalize_both_matrices_by_line}]
    human: {subfolder: followup, suffix: _human}
    machine: [{subfolder: followup, suffix: _followup}, {subfolder: uniform, suffix: _uniform}]
  - name: lines
    comparison_function: spearman_rank_by_line
    comparison_output_subcolumns: [corr, pval, token_index]
    human: {subfolder: followup, suffix: _human}
    machine: [{subfolder: followup, suffix: _followup}, {subfolder: uniform, suffix: _uniform}]
`
	path := filepath.Join(dir, "cmp.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := compare.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := compare.Run(context.Background(), c, compare.Options{}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestComparisonSection(t *testing.T) {
	dir := comparisonFixture(t)
	t.Chdir(dir) // the outputs name the run folders relative to the config
	sec, err := ComparisonSection(context.Background(), "comparisons", 60)
	if err != nil {
		t.Fatal(err)
	}
	if len(sec.Notes) != 0 {
		t.Fatalf("notes: %v", sec.Notes)
	}
	names := map[string]comparisonGroup{}
	for _, g := range sec.Groups {
		names[g.Name] = g
	}
	top := names["top3"]
	// Models: followup; baselines: uniform and the human pairs.
	if len(top.Estimates) != 3 || len(top.Contrasts) != 2 || top.Column != "top_3.value" {
		t.Fatalf("top3 group: %+v", top)
	}
	for _, c := range top.Contrasts {
		if c.Model != "top3_followup" || c.Sessions == 0 || !(c.PHolm >= c.P) {
			t.Fatalf("contrast %+v", c)
		}
	}
	var titles []string
	for _, f := range sec.Figures {
		if f.DataURI == "" {
			t.Errorf("figure %q: %s", f.Title, f.Note)
		}
		titles = append(titles, f.Title)
	}
	all := strings.Join(titles, "|")
	for _, want := range []string{"top3: distribution of top_3.value", "lines: line-wise Spearman", "Human session s1 and model sample f.py_0"} {
		if !strings.Contains(all, want) {
			t.Errorf("no figure %q among %v", want, titles)
		}
	}
	var b strings.Builder
	if err := comparisonTemplate.Execute(&b, sec); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "p (Holm)") || !strings.Contains(b.String(), "top3_uniform") {
		t.Fatal("section HTML lacks the contrast table")
	}
	if _, err := ComparisonSection(context.Background(), t.TempDir(), 60); err == nil {
		t.Fatal("an empty folder accepted")
	}
}

// attnscope report --comparisons: the section comes after the samples, before the end.
func TestWriteHTMLWithComparisons(t *testing.T) {
	dir := comparisonFixture(t)
	t.Chdir(dir)
	run := newMemRun(testCode, 2, 2, 8, 4)
	var b strings.Builder
	if err := WriteHTML(context.Background(), &b, run, HTMLOptions{DPI: 50, Comparisons: "comparisons"}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	i, j := strings.Index(page, `<h2 id="sample-0">`), strings.Index(page, `<h2 id="comparisons">`)
	if i < 0 || j < i || !strings.Contains(page[j:], "top3_uniform") || !strings.HasSuffix(strings.TrimSpace(page), "</html>") {
		t.Fatalf("comparisons section missing or misplaced (sample at %d, comparisons at %d)", i, j)
	}
	if err := WriteHTML(context.Background(), &strings.Builder{}, run, HTMLOptions{DPI: 50, Comparisons: t.TempDir()}); err == nil {
		t.Fatal("an empty comparisons folder accepted")
	}
}
