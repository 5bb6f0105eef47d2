package metrics

import (
	"strings"

	sitter "github.com/tree-sitter/go-tree-sitter"
	tspython "github.com/tree-sitter/tree-sitter-python/bindings/go"
)

// Detokenize rebuilds source text from tokens as Text_to_Python's AST check: tokens
// joined by spaces, NEWLINE → "\n", INDENT → four spaces.
func Detokenize(toks []string) string {
	s := strings.Join(toks, " ")
	s = strings.ReplaceAll(s, "NEWLINE", "\n")
	return strings.ReplaceAll(s, "INDENT", "    ")
}

// ValidPython reports whether Detokenize(toks) parses as Python, the original's
// ast.parse check, here with tree-sitter's Python grammar and CPython's indentation
// rules (ParsesAsPython). An empty token list is valid, as
// ast.parse("") is.
func ValidPython(toks []string) bool {
	return ParsesAsPython(Detokenize(toks))
}

// ParsesAsPython reports whether src is valid Python: tree-sitter's grammar
// parses it without error and its indentation follows CPython's rules
// (indentationOK).
func ParsesAsPython(src string) bool {
	if !indentationOK(src) {
		return false
	}
	p := sitter.NewParser()
	defer p.Close()
	if err := p.SetLanguage(sitter.NewLanguage(tspython.Language())); err != nil {
		return false
	}
	tree := p.Parse([]byte(src), nil)
	if tree == nil {
		return false
	}
	defer tree.Close()
	return !tree.RootNode().HasError()
}

// indentationOK applies the indentation rules of CPython's tokenizer and parser
// that tree-sitter's grammar does not enforce: a logical line (outside brackets,
// strings and backslash continuations; blank and comment-only lines ignored) may
// be indented deeper only right after a block header (a line ending with ':'),
// must be after one ("expected an indented block", also at the end of the text),
// and a dedent must return to an enclosing level ("unindent does not match any
// outer indentation level"). Tabs advance to the next multiple of 8.
func indentationOK(src string) bool {
	stack := []int{0}
	depth := 0             // bracket nesting
	quote := ""            // open string delimiter
	expectIndent := false  // previous logical line ended with ':'
	lineStart := true      // at the start of a physical line that begins a logical line
	lastSignificant := ' ' // last non-space character of the current logical line
	for i := 0; i < len(src); i++ {
		if lineStart && quote == "" && depth == 0 {
			col, j := 0, i
			for ; j < len(src) && (src[j] == ' ' || src[j] == '\t' || src[j] == '\f'); j++ {
				switch src[j] {
				case ' ':
					col++
				case '\t':
					col = (col/8 + 1) * 8
				default:
					col = 0
				}
			}
			if j >= len(src) || src[j] == '\n' || src[j] == '#' || src[j] == '\r' {
				// blank or comment-only line: no indentation token
				for j < len(src) && src[j] != '\n' {
					j++
				}
				i = j
				continue
			}
			top := stack[len(stack)-1]
			switch {
			case col > top:
				if !expectIndent {
					return false
				}
				stack = append(stack, col)
			case expectIndent:
				return false
			case col < top:
				for len(stack) > 1 && stack[len(stack)-1] > col {
					stack = stack[:len(stack)-1]
				}
				if stack[len(stack)-1] != col {
					return false
				}
			}
			expectIndent, lineStart, lastSignificant = false, false, ' '
			i = j - 1
			continue
		}
		c := src[i]
		if quote != "" {
			switch {
			case c == '\\':
				i++
			case strings.HasPrefix(src[i:], quote):
				i += len(quote) - 1
				quote = ""
				lastSignificant = '"'
			case c == '\n' && len(quote) == 1:
				return false // unterminated single-quoted string
			}
			continue
		}
		switch c {
		case '#':
			for i+1 < len(src) && src[i+1] != '\n' {
				i++
			}
		case '"', '\'':
			quote = string(c)
			if strings.HasPrefix(src[i:], strings.Repeat(string(c), 3)) {
				quote = strings.Repeat(string(c), 3)
				i += 2
			}
		case '(', '[', '{':
			depth++
			lastSignificant = rune(c)
		case ')', ']', '}':
			if depth > 0 {
				depth--
			}
			lastSignificant = rune(c)
		case '\\':
			if i+1 < len(src) && src[i+1] == '\n' {
				i++ // explicit line joining
			}
		case '\n':
			if depth == 0 {
				expectIndent = lastSignificant == ':'
				lineStart = true
			}
		case ' ', '\t', '\r', '\f':
		default:
			lastSignificant = rune(c)
		}
	}
	return !expectIndent || lastSignificant != ':' && !lineStart
}
