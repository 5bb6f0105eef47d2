package tokenizer

import (
	"sort"
	"unicode"
	"unicode/utf8"
)

// AddedToken is an entry of tokenizer.json's added_tokens.
type AddedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// addedMatcher finds added tokens with leftmost-longest semantics (HF uses an
// Aho-Corasick automaton with MatchKind::LeftmostLongest).
type addedMatcher struct {
	patterns []string
	tokens   []*AddedToken
	byFirst  [256][]int // pattern indices by first byte, longest first
}

func newAddedMatcher(toks []*AddedToken, patterns []string) *addedMatcher {
	m := &addedMatcher{patterns: patterns, tokens: toks}
	for i, p := range patterns {
		if p == "" {
			continue
		}
		m.byFirst[p[0]] = append(m.byFirst[p[0]], i)
	}
	for b := range m.byFirst {
		l := m.byFirst[b]
		sort.SliceStable(l, func(x, y int) bool { return len(patterns[l[x]]) > len(patterns[l[y]]) })
	}
	return m
}

func (m *addedMatcher) empty() bool { return m == nil || len(m.patterns) == 0 }

type addedSplit struct {
	a, b int
	tok  *AddedToken // nil for text between added tokens
}

// split is HF's AddedVocabulary::find_matches: the input cut into added-token
// matches (with single_word, lstrip and rstrip applied) and the text between them.
func (m *addedMatcher) split(s string) []addedSplit {
	if m.empty() || s == "" {
		return []addedSplit{{0, len(s), nil}}
	}
	var out []addedSplit
	startOffset := 0
	for i := 0; i < len(s); {
		idx := -1
		for _, k := range m.byFirst[s[i]] {
			p := m.patterns[k]
			if len(s)-i >= len(p) && s[i:i+len(p)] == p {
				idx = k
				break
			}
		}
		if idx < 0 {
			i++
			continue
		}
		tok := m.tokens[idx]
		start, stop := i, i+len(m.patterns[idx])
		next := stop
		if tok.SingleWord {
			startSpace := start == 0 || !endsWithWord(s[:start])
			stopSpace := stop == len(s) || !startsWithWord(s[stop:])
			if !startSpace || !stopSpace {
				i = stop // the automaton resumes after the skipped match
				continue
			}
		}
		if tok.LStrip {
			ns := len(trimRightSpace(s[:start]))
			start = max(ns, startOffset)
		}
		if tok.RStrip {
			stop += len(s[stop:]) - len(trimLeftSpace(s[stop:]))
		}
		if start > startOffset {
			out = append(out, addedSplit{startOffset, start, nil})
		}
		out = append(out, addedSplit{start, stop, tok})
		startOffset = stop
		if stop > next {
			next = stop
		}
		i = next
	}
	if startOffset != len(s) {
		out = append(out, addedSplit{startOffset, len(s), nil})
	}
	return out
}

func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.In(r, unicode.M, unicode.Pc) || r == '_'
}

func endsWithWord(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return r != utf8.RuneError && isWordChar(r)
}

func startsWithWord(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return r != utf8.RuneError && isWordChar(r)
}

func trimRightSpace(s string) string {
	for len(s) > 0 {
		r, n := utf8.DecodeLastRuneInString(s)
		if !unicode.IsSpace(r) {
			break
		}
		s = s[:len(s)-n]
	}
	return s
}

func trimLeftSpace(s string) string {
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if !unicode.IsSpace(r) {
			break
		}
		s = s[n:]
	}
	return s
}
