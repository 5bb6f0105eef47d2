package code

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	sitter "github.com/tree-sitter/go-tree-sitter"
	tscsharp "github.com/tree-sitter/tree-sitter-c-sharp/bindings/go"
	tscpp "github.com/tree-sitter/tree-sitter-cpp/bindings/go"
	tsgo "github.com/tree-sitter/tree-sitter-go/bindings/go"
	tsjava "github.com/tree-sitter/tree-sitter-java/bindings/go"
	tsjs "github.com/tree-sitter/tree-sitter-javascript/bindings/go"
	tspython "github.com/tree-sitter/tree-sitter-python/bindings/go"
)

// Category is the syntactic class of a piece of source code (spec §1.10 item 3).
type Category string

// The categories, in the order reports list them.
const (
	Identifier  Category = "identifier"
	Keyword     Category = "keyword"
	Operator    Category = "operator"
	Punctuation Category = "punctuation"
	Literal     Category = "literal"
	Comment     Category = "comment"
	Whitespace  Category = "whitespace"
	Other       Category = "other"
)

// Categories lists every Category in report order.
func Categories() []Category {
	return []Category{Identifier, Keyword, Operator, Punctuation, Literal, Comment, Whitespace, Other}
}

// grammars maps a language name to its tree-sitter grammar (pinned in go.mod).
var grammars = map[string]func() unsafe.Pointer{
	"python":     tspython.Language,
	"go":         tsgo.Language,
	"cpp":        tscpp.Language,
	"csharp":     tscsharp.Language,
	"java":       tsjava.Language,
	"javascript": tsjs.Language,
}

// languageAliases accepts the usual spellings and file extensions.
var languageAliases = map[string]string{
	"py": "python", "golang": "go", "c++": "cpp", "cc": "cpp", "cxx": "cpp", "hpp": "cpp",
	"c#": "csharp", "cs": "csharp", "js": "javascript", "mjs": "javascript",
}

// Languages returns the names of the languages Lex understands.
func Languages() []string {
	out := make([]string, 0, len(grammars))
	for k := range grammars {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CanonicalLanguage returns the canonical name of lang (e.g. "c++" → "cpp") or an error
// naming the known languages.
func CanonicalLanguage(lang string) (string, error) {
	l := strings.ToLower(strings.TrimPrefix(lang, "."))
	if a, ok := languageAliases[l]; ok {
		l = a
	}
	if _, ok := grammars[l]; !ok {
		return "", fmt.Errorf("unknown language %q (known: %s)", lang, strings.Join(Languages(), ", "))
	}
	return l, nil
}

// Lexeme is one piece of source code: bytes [Start, End) of the source, the
// tree-sitter node kind it came from ("" for text between nodes) and its Category.
type Lexeme struct {
	Start, End int
	Kind       string
	Category   Category
}

// Lex parses src with the tree-sitter grammar of lang and cuts it into lexemes that
// cover every byte of src, in order. Leaves are classified by kind: identifiers
// (kinds containing "identifier"), keywords (anonymous alphabetic kinds such as "def",
// plus primitive types and this/super), punctuation (brackets, ",", ";", ":", ".",
// "::", "->", "=>"), operators (other anonymous kinds), literals and comments (whole
// nodes, e.g. a string with its quotes), whitespace (text between nodes made only of
// white space); anything else, including syntax errors, is Other.
func Lex(ctx context.Context, lang string, src []byte) ([]Lexeme, error) {
	name, err := CanonicalLanguage(lang)
	if err != nil {
		return nil, err
	}
	p := sitter.NewParser()
	defer p.Close()
	if err := p.SetLanguage(sitter.NewLanguage(grammars[name]())); err != nil {
		return nil, fmt.Errorf("tree-sitter %s grammar: %w", name, err)
	}
	// Parsing runs at megabytes per second; a cancellation check on every parser
	// step (ParseOptions.ProgressCallback, a cgo callback) doubled its cost, so the
	// context is checked before and after instead.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tree := p.Parse(src, nil)
	if tree == nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("tree-sitter %s: parse failed", name)
	}
	defer tree.Close()

	var leaves []Lexeme
	var walk func(n *sitter.Node)
	walk = func(n *sitter.Node) {
		s, e := int(n.StartByte()), int(n.EndByte())
		if e <= s {
			return // zero-width: missing nodes, indent/dedent markers
		}
		kind := n.Kind()
		if c, whole := wholeNodeCategory(n, kind); whole {
			leaves = append(leaves, Lexeme{Start: s, End: e, Kind: kind, Category: c})
			return
		}
		if cnt := n.ChildCount(); cnt > 0 {
			for i := uint(0); i < cnt; i++ {
				walk(n.Child(i))
			}
			return
		}
		leaves = append(leaves, Lexeme{Start: s, End: e, Kind: kind, Category: leafCategory(n, kind, src[s:e])})
	}
	walk(tree.RootNode())
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return fillGaps(leaves, src), nil
}

// notLiteral lists named kinds whose name says "literal" but which hold code.
var notLiteral = map[string]bool{
	"composite_literal": true, "func_literal": true, "literal_value": true, "literal_element": true,
	"keyed_element": true, "template_substitution": true, "interpolation": true,
}

// literalWords are named leaves (or small nodes) that are literal constants.
var literalWords = map[string]bool{
	"true": true, "false": true, "none": true, "null": true, "nil": true, "iota": true,
	"nullptr": true, "undefined": true, "integer": true, "float": true, "number": true,
	"regex": true, "ellipsis": true, "escape_sequence": true,
}

// keywordWords are named nodes that read as keywords.
var keywordWords = map[string]bool{
	"primitive_type": true, "predefined_type": true, "void_type": true, "integral_type": true,
	"floating_point_type": true, "boolean_type": true, "this": true, "super": true, "self": true,
	"base": true, "auto": true,
}

// wholeNodeCategory reports whether n is classified as a whole, without descending.
func wholeNodeCategory(n *sitter.Node, kind string) (Category, bool) {
	if n.IsError() {
		return "", false
	}
	switch {
	case strings.Contains(kind, "comment"):
		return Comment, true
	case !n.IsNamed():
		return "", false
	case literalWords[kind]:
		return Literal, true
	case keywordWords[kind]:
		return Keyword, true
	case notLiteral[kind]:
		return "", false
	case strings.Contains(kind, "string") || strings.Contains(kind, "literal") || strings.Contains(kind, "char"):
		return Literal, true
	}
	return "", false
}

var punctuation = map[string]bool{
	"(": true, ")": true, "[": true, "]": true, "{": true, "}": true, ",": true, ";": true,
	":": true, ".": true, "::": true, "->": true, "=>": true, "...": true, "`": true,
	"\"": true, "'": true,
}

func leafCategory(n *sitter.Node, kind string, text []byte) Category {
	switch {
	case n.IsError() || n.IsMissing():
		return Other
	case isSpace(text):
		return Whitespace
	case strings.Contains(kind, "identifier"):
		return Identifier
	case n.IsNamed():
		return Other
	case punctuation[kind]:
		return Punctuation
	case isWord(kind):
		return Keyword
	}
	return Operator
}

// isWord reports whether an anonymous kind is a keyword: letters, digits and '_',
// starting with a letter or '_' (or "#" for C preprocessor directives).
func isWord(kind string) bool {
	k := strings.TrimPrefix(kind, "#")
	if k == "" {
		return false
	}
	for i, r := range k {
		if !(unicode.IsLetter(r) || r == '_' || (i > 0 && unicode.IsDigit(r))) {
			return false
		}
	}
	return true
}

func isSpace(b []byte) bool {
	for _, r := range string(b) {
		if !unicode.IsSpace(r) {
			return false
		}
	}
	return len(b) > 0
}

// fillGaps inserts lexemes for the bytes between leaves: runs of white space become
// Whitespace, other runs Other.
func fillGaps(leaves []Lexeme, src []byte) []Lexeme {
	out := make([]Lexeme, 0, 2*len(leaves)+1)
	pos := 0
	gap := func(end int) {
		for pos < end {
			r, size := utf8.DecodeRune(src[pos:end])
			space := unicode.IsSpace(r)
			start := pos
			for pos < end {
				r, size = utf8.DecodeRune(src[pos:end])
				if unicode.IsSpace(r) != space {
					break
				}
				pos += size
			}
			c := Other
			if space {
				c = Whitespace
			}
			out = append(out, Lexeme{Start: start, End: pos, Category: c})
		}
	}
	for _, l := range leaves {
		if l.Start < pos { // overlapping leaves should not happen; keep the first
			continue
		}
		gap(l.Start)
		out = append(out, l)
		pos = l.End
	}
	gap(len(src))
	return out
}

// CategoryStat is the attention that the code of one category receives:
// Count lexemes, Total the sum of their weights, Mean = Total/Count (0 when Count is 0)
// and Share = Total / (total over all categories).
type CategoryStat struct {
	Category Category
	Count    int
	Total    float64
	Mean     float64
	Share    float64
}

// AttentionPerCategory sums character weights (one per code point of src, e.g. from
// CharWeightsFromOffsets with EqualShare) per lexeme, then per category (spec §1.10
// item 3: mean per lexeme and share of the total). Every category is reported, in
// Categories order.
func AttentionPerCategory(lexemes []Lexeme, src []byte, charWeights []float64) ([]CategoryStat, error) {
	// byteToChar[b] = index of the code point that starts at byte b (and len at the end).
	byteToChar := make([]int, len(src)+1)
	c := 0
	for b := 0; b < len(src); {
		_, size := utf8.DecodeRune(src[b:])
		for k := 0; k < size; k++ {
			byteToChar[b+k] = c
		}
		b += size
		c++
	}
	byteToChar[len(src)] = c
	if c != len(charWeights) {
		return nil, fmt.Errorf("attention per category: %d character weights for a source of %d characters", len(charWeights), c)
	}
	idx := map[Category]int{}
	stats := make([]CategoryStat, 0, 8)
	for i, cat := range Categories() {
		idx[cat] = i
		stats = append(stats, CategoryStat{Category: cat})
	}
	var all float64
	for _, l := range lexemes {
		if l.Start < 0 || l.End > len(src) || l.End < l.Start {
			return nil, fmt.Errorf("attention per category: lexeme [%d,%d) outside the %d-byte source", l.Start, l.End, len(src))
		}
		var w float64
		for k := byteToChar[l.Start]; k < byteToChar[l.End]; k++ {
			w += charWeights[k]
		}
		i, ok := idx[l.Category]
		if !ok {
			return nil, fmt.Errorf("attention per category: unknown category %q", l.Category)
		}
		stats[i].Count++
		stats[i].Total += w
		all += w
	}
	for i := range stats {
		if stats[i].Count > 0 {
			stats[i].Mean = stats[i].Total / float64(stats[i].Count)
		}
		if all != 0 {
			stats[i].Share = stats[i].Total / all
		}
	}
	return stats, nil
}
