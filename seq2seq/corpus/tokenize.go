// Package corpus is the data side of the docstring-to-code seq2seq models
// (Trina-SE/Text_to_Python, src/data.py and config.py): the code tokenizer, the
// source and target vocabularies, readers for CodeSearchNet-style files (JSON lines
// or Parquet), a corpus builder that extracts (docstring, function) pairs from Python
// sources with tree-sitter, and the sequential train/validation/test split.
package corpus

import (
	"strings"
	"unicode"
)

// Special token ids shared by both vocabularies (Text_to_Python's Vocabulary).
const (
	PAD = 0
	SOS = 1
	EOS = 2
	UNK = 3
)

// Specials are the special token strings, in id order.
var Specials = [4]string{"<PAD>", "<SOS>", "<EOS>", "<UNK>"}

// Marker tokens the tokenizer substitutes for line breaks and tabs.
const (
	Newline = "NEWLINE"
	Indent  = "INDENT"
)

// Tokenize splits text as Text_to_Python's tokenize_code: strip surrounding white
// space, replace "\n" by " NEWLINE " and "\t" by " INDENT ", then return the matches
// of the regular expression [a-zA-Z_][a-zA-Z0-9_]*|[0-9]+|\S in order: ASCII
// identifiers, runs of ASCII digits, and any other single non-space character.
// White space is Python's (str.isspace: Unicode White_Space plus the separators
// U+001C–U+001F), so the tokens equal those of the Python original.
//
// Example: "def add(a, b):\n\treturn a+b  # 2nd" →
// def add ( a , b ) : NEWLINE INDENT return a + b # 2 nd.
func Tokenize(text string) []string {
	text = strings.TrimFunc(text, isPySpace)
	var out []string
	rs := []rune(text)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case r == '\n':
			out = append(out, Newline)
			i++
		case r == '\t':
			out = append(out, Indent)
			i++
		case isPySpace(r):
			i++
		case isIdentStart(r):
			j := i + 1
			for j < len(rs) && (isIdentStart(rs[j]) || isDigit(rs[j])) {
				j++
			}
			out = append(out, string(rs[i:j]))
			i = j
		case isDigit(r):
			j := i + 1
			for j < len(rs) && isDigit(rs[j]) {
				j++
			}
			out = append(out, string(rs[i:j]))
			i = j
		default:
			out = append(out, string(r))
			i++
		}
	}
	return out
}

func isIdentStart(r rune) bool { return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') }
func isDigit(r rune) bool      { return r >= '0' && r <= '9' }

// isPySpace is Python's str.isspace for one character.
func isPySpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }
