package tokenizer

import (
	"sort"
	"sync"
	"unicode"
	"unicode/utf8"
)

// unicodeScriptsPreTokenizer is HF's UnicodeScripts (pre_tokenizers/unicode_scripts,
// after SentencePiece's IsValidSentencePiece): a piece is split wherever the script
// of a character differs from the script of the last non-space character. Spaces
// (U+0020) belong to every script, so they stay with the text before them; spaces
// at the very start of a piece are dropped. Hiragana, Katakana and U+30FC count as
// Han. HF's script table is Unicode 9.0: characters assigned later, and unassigned
// ones, have no script and behave like a space.
type unicodeScriptsPreTokenizer struct{}

// scriptAny marks the space-like "any" script; scripts are indexes in scriptTable.
const scriptAny = -1

func (unicodeScriptsPreTokenizer) split(p nstr) []nstr {
	var bounds []int
	last := scriptAny
	for i, r := range p.s {
		if sc := fixedScript(r); sc != scriptAny {
			if sc != last {
				bounds = append(bounds, i)
			}
			last = sc
		}
	}
	bounds = append(bounds, len(p.s))
	out := make([]nstr, 0, len(bounds)-1)
	for k := 0; k+1 < len(bounds); k++ {
		out = append(out, p.slice(bounds[k], bounds[k+1]))
	}
	return out
}

func fixedScript(r rune) int {
	switch {
	case r == 0x30FC:
		return scriptHan()
	case r == ' ', r > unicode.MaxRune, unicode.Is(newerThanUnicode9, r):
		return scriptAny
	}
	s := scriptOf(r)
	if s == scriptHiragana() || s == scriptKatakana() {
		return scriptHan()
	}
	return s
}

type scriptRange struct {
	lo, hi rune
	script int
}

// scriptIndex is Go's script tables (unicode.Scripts) as one sorted list of ranges,
// built on first use.
var scriptIndex = sync.OnceValue(func() (idx struct {
	ranges                  []scriptRange
	han, hiragana, katakana int
}) {
	names := make([]string, 0, len(unicode.Scripts))
	for name := range unicode.Scripts {
		names = append(names, name)
	}
	sort.Strings(names)
	for id, name := range names {
		t := unicode.Scripts[name]
		add := func(lo, hi, stride rune) {
			if stride == 1 {
				idx.ranges = append(idx.ranges, scriptRange{lo, hi, id})
				return
			}
			for r := lo; r <= hi; r += stride {
				idx.ranges = append(idx.ranges, scriptRange{r, r, id})
			}
		}
		for _, r := range t.R16 {
			add(rune(r.Lo), rune(r.Hi), rune(r.Stride))
		}
		for _, r := range t.R32 {
			add(rune(r.Lo), rune(r.Hi), rune(r.Stride))
		}
		switch name {
		case "Han":
			idx.han = id
		case "Hiragana":
			idx.hiragana = id
		case "Katakana":
			idx.katakana = id
		}
	}
	sort.Slice(idx.ranges, func(i, j int) bool { return idx.ranges[i].lo < idx.ranges[j].lo })
	return idx
})

func scriptHan() int      { return scriptIndex().han }
func scriptHiragana() int { return scriptIndex().hiragana }
func scriptKatakana() int { return scriptIndex().katakana }

// scriptOf returns the script of r, or scriptAny for a character without one.
func scriptOf(r rune) int {
	if r < 0 || r > utf8.MaxRune {
		return scriptAny
	}
	rs := scriptIndex().ranges
	i := sort.Search(len(rs), func(i int) bool { return rs[i].hi >= r })
	if i < len(rs) && rs[i].lo <= r {
		return rs[i].script
	}
	return scriptAny
}
