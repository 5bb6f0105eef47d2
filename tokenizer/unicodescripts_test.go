package tokenizer

import (
	"reflect"
	"testing"
)

// TestUnicodeScriptsSplit: the cases of HF's own unit tests
// (pre_tokenizers/unicode_scripts/pre_tokenizer.rs) and the edge cases of the rule.
func TestUnicodeScriptsSplit(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"どこで生れ。Yes", []string{"どこで生れ", "。", "Yes"}},
		{"Apples are りんご 林檎", []string{"Apples are ", "りんご 林檎"}},
		{"ラーメン", []string{"ラーメン"}},         // U+30FC counts as Han, like the kana
		{"  lead  x", []string{"lead  x"}}, // leading spaces are dropped
		{"   ", []string{}},
		{"abc123", []string{"abc", "123"}},
		{"e\u0301", []string{"e", "\u0301"}}, // Inherited is a script of its own
		{"a🥺b", []string{"a🥺b"}},             // U+1F97A (Unicode 11) has no script in HF's table
		{"Ωmega", []string{"Ω", "mega"}},
	}
	for _, tc := range tests {
		var got []string
		for _, p := range (unicodeScriptsPreTokenizer{}).split(newNstr(tc.in, 0, len(tc.in))) {
			got = append(got, p.s)
		}
		if got == nil {
			got = []string{}
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q -> %q, want %q", tc.in, got, tc.want)
		}
	}
}
