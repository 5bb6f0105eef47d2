package code

import (
	"context"
	"testing"
)

func TestSyntaxErrors(t *testing.T) {
	cases := []struct {
		lang, src string
		valid     bool
	}{
		{"python", "def f(a):\n    return a + 1\n", true},
		{"python", "def f(a)\n    return a +\n", false},
		{"cpp", "int main() { return 0; }\n", true},
		{"cpp", "int main() { return 0;\n", false},
		{"csharp", "class A { void F() { int x = 1; } }\n", true},
		{"csharp", "class A { void F() { int x = ; } }\n", false},
		{"java", "class A { int f() { return 1; } }\n", true},
		{"java", "class A { int f() { return 1 } }\n", false},
		{"javascript", "function f(a) { return a * 2; }\n", true},
		{"javascript", "function f(a) { return a * ; }\n", false},
		{"go", "package p\n\nfunc F() int { return 1 }\n", true},
		{"go", "package p\n\nfunc F() int { return 1 \n", false},
	}
	for _, c := range cases {
		errs, err := SyntaxErrors(context.Background(), c.lang, []byte(c.src), 0)
		if err != nil {
			t.Fatal(err)
		}
		if (len(errs) == 0) != c.valid {
			t.Errorf("%s %q: errors %v, valid want %v", c.lang, c.src, errs, c.valid)
		}
		for _, e := range errs {
			if e.Line < 1 || e.Column < 1 {
				t.Errorf("%s: error position %v", c.lang, e)
			}
		}
	}
	errs, _ := SyntaxErrors(context.Background(), "python", []byte("x = 1\ny = (\n"), 0)
	if len(errs) == 0 || errs[0].Line != 2 {
		t.Errorf("unclosed bracket on line 2: %v", errs)
	}
	if _, err := SyntaxErrors(context.Background(), "cobol", nil, 0); err == nil {
		t.Error("unknown language accepted")
	}
}
