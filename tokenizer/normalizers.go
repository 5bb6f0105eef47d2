package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// normalizer transforms a piece, keeping the alignment to the original text.
type normalizer interface {
	normalize(p nstr) nstr
}

type seqNormalizer []normalizer

func (s seqNormalizer) normalize(p nstr) nstr {
	for _, n := range s {
		p = n.normalize(p)
	}
	return p
}

// unicodeNormalizer applies NFC/NFD/NFKC/NFKD keeping, for every output character,
// the alignment of the input character it comes from (as the
// unicode-normalization-alignments crate HF uses): each input character is decomposed
// on its own, combining marks are reordered by combining class carrying their source,
// and (for NFC/NFKC) a composed character keeps the source of its starter.
type unicodeNormalizer struct{ form norm.Form }

type taggedRune struct {
	r   rune
	src int // byte index in the piece of the source character
	ccc uint8
}

func (u unicodeNormalizer) normalize(p nstr) nstr {
	if u.form.IsNormalString(p.s) {
		return p
	}
	decomp := norm.NFD
	compose := false
	switch u.form {
	case norm.NFKD:
		decomp = norm.NFKD
	case norm.NFC:
		compose = true
	case norm.NFKC:
		decomp, compose = norm.NFKD, true
	}
	rs := make([]taggedRune, 0, len(p.s))
	var buf []byte
	for i := 0; i < len(p.s); {
		r, n := utf8.DecodeRuneInString(p.s[i:])
		if r < utf8.RuneSelf || unicode.Is(newerThanUnicode12, r) {
			// Characters newer than HF's normalization tables stay as they are.
			rs = append(rs, taggedRune{r, i, 0})
			i += n
			continue
		}
		buf = decomp.AppendString(buf[:0], p.s[i:i+n])
		for _, d := range string(buf) {
			rs = append(rs, taggedRune{d, i, decomp.PropertiesString(string(d)).CCC()})
		}
		i += n
	}
	// Canonical ordering: stable sort of each run of non-starters by combining class.
	for i := 0; i < len(rs); {
		if rs[i].ccc == 0 {
			i++
			continue
		}
		j := i
		for j < len(rs) && rs[j].ccc != 0 {
			j++
		}
		run := rs[i:j]
		for x := 1; x < len(run); x++ {
			for y := x; y > 0 && run[y-1].ccc > run[y].ccc; y-- {
				run[y-1], run[y] = run[y], run[y-1]
			}
		}
		i = j
	}
	if compose {
		rs = composeTagged(rs)
	}
	w := newBuilder(len(p.s) + 8)
	for _, t := range rs {
		w.add(t.r, p.align[t.src])
	}
	return w.done(p.orig)
}

// composeTagged is Unicode's canonical composition algorithm over tagged runes; the
// primary composite of a pair is found by NFC-normalizing the pair.
func composeTagged(rs []taggedRune) []taggedRune {
	out := rs[:0:0]
	starter := -1
	var lastCCC uint8
	for _, t := range rs {
		if starter >= 0 {
			adjacent := starter == len(out)-1
			if adjacent || (lastCCC != 0 && lastCCC < t.ccc) {
				if c, ok := primaryComposite(out[starter].r, t.r); ok {
					out[starter].r = c
					continue
				}
			}
		}
		if t.ccc == 0 {
			starter = len(out)
			lastCCC = 0
		} else {
			lastCCC = t.ccc
		}
		out = append(out, t)
	}
	return out
}

func primaryComposite(a, b rune) (rune, bool) {
	if a < utf8.RuneSelf && b < utf8.RuneSelf {
		return 0, false
	}
	s := norm.NFC.String(string([]rune{a, b}))
	r, n := utf8.DecodeRuneInString(s)
	if n != len(s) {
		return 0, false
	}
	return r, true
}

type lowercaseNormalizer struct{}

func (lowercaseNormalizer) normalize(p nstr) nstr {
	return p.mapRunes(func(r rune, emit func(rune)) { lowerRune(r, emit) })
}

// lowerRune is Rust's char::to_lowercase: one-to-one except for U+0130, which
// becomes "i̇" (i + U+0307).
func lowerRune(r rune, emit func(rune)) {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		emit(r)
		return
	}
	if r == 0x130 {
		emit('i')
		emit(0x307)
		return
	}
	emit(unicode.ToLower(r))
}

type stripNormalizer struct{ left, right bool }

func (s stripNormalizer) normalize(p nstr) nstr {
	a, b := 0, len(p.s)
	if s.left {
		a = len(p.s) - len(strings.TrimLeftFunc(p.s, unicode.IsSpace))
	}
	if s.right {
		b = len(strings.TrimRightFunc(p.s, unicode.IsSpace))
	}
	if b < a {
		b = a
	}
	if a == 0 && b == len(p.s) {
		return p
	}
	q := p.slice(a, b)
	q.orig = p.orig
	return q
}

// stripAccentsNormalizer removes combining marks (HF's StripAccents filters
// is_combining_mark, i.e. general category M).
type stripAccentsNormalizer struct{}

func (stripAccentsNormalizer) normalize(p nstr) nstr {
	return p.filter(func(r rune) bool { return !unicode.Is(unicode.M, r) })
}

type replaceNormalizer struct {
	pat     matcher
	content string
}

func (r replaceNormalizer) normalize(p nstr) nstr {
	return p.replaceMatches(r.pat.findAll(p.s), r.content)
}

type prependNormalizer struct{ s string }

func (n prependNormalizer) normalize(p nstr) nstr { return p.prepend(n.s) }

// bertNormalizer is HF's BertNormalizer: clean_text, handle_chinese_chars,
// strip_accents (default: same as lowercase), lowercase.
type bertNormalizer struct {
	cleanText, chinese, stripAccents, lowercase bool
}

func bertIsWhitespace(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || unicode.IsSpace(r)
}

// bertIsControl is HF's is_control: unicode_categories' is_other (Cc, Cf, Co, Cs in
// that crate's Unicode 8 tables, which list no unassigned code points) except \t \n \r.
func bertIsControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	if r < 0x80 {
		return r < 0x20 || r == 0x7F
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs) && !unicode.Is(newerThanUnicode8, r)
}

// bertIsNonspacingMark is unicode_categories' is_mark_nonspacing (Unicode 8 tables).
func bertIsNonspacingMark(r rune) bool {
	return r >= 0x300 && unicode.Is(unicode.Mn, r) && !unicode.Is(newerThanUnicode8, r)
}

func isChineseChar(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) || (r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) || (r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) || (r >= 0x2B920 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) || (r >= 0x2F800 && r <= 0x2FA1F)
}

func (b bertNormalizer) normalize(p nstr) nstr {
	if b.cleanText {
		p = p.filter(func(r rune) bool { return !(r == 0 || r == 0xFFFD || bertIsControl(r)) })
		p = p.mapRunes(func(r rune, emit func(rune)) {
			if bertIsWhitespace(r) {
				emit(' ')
			} else {
				emit(r)
			}
		})
	}
	if b.chinese {
		p = p.mapRunes(func(r rune, emit func(rune)) {
			if isChineseChar(r) {
				emit(' ')
				emit(r)
				emit(' ')
			} else {
				emit(r)
			}
		})
	}
	if b.stripAccents {
		p = unicodeNormalizer{norm.NFD}.normalize(p)
		p = p.filter(func(r rune) bool { return !bertIsNonspacingMark(r) })
	}
	if b.lowercase {
		p = lowercaseNormalizer{}.normalize(p)
	}
	return p
}
