package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// span is a half-open byte range [start, end) of the original input.
type span struct{ start, end int }

// nstr is a normalized piece of the input, like Hugging Face's NormalizedString:
// the normalized text and, for every byte of it, the span of the original input
// (absolute byte offsets) that produced it. All bytes of one normalized character
// share the same alignment.
type nstr struct {
	s     string
	align []span
	orig  span // the original span this piece covers
}

// newNstr returns the identity piece for text[start:end].
func newNstr(text string, start, end int) nstr {
	s := text[start:end]
	al := make([]span, len(s))
	for i := 0; i < len(s); {
		_, n := utf8.DecodeRuneInString(s[i:])
		sp := span{start + i, start + i + n}
		for k := 0; k < n; k++ {
			al[i+k] = sp
		}
		i += n
	}
	return nstr{s: s, align: al, orig: span{start, end}}
}

// slice returns the sub-piece of normalized bytes [i, j).
func (p nstr) slice(i, j int) nstr {
	o := span{p.orig.start, p.orig.start}
	if i < j {
		o = span{p.align[i].start, p.align[j-1].end}
	} else if i < len(p.align) {
		o = span{p.align[i].start, p.align[i].start}
	} else if len(p.align) > 0 {
		o = span{p.align[len(p.align)-1].end, p.align[len(p.align)-1].end}
	}
	return nstr{s: p.s[i:j], align: p.align[i:j], orig: o}
}

// toOriginal converts normalized byte offsets [i, j) of p into original byte offsets.
func (p nstr) toOriginal(i, j int) [2]int {
	i, j = min(max(i, 0), len(p.align)), min(max(j, 0), len(p.align))
	if i >= j {
		if i < len(p.align) {
			return [2]int{p.align[i].start, p.align[i].start}
		}
		return [2]int{p.orig.end, p.orig.end}
	}
	return [2]int{p.align[i].start, p.align[j-1].end}
}

// builder accumulates a transformed piece character by character.
type builder struct {
	b  []byte
	al []span
}

func newBuilder(n int) *builder {
	return &builder{b: make([]byte, 0, n), al: make([]span, 0, n)}
}

func (w *builder) add(r rune, a span) {
	n := len(w.b)
	w.b = utf8.AppendRune(w.b, r)
	for k := n; k < len(w.b); k++ {
		w.al = append(w.al, a)
	}
}

func (w *builder) addStr(s string, a span) {
	w.b = append(w.b, s...)
	for k := 0; k < len(s); k++ {
		w.al = append(w.al, a)
	}
}

func (w *builder) done(orig span) nstr {
	return nstr{s: string(w.b), align: w.al, orig: orig}
}

// insertAlign is the alignment HF gives a character inserted at normalized byte i:
// the alignment of the preceding byte, or an empty span at the piece start.
func (p nstr) insertAlign(i int) span {
	if i < 1 {
		return span{p.orig.start, p.orig.start}
	}
	return p.align[i-1]
}

// mapRunes applies f to every character; each output character gets the alignment
// of the input character it came from (HF: first char replaces, others are insertions
// sharing the same alignment).
func (p nstr) mapRunes(f func(r rune, emit func(rune))) nstr {
	w := newBuilder(len(p.s))
	for i := 0; i < len(p.s); {
		r, n := utf8.DecodeRuneInString(p.s[i:])
		a := p.align[i]
		f(r, func(o rune) { w.add(o, a) })
		i += n
	}
	return w.done(p.orig)
}

// filter keeps the characters for which keep is true.
func (p nstr) filter(keep func(rune) bool) nstr {
	all := true
	for _, r := range p.s {
		if !keep(r) {
			all = false
			break
		}
	}
	if all {
		return p
	}
	w := newBuilder(len(p.s))
	for i := 0; i < len(p.s); {
		r, n := utf8.DecodeRuneInString(p.s[i:])
		if keep(r) {
			w.b = append(w.b, p.s[i:i+n]...)
			w.al = append(w.al, p.align[i:i+n]...)
		}
		i += n
	}
	return w.done(p.orig)
}

// prepend inserts s before the first character; HF gives the inserted characters
// the alignment of that first character.
func (p nstr) prepend(s string) nstr {
	if len(p.s) == 0 {
		return p
	}
	w := newBuilder(len(p.s) + len(s))
	w.addStr(s, p.align[0])
	w.b = append(w.b, p.s...)
	w.al = append(w.al, p.align...)
	return w.done(p.orig)
}

// appendStr appends s after the last character, with the alignment of that character.
func (p nstr) appendStr(s string) nstr {
	if len(p.s) == 0 {
		return p
	}
	w := newBuilder(len(p.s) + len(s))
	w.b = append(w.b, p.s...)
	w.al = append(w.al, p.align...)
	w.addStr(s, p.align[len(p.align)-1])
	return w.done(p.orig)
}

// replaceMatches replaces each match [start, end) by content. As in HF's
// NormalizedString::replace, the new characters take the alignment of the last
// byte of the match (or of the preceding byte for an empty match).
func (p nstr) replaceMatches(matches [][2]int, content string) nstr {
	if len(matches) == 0 {
		return p
	}
	w := newBuilder(len(p.s))
	last := 0
	for _, m := range matches {
		w.b = append(w.b, p.s[last:m[0]]...)
		w.al = append(w.al, p.align[last:m[0]]...)
		w.addStr(content, p.insertAlign(m[1]))
		last = m[1]
	}
	w.b = append(w.b, p.s[last:]...)
	w.al = append(w.al, p.align[last:]...)
	return w.done(p.orig)
}

// splitBehavior is HF's SplitDelimiterBehavior.
type splitBehavior int

const (
	splitRemoved splitBehavior = iota
	splitIsolated
	splitMergedWithPrevious
	splitMergedWithNext
	splitContiguous
)

// splitMatches splits p at the given sorted, non-overlapping matches according to
// behavior; invert swaps matches and non-matches. Empty pieces are dropped.
func (p nstr) splitMatches(matches [][2]int, behavior splitBehavior, invert bool) []nstr {
	type part struct {
		a, b    int
		isMatch bool
	}
	parts := make([]part, 0, 2*len(matches)+1)
	if len(p.s) == 0 {
		return nil
	}
	prev := 0
	for _, m := range matches {
		if prev != m[0] {
			parts = append(parts, part{prev, m[0], invert})
		}
		parts = append(parts, part{m[0], m[1], !invert})
		prev = m[1]
	}
	if prev != len(p.s) {
		parts = append(parts, part{prev, len(p.s), invert})
	}
	type keep struct {
		a, b   int
		remove bool
	}
	var ks []keep
	switch behavior {
	case splitIsolated:
		for _, x := range parts {
			ks = append(ks, keep{x.a, x.b, false})
		}
	case splitRemoved:
		for _, x := range parts {
			ks = append(ks, keep{x.a, x.b, x.isMatch})
		}
	case splitContiguous, splitMergedWithPrevious:
		// Walking forward, a part joins the previous piece when it continues a run
		// of its kind (Contiguous) or is a match after a non-match (MergedWithPrevious).
		prevMatch := false
		for i, x := range parts {
			join := x.isMatch && !prevMatch
			if behavior == splitContiguous {
				join = x.isMatch == prevMatch
			}
			if join && i > 0 {
				ks[len(ks)-1].b = x.b
			} else {
				ks = append(ks, keep{x.a, x.b, false})
			}
			prevMatch = x.isMatch
		}
	case splitMergedWithNext:
		prevMatch := false
		for i := len(parts) - 1; i >= 0; i-- {
			x := parts[i]
			if x.isMatch && !prevMatch && len(ks) > 0 {
				ks[len(ks)-1].a = x.a
			} else {
				ks = append(ks, keep{x.a, x.b, false})
			}
			prevMatch = x.isMatch
		}
		for i, j := 0, len(ks)-1; i < j; i, j = i+1, j-1 {
			ks[i], ks[j] = ks[j], ks[i]
		}
	}
	out := make([]nstr, 0, len(ks))
	for _, k := range ks {
		if k.remove || k.a == k.b {
			continue
		}
		out = append(out, p.slice(k.a, k.b))
	}
	return out
}

// runeMatches returns one match per character for which pred is true.
func runeMatches(s string, pred func(rune) bool) [][2]int {
	var ms [][2]int
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if pred(r) {
			ms = append(ms, [2]int{i, i + n})
		}
		i += n
	}
	return ms
}

// stringMatches returns the non-overlapping occurrences of pat in s.
func stringMatches(s, pat string) [][2]int {
	if pat == "" {
		return nil
	}
	var ms [][2]int
	for i := 0; i+len(pat) <= len(s); {
		j := indexFrom(s, pat, i)
		if j < 0 {
			break
		}
		ms = append(ms, [2]int{j, j + len(pat)})
		i = j + len(pat)
	}
	return ms
}

func indexFrom(s, pat string, from int) int {
	j := strings.Index(s[from:], pat)
	if j < 0 {
		return -1
	}
	return from + j
}

// runeChange is one character of a transformation, as in HF's
// NormalizedString::transform: change 0 replaces the next original character, 1
// inserts a character, and -k replaces the next character and removes k more.
type runeChange struct {
	r      rune
	change int
}

// transform rebuilds p from changes covering the whole piece, with HF's alignment
// rule (NormalizedString::transform_range, initial offset 0): a replacing character
// takes the alignment of the character it replaces, an inserted one that of the
// byte before the current position. Original characters left unconsumed at the
// end are dropped.
func (p nstr) transform(changes []runeChange) nstr {
	w := newBuilder(len(p.s))
	off := 0
	skip := func() {
		if off < len(p.s) {
			_, n := utf8.DecodeRuneInString(p.s[off:])
			off += n
		}
	}
	for _, c := range changes {
		var a span
		if c.change > 0 || off >= len(p.align) {
			a = p.insertAlign(off)
		} else {
			a = p.align[off]
		}
		if c.change <= 0 {
			skip()
		}
		for k := 0; k < -c.change; k++ {
			skip()
		}
		w.add(c.r, a)
	}
	return w.done(p.orig)
}
