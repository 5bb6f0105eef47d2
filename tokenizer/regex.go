package tokenizer

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// matcher finds the successive non-overlapping matches of a pattern, as byte ranges.
type matcher interface {
	findAll(s string) [][2]int
}

// The two look-around patterns real tokenizers use are scanned by hand (Go's regexp
// has no look-ahead, and a backtracking engine is slow); any other pattern goes to
// regexp2, whose .NET syntax accepts the Oniguruma patterns HF tokenizers use.
const (
	// gpt2Pattern is the GPT-2 / ByteLevel pre-tokenizer pattern (HF tokenizers byte_level.rs).
	gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	// llama3Pattern is the Llama-3 / Qwen2 Split pattern.
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// compilePattern returns a matcher for an Oniguruma-style pattern.
func compilePattern(pat string) (matcher, error) {
	switch pat {
	case gpt2Pattern:
		return gpt2Scanner{}, nil
	case llama3Pattern:
		return llama3Scanner{}, nil
	}
	re, err := regexp2.Compile(onigToNet(pat), regexp2.Unicode)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %w", pat, err)
	}
	return re2Matcher{re}, nil
}

// literalMatcher matches a fixed string (HF's Pattern for &str).
type literalMatcher string

func (l literalMatcher) findAll(s string) [][2]int { return stringMatches(s, string(l)) }

type re2Matcher struct{ re *regexp2.Regexp }

func (m re2Matcher) findAll(s string) [][2]int {
	if s == "" {
		return nil
	}
	runes := []rune(s)
	// byteAt[i] is the byte offset of rune i; byteAt[len] = len(s).
	byteAt := make([]int, len(runes)+1)
	b := 0
	for i, r := range runes {
		byteAt[i] = b
		if r == utf8.RuneError {
			_, n := utf8.DecodeRuneInString(s[b:])
			b += n
		} else {
			b += utf8.RuneLen(r)
		}
	}
	byteAt[len(runes)] = b
	var out [][2]int
	mt, err := m.re.FindRunesMatch(runes)
	for err == nil && mt != nil {
		out = append(out, [2]int{byteAt[mt.Index], byteAt[mt.Index+mt.Length]})
		mt, err = m.re.FindNextMatch(mt)
	}
	return out
}

// isSpace is Oniguruma's Unicode \s (the White_Space property).
func isSpace(r rune) bool { return unicode.IsSpace(r) }

func isL(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z'
	}
	return unicode.IsLetter(r)
}

func isN(r rune) bool {
	if r < utf8.RuneSelf {
		return '0' <= r && r <= '9'
	}
	return unicode.IsNumber(r)
}

func isOther(r rune) bool { return !isSpace(r) && !isL(r) && !isN(r) }

// runRun advances from i over characters satisfying pred.
func runWhile(s string, i int, pred func(rune) bool) int {
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !pred(r) {
			break
		}
		i += n
	}
	return i
}

func runeAt(s string, i int) (rune, int) {
	if i >= len(s) {
		return -1, 0
	}
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// contraction matches 's 't 're 've 'm 'll 'd at i (s[i] == '\”).
func contraction(s string, i int, fold bool) int {
	r1, n1 := runeAt(s, i+1)
	if fold {
		r1 = foldASCII(r1)
	}
	switch r1 {
	case 's', 't', 'm', 'd':
		return i + 1 + n1
	case 'r', 'v', 'l':
		r2, n2 := runeAt(s, i+1+n1)
		if fold {
			r2 = foldASCII(r2)
		}
		if (r1 == 'r' || r1 == 'v') && r2 == 'e' || r1 == 'l' && r2 == 'l' {
			return i + 1 + n1 + n2
		}
	}
	return -1
}

// foldASCII folds the case of the letters of the contractions, including the
// Unicode case-fold equivalent of 's' (U+017F LATIN SMALL LETTER LONG S).
func foldASCII(r rune) rune {
	if 'A' <= r && r <= 'Z' {
		return r + 'a' - 'A'
	}
	if r == 0x17F {
		return 's'
	}
	return r
}

// whitespaceTail implements `\s+(?!\S)|\s+` at i (s[i] is whitespace).
func whitespaceTail(s string, i int) int {
	j := runWhile(s, i, isSpace)
	if j == len(s) {
		return j
	}
	// Back off one character so that the last space can join the next word.
	_, n := utf8.DecodeLastRuneInString(s[:j])
	if j-n > i {
		return j - n
	}
	return j
}

type gpt2Scanner struct{}

func (gpt2Scanner) findAll(s string) [][2]int {
	out := make([][2]int, 0, len(s)/4+1)
	for i := 0; i < len(s); {
		end := gpt2Next(s, i)
		out = append(out, [2]int{i, end})
		i = end
	}
	return out
}

func gpt2Next(s string, i int) int {
	r, n := runeAt(s, i)
	if r == '\'' {
		if e := contraction(s, i, false); e > 0 {
			return e
		}
	}
	j, c := i, r
	if r == ' ' {
		c2, n2 := runeAt(s, i+1)
		if c2 >= 0 && !isSpace(c2) {
			j, c = i+1, c2
			_ = n2
		}
	}
	switch {
	case isL(c):
		return runWhile(s, j, isL)
	case isN(c):
		return runWhile(s, j, isN)
	case c >= 0 && !isSpace(c):
		return runWhile(s, j, isOther)
	}
	_ = n
	return whitespaceTail(s, i)
}

type llama3Scanner struct{}

func (llama3Scanner) findAll(s string) [][2]int {
	out := make([][2]int, 0, len(s)/4+1)
	for i := 0; i < len(s); {
		end := llama3Next(s, i)
		out = append(out, [2]int{i, end})
		i = end
	}
	return out
}

func isCRLF(r rune) bool { return r == '\r' || r == '\n' }

func llama3Next(s string, i int) int {
	r, n := runeAt(s, i)
	// (?i:'s|'t|'re|'ve|'m|'ll|'d)
	if r == '\'' {
		if e := contraction(s, i, true); e > 0 {
			return e
		}
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if isL(r) {
		return runWhile(s, i, isL)
	}
	if !isCRLF(r) && !isN(r) {
		if r2, _ := runeAt(s, i+n); r2 >= 0 && isL(r2) {
			return runWhile(s, i+n, isL)
		}
	}
	// \p{N}
	if isN(r) {
		return i + n
	}
	// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
	j, c := i, r
	if r == ' ' {
		if c2, _ := runeAt(s, i+1); c2 >= 0 && isOther(c2) {
			j, c = i+1, c2
		}
	}
	if c >= 0 && isOther(c) {
		e := runWhile(s, j, isOther)
		return runWhile(s, e, isCRLF)
	}
	// \s*[\r\n]+ : up to and including the last \r or \n of the whitespace run.
	end := runWhile(s, i, isSpace)
	last := -1
	for k := i; k < end; {
		rk, nk := runeAt(s, k)
		if isCRLF(rk) {
			last = k + nk
		}
		k += nk
	}
	if last > 0 {
		return last
	}
	return whitespaceTail(s, i)
}

// onigWord is Oniguruma's Unicode \w: Alphabetic (letters, Nl and the circled or
// squared letters of Other_Alphabetic), marks, decimal digits and connector
// punctuation. .NET's \w lacks Mc, Me and Nl and has ZWJ/ZWNJ.
const onigWord = `\p{L}\p{M}\p{Nd}\p{Nl}\p{Pc}\x{24B6}-\x{24E9}\x{1F130}-\x{1F149}\x{1F150}-\x{1F169}\x{1F170}-\x{1F189}`

// onigToNet rewrites \w and \W (outside character classes) and \w inside them to
// Oniguruma's meaning; \d (Nd) and \s (White_Space) already agree.
func onigToNet(pat string) string {
	if !strings.Contains(pat, `\w`) && !strings.Contains(pat, `\W`) {
		return pat
	}
	var b strings.Builder
	inClass := false
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		if c == '\\' && i+1 < len(pat) {
			n := pat[i+1]
			switch {
			case n == 'w' && inClass:
				b.WriteString(onigWord)
			case n == 'w':
				b.WriteString("[" + onigWord + "]")
			case n == 'W' && !inClass:
				b.WriteString("[^" + onigWord + "]")
			default:
				b.WriteByte(c)
				b.WriteByte(n)
			}
			i++
			continue
		}
		switch {
		case c == '[' && !inClass:
			inClass = true
			b.WriteByte(c)
			// A ']' right after '[' or '[^' is a literal.
			if i+1 < len(pat) && pat[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(pat) && pat[i+1] == ']' {
				b.WriteByte(']')
				i++
			}
			continue
		case c == ']' && inClass:
			inClass = false
		}
		b.WriteByte(c)
	}
	return b.String()
}
