package code

import (
	"context"
	"math"
	"testing"
)

func lexemeTexts(t *testing.T, lang, src string) ([]Lexeme, map[string]Category) {
	t.Helper()
	lx, err := Lex(context.Background(), lang, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	// Lexemes cover the source exactly, in order.
	pos := 0
	for _, l := range lx {
		if l.Start != pos || l.End <= l.Start {
			t.Fatalf("%s: lexeme %+v does not continue at byte %d", lang, l, pos)
		}
		pos = l.End
	}
	if pos != len(src) {
		t.Fatalf("%s: lexemes end at byte %d of %d", lang, pos, len(src))
	}
	m := map[string]Category{}
	for _, l := range lx {
		m[src[l.Start:l.End]] = l.Category
	}
	return lx, m
}

func TestLexCategories(t *testing.T) {
	tests := []struct {
		lang string
		src  string
		want map[string]Category
	}{
		{"python", "import os\n# note\ndef f(a, b=None):\n    return a ** 2 >= b and \"s\"\n",
			map[string]Category{"import": Keyword, "os": Identifier, "# note": Comment, "def": Keyword,
				"f": Identifier, "(": Punctuation, ",": Punctuation, "=": Operator, "None": Literal,
				":": Punctuation, "return": Keyword, "**": Operator, "2": Literal, ">=": Operator,
				"and": Keyword, "\"s\"": Literal, "\n    ": Whitespace}},
		{"go", "package m\n\n// c\nfunc F(x int) string { return \"a\" + x }\n",
			map[string]Category{"package": Keyword, "m": Identifier, "// c": Comment, "func": Keyword,
				"F": Identifier, "int": Identifier, "{": Punctuation, "\"a\"": Literal, "+": Operator}},
		{"cpp", "int main() { return 0; } // end\n",
			map[string]Category{"int": Keyword, "main": Identifier, "return": Keyword, "0": Literal,
				";": Punctuation, "// end": Comment}},
		{"csharp", "class A { int x = 1; }",
			map[string]Category{"class": Keyword, "A": Identifier, "int": Keyword, "x": Identifier, "=": Operator, "1": Literal}},
		{"java", "class A { String s = \"q\"; }",
			map[string]Category{"class": Keyword, "A": Identifier, "String": Identifier, "\"q\"": Literal}},
		{"js", "const f = (a) => a === null; /* c */",
			map[string]Category{"const": Keyword, "f": Identifier, "=>": Punctuation, "===": Operator,
				"null": Literal, "/* c */": Comment}},
	}
	for _, tt := range tests {
		t.Run(tt.lang, func(t *testing.T) {
			_, got := lexemeTexts(t, tt.lang, tt.src)
			for text, want := range tt.want {
				if got[text] != want {
					t.Errorf("%q: category %q, want %q", text, got[text], want)
				}
			}
		})
	}
}

func TestLexErrorsAndUnknownLanguage(t *testing.T) {
	if _, err := Lex(context.Background(), "cobol", []byte("x")); err == nil {
		t.Error("unknown language: no error")
	}
	// Broken code still covers every byte (syntax errors become Other or their leaves).
	lexemeTexts(t, "python", "def (:\n  ) é ]]")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Lex(ctx, "python", []byte("x = 1\n")); err == nil {
		t.Error("cancelled context: no error")
	}
}

func TestAttentionPerCategory(t *testing.T) {
	src := "x = é1\n" // "é" is two bytes: character weights are per code point
	lx, _ := lexemeTexts(t, "python", src)
	// one weight per character: x, ' ', =, ' ', é, 1, \n
	w := []float64{4, 0, 2, 0, 1, 1, 0}
	stats, err := AttentionPerCategory(lx, []byte(src), w)
	if err != nil {
		t.Fatal(err)
	}
	byCat := map[Category]CategoryStat{}
	var share float64
	for _, s := range stats {
		byCat[s.Category] = s
		share += s.Share
	}
	if math.Abs(share-1) > 1e-12 {
		t.Errorf("shares sum to %g", share)
	}
	if s := byCat[Operator]; s.Total != 2 || s.Count != 1 {
		t.Errorf("operator %+v, want total 2 count 1", s)
	}
	// "é1" is not valid Python: whatever it lexes to, the total must be kept.
	var total float64
	for _, s := range stats {
		total += s.Total
	}
	if total != 8 {
		t.Errorf("total %g, want 8", total)
	}
	if s := byCat[Identifier]; s.Total < 4 {
		t.Errorf("identifier %+v, want at least x's 4", s)
	}
	if _, err := AttentionPerCategory(lx, []byte(src), w[:3]); err == nil {
		t.Error("wrong number of character weights: no error")
	}
}

// FuzzLex checks that any input, valid code or not, is cut into lexemes that cover
// every byte in order.
func FuzzLex(f *testing.F) {
	for _, s := range []string{"", "def f():\n\treturn 1\n", "x = \"unterminated", "\xff\xfe", "if (a) { b; }"} {
		f.Add("python", s)
	}
	f.Add("cpp", "#include <x>\nint a = 'c';")
	f.Fuzz(func(t *testing.T, lang, src string) {
		lx, err := Lex(context.Background(), lang, []byte(src))
		if err != nil {
			if _, lerr := CanonicalLanguage(lang); lerr == nil {
				t.Fatalf("known language %q: %v", lang, err)
			}
			return
		}
		pos := 0
		for _, l := range lx {
			if l.Start != pos || l.End <= l.Start {
				t.Fatalf("lexeme %+v does not continue at byte %d", l, pos)
			}
			pos = l.End
		}
		if pos != len(src) {
			t.Fatalf("lexemes end at byte %d of %d", pos, len(src))
		}
	})
}

// BenchmarkLexAndCategories: a 1,000-line Python file lexed with tree-sitter and its
// character weights summed per category.
func BenchmarkLexAndCategories(b *testing.B) {
	var sb []byte
	for i := 0; i < 250; i++ {
		sb = append(sb, "def f(a, b=None):\n    # add\n    return a + b * 2 if b else \"x\"\n\n"...)
	}
	w := make([]float64, len([]rune(string(sb))))
	for i := range w {
		w[i] = 1
	}
	b.SetBytes(int64(len(sb)))
	for b.Loop() {
		lx, err := Lex(context.Background(), "python", sb)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := AttentionPerCategory(lx, sb, w); err != nil {
			b.Fatal(err)
		}
	}
}
