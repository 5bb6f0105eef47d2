package tokenizer

import (
	"reflect"
	"testing"

	"github.com/dlclark/regexp2"

	"github.com/attnscope/attnscope/tokenizer/internal/corpus"
)

// TestScannersMatchRegex: the hand-written scanners of the GPT-2 and Llama-3 patterns
// find the same matches as a backtracking engine running the patterns themselves.
func TestScannersMatchRegex(t *testing.T) {
	texts := corpus.Strings(99, 3000, []string{"def f(x):\n\treturn x  # ok", "    if a != b:\r\n        pass", "x = 'it''s'"})
	texts = append(texts, "", " ", "  a", "a  ", "\t\tb", "'S 'LL 'ſ", "a\r\n\r\n  b", "1234 x12", " ( [ {", "\u00a0\u3000x")
	for _, tc := range []struct {
		name string
		pat  string
		scan matcher
	}{
		{"gpt2", gpt2Pattern, gpt2Scanner{}},
		{"llama3", llama3Pattern, llama3Scanner{}},
	} {
		re := re2Matcher{regexp2.MustCompile(tc.pat, regexp2.Unicode)}
		for _, s := range texts {
			got, want := tc.scan.findAll(s), re.findAll(s)
			if len(got) == 0 && len(want) == 0 {
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s %q:\n got %v\nwant %v", tc.name, s, got, want)
			}
		}
	}
}

func TestLossyUTF8(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"abc", "abc"},
		{"a\xffb", "a\uFFFDb"},
		{"\xe2\x82", "\uFFFD"},                 // truncated 3-byte sequence: one replacement
		{"\xe2\x82x", "\uFFFDx"},               // truncated, then ASCII
		{"\xf0\x9f\x99", "\uFFFD"},             // truncated 4-byte sequence
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"}, // surrogate: each byte replaced
		{"\xc0\xaf", "\uFFFD\uFFFD"},           // overlong
	} {
		if got := lossyUTF8([]byte(tc.in)); got != tc.want {
			t.Errorf("lossyUTF8(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestOnigToNet(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`\w+`, `[` + onigWord + `]+`},
		{`[^\w\s]+`, `[^` + onigWord + `\s]+`},
		{`\W`, `[^` + onigWord + `]`},
		{`[]\w]`, `[]` + onigWord + `]`},
		{`\\w`, `\\w`},
		{`\d+|\s`, `\d+|\s`},
	} {
		if got := onigToNet(tc.in); got != tc.want {
			t.Errorf("onigToNet(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
