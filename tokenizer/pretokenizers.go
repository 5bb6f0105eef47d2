package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// preTokenizer splits a normalized piece into pieces (HF's PreTokenizer applied to
// each split of a PreTokenizedString).
type preTokenizer interface {
	split(p nstr) []nstr
}

type seqPreTokenizer []preTokenizer

func (s seqPreTokenizer) split(p nstr) []nstr {
	pieces := []nstr{p}
	for _, pt := range s {
		var next []nstr
		for _, q := range pieces {
			next = append(next, pt.split(q)...)
		}
		pieces = next
	}
	return pieces
}

// byteLevelPreTokenizer is HF's ByteLevel: optional prefix space, optional GPT-2
// regex split, then every byte mapped to a printable character (bytesChar).
type byteLevelPreTokenizer struct {
	addPrefixSpace, useRegex bool
}

func (b byteLevelPreTokenizer) split(p nstr) []nstr {
	if b.addPrefixSpace && len(p.s) > 0 && p.s[0] != ' ' {
		p = p.prepend(" ")
	}
	pieces := []nstr{p}
	if b.useRegex {
		pieces = p.splitMatches(gpt2Scanner{}.findAll(p.s), splitIsolated, false)
	}
	for i, q := range pieces {
		pieces[i] = byteLevelTransform(q)
	}
	return pieces
}

// byteLevelTransform maps each byte to its byte-level character; all characters
// produced from one input character share its alignment.
func byteLevelTransform(p nstr) nstr {
	w := newBuilder(len(p.s) * 2)
	for i := 0; i < len(p.s); i++ {
		w.addStr(bytesChar[p.s[i]], p.align[i])
	}
	return w.done(p.orig)
}

// bytesChar is GPT-2's bytes_to_unicode table, as UTF-8 strings.
var bytesChar = func() [256]string {
	var t [256]string
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			t[b] = string(rune(b))
		} else {
			t[b] = string(rune(256 + n))
			n++
		}
	}
	return t
}()

// charBytes is the inverse of bytesChar.
var charBytes = func() map[rune]byte {
	m := make(map[rune]byte, 256)
	for b := 0; b < 256; b++ {
		r, _ := utf8.DecodeRuneInString(bytesChar[b])
		m[r] = byte(b)
	}
	return m
}()

// splitPreTokenizer is HF's Split: a pattern, a behavior and invert.
type splitPreTokenizer struct {
	pat      matcher
	behavior splitBehavior
	invert   bool
}

func (s splitPreTokenizer) split(p nstr) []nstr {
	return p.splitMatches(s.pat.findAll(p.s), s.behavior, s.invert)
}

// runeSplitter splits on characters satisfying pred (HF's Pattern for Fn(char) -> bool).
type runeSplitter struct {
	pred     func(rune) bool
	behavior splitBehavior
}

func (s runeSplitter) split(p nstr) []nstr {
	return p.splitMatches(runeMatches(p.s, s.pred), s.behavior, false)
}

func isBertPunct(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= '!' && r <= '/' || r >= ':' && r <= '@' || r >= '[' && r <= '`' || r >= '{' && r <= '~'
	}
	// HF: char::is_ascii_punctuation || unicode_categories' is_punctuation (Unicode 8).
	return unicode.IsPunct(r) && !unicode.Is(newerThanUnicode8, r)
}

type bertPreTokenizer struct{}

func (bertPreTokenizer) split(p nstr) []nstr {
	var out []nstr
	for _, q := range p.splitMatches(runeMatches(p.s, unicode.IsSpace), splitRemoved, false) {
		out = append(out, q.splitMatches(runeMatches(q.s, isBertPunct), splitIsolated, false)...)
	}
	return out
}

// whitespacePreTokenizer is HF's Whitespace: the pattern \w+|[^\w\s]+, keeping matches.
type whitespacePreTokenizer struct{}

// isWord is the Unicode \w of Rust's regex crate, which HF's Whitespace uses:
// Alphabetic, marks, decimal digits, connector punctuation and Join_Control.
func isWord(r rune) bool {
	if r == 0x200C || r == 0x200D {
		return true
	}
	if r < utf8.RuneSelf {
		return isL(r) || '0' <= r && r <= '9' || r == '_'
	}
	return unicode.In(r, unicode.L, unicode.M, unicode.Nd, unicode.Nl, unicode.Pc) ||
		r >= 0x24B6 && r <= 0x24E9 || r >= 0x1F130 && r <= 0x1F189 && !(r >= 0x1F14A && r <= 0x1F14F) && !(r >= 0x1F16A && r <= 0x1F16F)
}

func (whitespacePreTokenizer) split(p nstr) []nstr {
	var ms [][2]int
	s := p.s
	for i := 0; i < len(s); {
		r, n := runeAt(s, i)
		switch {
		case isWord(r):
			j := runWhile(s, i, isWord)
			ms = append(ms, [2]int{i, j})
			i = j
		case !isSpace(r):
			j := runWhile(s, i, func(r rune) bool { return !isWord(r) && !isSpace(r) })
			ms = append(ms, [2]int{i, j})
			i = j
		default:
			i += n
		}
	}
	return p.splitMatches(ms, splitRemoved, true)
}

// metaspacePreTokenizer is HF's Metaspace: spaces become the replacement character,
// which is prepended according to the scheme, and optionally split before.
type metaspacePreTokenizer struct {
	replacement string
	prepend     string // "always", "first", "never"
	split_      bool
}

func (m metaspacePreTokenizer) split(p nstr) []nstr {
	p = p.replaceMatches(stringMatches(p.s, " "), m.replacement)
	switch m.prepend {
	case "always":
		if len(p.s) >= len(m.replacement) && p.s[:len(m.replacement)] != m.replacement || len(p.s) < len(m.replacement) {
			p = p.prepend(m.replacement)
		}
	case "first":
		if (len(p.s) < len(m.replacement) || p.s[:len(m.replacement)] != m.replacement) && p.orig.start == 0 {
			p = p.prepend(m.replacement)
		}
	}
	if !m.split_ {
		if len(p.s) == 0 {
			return nil
		}
		return []nstr{p}
	}
	return p.splitMatches(stringMatches(p.s, m.replacement), splitMergedWithNext, false)
}
