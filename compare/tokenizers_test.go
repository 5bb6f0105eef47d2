package compare

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/store"
)

// Two models with different tokenizers on the same prompt: token weights that come
// from the same character weights (tokens not crossing a line end) agree once both
// are taken to lines; at character level (replication) they differ.
func TestTwoTokenizersThroughLinesAndCharacters(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(9, 9))
	text := "def f(a, b):\n    return a + b\n\nprint(f(1, 2))\n"
	chars := []rune(text)
	cw := make([]float64, len(chars))
	for i := range cw {
		cw[i] = rng.Float64()
	}
	write := func(name string, width int) {
		r, err := store.Create(filepath.Join(dir, name), store.Meta{Kind: "import"})
		if err != nil {
			t.Fatal(err)
		}
		var toks []string
		var offs [][2]int
		var w []float64
		for s := 0; s < len(chars); {
			e := min(s+width, len(chars))
			for c := s; c < e; c++ { // tokens end at a newline, as BPE's often do
				if chars[c] == '\n' {
					e = c + 1
					break
				}
			}
			toks = append(toks, string(chars[s:e]))
			offs = append(offs, [2]int{s, e})
			var sum float64
			for _, v := range cw[s:e] {
				sum += v
			}
			w = append(w, sum)
			s = e
		}
		s := &store.Sample{ID: "f.py", Text: text, PromptText: text, Tokens: toks, Offsets: offs, PromptLen: len(toks), Source: "f.py"}
		p := r.DerivedPath("weights", s.ID)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := checkpoint.WriteNpyFile(p, []int{len(w)}, w); err != nil {
			t.Fatal(err)
		}
		if err := r.WriteSample(s); err != nil {
			t.Fatal(err)
		}
	}
	write("model_a", 2)
	write("model_b", 3)
	cfg := `human_att_folder: model_a
machine_att_folder: model_b
output_comparison_folder: out
comparisons:
  - name: lines
    comparison_function: mse
    transformations: [{name: both_to_lines}]
    human: {subfolder: weights}
    human_pairs: false
    machine: {subfolder: weights}
  - name: chars
    comparison_function: spearman_rank
    transformations: [{name: both_to_char_level, kwargs: {mapping_from_token_to_char: replication}}]
    human: {subfolder: weights}
    human_pairs: false
    machine: {subfolder: weights}
`
	path := filepath.Join(dir, "cmp.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Run(context.Background(), c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Pairs != 2 {
		t.Fatalf("%+v", sum)
	}
	_, rows := readCSV(t, filepath.Join(dir, "out", "lines.csv"))
	if v, _ := strconv.ParseFloat(rows[0]["msed"], 64); len(rows) != 1 || v > 1e-28 {
		t.Fatalf("line MSE between tokenizers: %v", rows)
	}
	// Replication gives each character its token's total: the two tokenizations
	// differ at character level, and Spearman says by how much (not 1).
	_, rows = readCSV(t, filepath.Join(dir, "out", "chars.csv"))
	if v, _ := strconv.ParseFloat(rows[0]["correlation"], 64); !(v > 0 && v < 1) || math.IsNaN(v) {
		t.Fatalf("char-level Spearman between tokenizers: %v", rows)
	}
}

// both_to_lines on matrices keeps the total mass and puts a token that spans two
// lines on both, by its share of characters.
func TestBothToLinesMatrix(t *testing.T) {
	text := "ab\ncd\n"
	a := &Meta{Stem: "a", Text: text, Tokens: []string{"ab", "\nc", "d\n"}, Offsets: [][2]int{{0, 2}, {2, 4}, {4, 6}}}
	m := Matrix([][]float64{{1, 0, 0}, {2, 4, 0}, {0, 0, 8}})
	p := &Pair{Human: m.Clone(), Machine: m.Clone(), HumanMeta: a, MachineMeta: a}
	apply(t, p, "both_to_lines")
	// Lines: 0 = "ab\n", 1 = "cd\n", 2 = "" (after the last newline). Token 1 "\nc"
	// is half on line 0 (its newline ends line 0), half on line 1.
	var total float64
	for _, v := range p.Human.Data {
		total += v
	}
	if math.Abs(total-15) > 1e-12 || p.Human.Shape[0] != 3 {
		t.Fatalf("total %v shape %v", total, p.Human.Shape)
	}
	// Row 0 (line 0) receives token 0 (all of it) and half of token 1:
	// M[0][0]·1·1 + M[1][0]·½·1 + M[1][1]·½·½ = 1 + 1 + 1 = 3.
	if got := p.Human.Row(0)[0]; math.Abs(got-3) > 1e-12 {
		t.Fatalf("line 0 → line 0: %v, want 3 (%v)", got, p.Human.Rows())
	}
}
