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

// unicodeNormalizer applies NFC/NFD/NFKC/NFKD segment by segment. Within a segment
// (a starter and its combining marks), output character k takes the alignment of input
// character k (the last input character when the output is longer: HF's insertions),
// and when the output is shorter the last output character absorbs the remaining input
// characters, as unicode-normalization-alignments does for compositions.
type unicodeNormalizer struct{ form norm.Form }

func (u unicodeNormalizer) normalize(p nstr) nstr {
	if u.form.IsNormalString(p.s) {
		return p
	}
	w := newBuilder(len(p.s) + 8)
	var it norm.Iter
	it.InitString(u.form, p.s)
	pos := 0
	for !it.Done() {
		seg := it.Next()
		// The iterator consumed input bytes [pos, it.Pos()).
		end := it.Pos()
		in := p.s[pos:end]
		var ins []int // byte index in p of each input char
		for k := range in {
			if utf8.RuneStart(in[k]) {
				ins = append(ins, pos+k)
			}
		}
		k := 0
		for len(seg) > 0 {
			r, n := utf8.DecodeRune(seg)
			seg = seg[n:]
			var a span
			switch {
			case len(ins) == 0:
				a = p.insertAlign(pos)
			case k < len(ins):
				a = p.align[ins[k]]
			default:
				a = p.align[ins[len(ins)-1]]
			}
			w.add(r, a)
			k++
		}
		pos = end
	}
	return w.done(p.orig)
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
