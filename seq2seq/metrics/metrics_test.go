package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/seq2seq/corpus"
)

func f(s string) []string { return strings.Fields(s) }

// Oracle 36 of the Text_to_Python test oracles.
func TestBLEUOracle(t *testing.T) {
	for _, c := range []struct {
		ref, hyp string
		want     float64
	}{
		{"def f ( x ) : return x", "def f ( y ) : return x", 0.5},
		{"def f ( x ) : return x", "def f ( x )", 0.548812},
		{"a b c d", "a b d c", 0.485492},
		{"a b c d", "a b c", 0},
		{"a b c d", "", 0},
		{"a b c d", "x y z w", 0},
	} {
		if got := BLEU(f(c.ref), f(c.hyp)); math.Abs(got-c.want) > 1e-6 {
			t.Errorf("BLEU(%q, %q) = %.6f, want %.6f", c.ref, c.hyp, got, c.want)
		}
	}
}

// TestCorpusBLEU checks sacreBLEU's arithmetic on hand-computed cases.
func TestCorpusBLEU(t *testing.T) {
	// Identical corpora score 100.
	refs := [][]string{f("def f ( x ) : return x"), f("a b c d e")}
	if got := CorpusBLEU(refs, refs); math.Abs(got-100) > 1e-9 {
		t.Fatalf("identical corpus: %v", got)
	}
	// ref a b c d, hyp a b d c: p1 = 4/4, p2 = 1/3, p3: 0 of 2 → 100/(2·2), p4: 0 of 1 → 100/(4·1).
	want := math.Exp((math.Log(100) + math.Log(100.0/3) + math.Log(25) + math.Log(25)) / 4)
	if got := CorpusBLEU([][]string{f("a b c d")}, [][]string{f("a b d c")}); math.Abs(got-want) > 1e-9 {
		t.Fatalf("exp smoothing: %v, want %v", got, want)
	}
	// Sums over the corpus, brevity penalty on total lengths (h = 6, r = 8).
	got := CorpusBLEU([][]string{f("a b c d"), f("e f g h")}, [][]string{f("a b c d"), f("e f")})
	p := []float64{100, 100 * 4.0 / 4, 100 * 2.0 / 2, 100 * 1.0 / 1}
	want = math.Exp(1-8.0/6) * math.Exp((math.Log(p[0])+math.Log(p[1])+math.Log(p[2])+math.Log(p[3]))/4)
	if math.Abs(got-want) > 1e-9 {
		t.Fatalf("corpus sums: %v, want %v", got, want)
	}
	if got := CorpusBLEU([][]string{f("a b c d")}, [][]string{f("a b")}); got > 1e-6 {
		t.Fatalf("no 3-grams in the corpus: %v, want ≈ 0", got)
	}
}

// Oracle 37.
func TestSyntaxAndErrorsOracle(t *testing.T) {
	if !ValidPython(f("def f ( x ) : NEWLINE INDENT return x")) {
		t.Error("def f ( x ) : NEWLINE INDENT return x is valid Python")
	}
	if ValidPython(f("def f (")) {
		t.Error("def f ( is not valid Python")
	}
	got := AnalyzeErrors([][]string{f("a + b")}, [][]string{f("a - b c")})
	want := ErrorCounts{Total: 1, IncorrectOperators: 1, ExtraTokens: 1, SyntaxErrors: 1}
	if got != want {
		t.Fatalf("analyze_errors = %+v, want %+v", got, want)
	}
	got = AnalyzeErrors([][]string{f("if x : NEWLINE INDENT y"), f("a")}, [][]string{f("if x : NEWLINE y"), f("a")})
	// "if x : \n y" is valid Python: the join puts one space after the line break.
	if got != (ErrorCounts{Total: 1, MissingIndentation: 1, MissingTokens: 1}) {
		t.Fatalf("analyze_errors = %+v", got)
	}
}

func TestAccuracyAndLength(t *testing.T) {
	if !ExactMatch(f("a b"), f("a b")) || ExactMatch(f("a b"), f("a")) {
		t.Fatal("exact match")
	}
	acc := TokenAccuracy([][]string{f("a b c d"), f("x"), f("y")}, [][]string{f("a z c"), f("x"), nil})
	if math.Abs(acc-3.0/5) > 1e-12 {
		t.Fatalf("token accuracy %v, want 0.6", acc)
	}
	bins := BLEUByLength([]int{3, 12, 9, 15}, []float64{0.2, 0.5, 0.4, 0.1})
	if len(bins) != 2 || bins[0] != (LengthBin{0, 2, 0.30000000000000004}) && math.Abs(bins[0].BLEU-0.3) > 1e-12 || bins[1].Start != 10 || math.Abs(bins[1].BLEU-0.3) > 1e-12 {
		t.Fatalf("bins %+v", bins)
	}
}

// TestValidPythonAgainstAST compares the tree-sitter check with Python's own
// ast.parse (/usr/bin/python3) on detokenised code: real functions tokenised and
// detokenised as the model's outputs are, their truncations and token drops, and
// hand-written cases. Every case must agree.
func TestValidPythonAgainstAST(t *testing.T) {
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("ast.parse oracle unavailable under CI: %v", err)
		}
		t.Skipf("ast.parse oracle unavailable: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(refdata.RepoRoot(), "testdata", "samples", "stack.py"))
	if err != nil {
		t.Fatal(err)
	}
	cases := [][]string{
		f("def f ( x ) : NEWLINE INDENT return x"), f("def f ("), f("x = [ 1 , 2"), f("return x"), nil,
		f("if a : NEWLINE INDENT b NEWLINE else : NEWLINE INDENT c"), f("def f ( ) : NEWLINE return 1"),
		f("x = 1 NEWLINE INDENT y = 2"), f("class A : NEWLINE INDENT pass"), f("a = b ="), f("lambda x : x + 1"),
		f("for i in range ( 10 ) : NEWLINE INDENT print ( i )"), f("x = { 'a' : 1 }"), f("try : NEWLINE INDENT x NEWLINE except : NEWLINE INDENT y"),
	}
	rng := rand.New(rand.NewPCG(4, 4))
	for _, chunk := range strings.Split(string(src), "\n\n") {
		toks := corpus.Tokenize(strings.ReplaceAll(chunk, "    ", "\t"))
		if len(toks) == 0 {
			continue
		}
		cases = append(cases, toks, toks[:rng.IntN(len(toks))])
		drop := rng.IntN(len(toks))
		cases = append(cases, append(append([]string{}, toks[:drop]...), toks[drop+1:]...))
	}
	texts := make([]string, len(cases))
	for i, c := range cases {
		texts[i] = Detokenize(c)
	}
	in, _ := json.Marshal(texts)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-c", `import ast, json, sys
out = []
for s in json.load(sys.stdin):
    try:
        ast.parse(s)
        out.append(True)
    except SyntaxError:
        out.append(False)
json.dump(out, sys.stdout)`)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var want []bool
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	valid := 0
	for i, c := range cases {
		if got := ValidPython(c); got != want[i] {
			t.Errorf("case %d %q: tree-sitter %v, ast.parse %v", i, texts[i], got, want[i])
		}
		if want[i] {
			valid++
		}
	}
	if valid < 5 || valid > len(cases)-5 {
		t.Fatalf("%d of %d cases valid: the comparison needs both kinds", valid, len(cases))
	}
}
