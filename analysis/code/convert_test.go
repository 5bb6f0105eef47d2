package code

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

const tol = 1e-6

func closeSlices(t *testing.T, name string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values %v, want %d %v", name, len(got), got, len(want), want)
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > tol {
			t.Fatalf("%s: [%d] = %g, want %g (got %v)", name, i, got[i], want[i], got)
		}
	}
}

// Oracle §7.1 12 (from followup-attention's own tests).
func TestMapToCharLevelOracle(t *testing.T) {
	text := "def sum(a, b):\n    c ="
	bpe := []string{"def", "Ġsum", "(", "a", ",", "Ġb", "):", "Ċ", "Ġ", "Ġ", "Ġ", "Ġc", "Ġ="}
	bpeW := []float64{3, 3, 1, 1, 1, 2, 2, 1, 1, 1, 1, 2, 2}
	lex := []string{"def", "sum", "(", "a", ",", "b", ")", ":", "c", "="}
	lexW := []float64{3, 3, 1, 1, 1, 1, 1, 1, 1, 1}
	tests := []struct {
		name    string
		tokens  []string
		weights []float64
		text    string
		dist    Distribution
		want    []float64
	}{
		{"bpe replication", bpe, bpeW, text, Replication,
			[]float64{3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1, 2, 2, 2, 2}},
		{"bpe equal_share", bpe, bpeW, text, EqualShare,
			[]float64{1, 1, 1, .75, .75, .75, .75, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
		{"lexer replication", lex, lexW, text, Replication,
			[]float64{3, 3, 3, 0, 3, 3, 3, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 1}},
		{"gap", []string{"A", "!"}, []float64{2, 4}, "A B!", Replication, []float64{2, 0, 0, 4}},
		// The original raises an index error here; the intended result pads with 0.
		{"tokens run out", []string{"ab"}, []float64{1}, "abcd", Replication, []float64{1, 1, 0, 0}},
		{"code points not bytes", []string{"é", "東京"}, []float64{1, 4}, "é東京", EqualShare, []float64{1, 2, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MapToCharLevel(tt.tokens, tt.weights, tt.text, tt.dist, ByteLevelChars())
			if err != nil {
				t.Fatal(err)
			}
			closeSlices(t, tt.name, got, tt.want)
		})
	}
	if _, err := MapToCharLevel([]string{"a"}, nil, "a", Replication, nil); err == nil {
		t.Error("mismatched tokens and weights: no error")
	}
}

func TestTokenizeCharLevelOracle(t *testing.T) {
	got := TokenizeCharLevel("a\nb")
	want := []CharRecord{{T: "a", I: 0, L: 1, C: 0}, {T: "\n", I: 1, L: 1, C: 1}, {T: "b", I: 2, L: 2, C: 0}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestTokensWithColAndLine(t *testing.T) {
	text := "def f(a):\n    return a\n"
	tokens := []string{"def", " f", "(", "a", "):", "\n", "   ", " return", " a", "\n"}
	got, err := TokensWithColAndLine(text, tokens)
	if err != nil {
		t.Fatal(err)
	}
	want := []TokenPos{
		{S: 0, I: 0, C: 0, L: 0, T: "def"}, {S: 3, I: 1, C: 3, L: 0, T: " f"},
		{S: 5, I: 2, C: 5, L: 0, T: "("}, {S: 6, I: 3, C: 6, L: 0, T: "a"},
		{S: 7, I: 4, C: 7, L: 0, T: "):"}, {S: 9, I: 5, C: 9, L: 0, T: "\n"},
		{S: 10, I: 6, C: 0, L: 1, T: "   "}, {S: 13, I: 7, C: 3, L: 1, T: " return"},
		{S: 20, I: 8, C: 10, L: 1, T: " a"}, {S: 22, I: 9, C: 12, L: 1, T: "\n"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// A token with text after its newline sets the column to that text's length.
	got, err = TokensWithColAndLine("a\n\nbc d", []string{"a", "\n\nbc", " d"})
	if err != nil {
		t.Fatal(err)
	}
	if got[2].L != 2 || got[2].C != 2 {
		t.Errorf("after a token with two newlines: line %d col %d, want 2 2", got[2].L, got[2].C)
	}
	if _, err := TokensWithColAndLine("abc", []string{"a", "c"}); err == nil {
		t.Error("tokens that do not follow the text: no error")
	}
}

// Oracle §7.1 13.
func TestConvertWeightsOracle(t *testing.T) {
	got, err := ConvertWeights("ab de", []string{"ab de"}, []float64{5}, []string{"ab", " ", "de"})
	if err != nil {
		t.Fatal(err)
	}
	closeSlices(t, "convert", got, []float64{2, 1, 2})
	if _, err := ConvertWeights("ab de", []string{"ab de"}, []float64{5}, []string{"ab"}); err == nil {
		t.Error("target tokens covering less text: no error")
	}
}

// Property: the total weight is preserved between any two tokenizations of a text.
func TestConvertWeightsPreservesTotal(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	split := func(s []rune) []string {
		var out []string
		for len(s) > 0 {
			n := 1 + r.IntN(min(4, len(s)))
			out = append(out, string(s[:n]))
			s = s[n:]
		}
		return out
	}
	for trial := 0; trial < 200; trial++ {
		text := []rune(strings.Repeat("x=1\n é", 1+r.IntN(5)))
		src, dst := split(text), split(text)
		w := make([]float64, len(src))
		var total float64
		for i := range w {
			w[i] = r.Float64()
			total += w[i]
		}
		got, err := ConvertWeights(string(text), src, w, dst)
		if err != nil {
			t.Fatal(err)
		}
		var s float64
		for _, x := range got {
			s += x
		}
		if math.Abs(s-total) > 1e-9 {
			t.Fatalf("total %g became %g", total, s)
		}
	}
}

// Oracle §7.1 14.
func TestAggregateToLinesOracle(t *testing.T) {
	m := [][]float64{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 11}}
	got, err := AggregateToLines(m, 1, []int{0, 0, 1, 1}, Sum)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]float64{{1, 5}, {9, 13}, {17, 21}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	got, err = AggregateToLines(m, 0, []int{3, 1, 3}, Max)
	if err != nil {
		t.Fatal(err)
	}
	want = [][]float64{{4, 5, 6, 7}, {8, 9, 10, 11}} // line 1 first (sorted), then line 3
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("dim 0 max: got %v, want %v", got, want)
	}
	for _, bad := range []struct {
		dim   int
		lines []int
	}{{1, []int{0, 1}}, {2, []int{0, 0, 1, 1}}} {
		if _, err := AggregateToLines(m, bad.dim, bad.lines, Sum); err == nil {
			t.Errorf("dim %d lines %v: no error", bad.dim, bad.lines)
		}
	}
}

// Oracle §7.1 15: convert_to_token_to_lines then keep_only_lines_seen_by_model.
func TestTokensToLinesOracle(t *testing.T) {
	text := "def f(a):\n    return a\n"
	tokens := []string{"def", " f", "(", "a", "):", "\n", "   ", " return", " a", "\n"}
	h := make([][]float64, 10)
	m := make([][]float64, 10)
	for i := range h {
		h[i] = make([]float64, 10)
		m[i] = make([]float64, 10)
		for j := range h[i] {
			h[i][j] = float64(10*i + j)
			m[i][j] = 2 * h[i][j]
		}
	}
	hl, err := TokensToLines(h, text, tokens)
	if err != nil {
		t.Fatal(err)
	}
	if len(hl) != 10 || len(hl[0]) != 2 {
		t.Fatalf("shape %dx%d, want 10x2", len(hl), len(hl[0]))
	}
	for i, want := range map[int][]float64{0: {15, 30}, 1: {75, 70}, 2: {135, 110}, 9: {555, 390}} {
		closeSlices(t, "human row", hl[i], want)
	}
	ml, err := TokensToLines(m, text, tokens)
	if err != nil {
		t.Fatal(err)
	}
	closeSlices(t, "machine row 9", ml[9], []float64{1110, 780})

	orig, err := KeepOnlyLinesSeenByModel(hl, 10, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(orig) != 10 || len(orig[0]) != 1 {
		t.Errorf("original behaviour: shape %dx%d, want 10x1 (last line dropped)", len(orig), len(orig[0]))
	}
	fixed, err := KeepOnlyLinesSeenByModel(hl, 10, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(fixed) != 10 || len(fixed[0]) != 2 {
		t.Errorf("intended behaviour: shape %dx%d, want 10x2", len(fixed), len(fixed[0]))
	}
}

func TestCharWeightsFromOffsets(t *testing.T) {
	// "[CLS] def f [SEP]" style: special tokens have empty spans.
	got, err := CharWeightsFromOffsets([][2]int{{0, 0}, {0, 3}, {4, 5}, {0, 0}}, []float64{9, 3, 1, 9}, 5, EqualShare)
	if err != nil {
		t.Fatal(err)
	}
	closeSlices(t, "offsets", got, []float64{1, 1, 1, 0, 1})
	if _, err := CharWeightsFromOffsets([][2]int{{0, 6}}, []float64{1}, 5, Replication); err == nil {
		t.Error("span past the text: no error")
	}
}

func TestLinesFromOffsetsAgreesWithTokenPositions(t *testing.T) {
	text := "def f(a):\n    return a\n"
	tokens := []string{"def", " f", "(", "a", "):", "\n", "   ", " return", " a", "\n"}
	pos, err := TokensWithColAndLine(text, tokens)
	if err != nil {
		t.Fatal(err)
	}
	offsets := make([][2]int, len(pos))
	for i, p := range pos {
		offsets[i] = [2]int{p.S, p.S + len([]rune(p.T))}
	}
	got, err := LinesFromOffsets(text, offsets)
	if err != nil {
		t.Fatal(err)
	}
	want := []int{0, 0, 0, 0, 0, 0, 1, 1, 1, 1}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("lines %v, want %v", got, want)
	}
	if _, err := LinesFromOffsets("ab", [][2]int{{1, 3}}); err == nil {
		t.Error("span past the text: no error")
	}
}
