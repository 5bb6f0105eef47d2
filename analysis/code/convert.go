// Package code relates attention over model tokens to the source code the tokens came
// from: token ↔ character ↔ line conversions (followup-attention's attwizard, spec
// seeds.md §1.5) and attention per syntactic category of the code, with tree-sitter
// (spec §1.10 item 3).
//
// Lengths, positions and columns are counted in Unicode code points, as Python's str
// (and Hugging Face offsets) count them, never in bytes.
package code

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Distribution says how a token's weight is spread over its characters.
type Distribution int

const (
	// Replication gives every character of a token the token's full weight
	// (followup-attention's default, "replication").
	Replication Distribution = iota
	// EqualShare gives every character weight/len(token) ("equal_share"), so the total
	// weight is preserved.
	EqualShare
)

// ParseDistribution maps the original's names ("replication", "equal_share") to a Distribution.
func ParseDistribution(name string) (Distribution, error) {
	switch name {
	case "replication", "":
		return Replication, nil
	case "equal_share":
		return EqualShare, nil
	}
	return 0, fmt.Errorf("unknown distribution %q (want replication or equal_share)", name)
}

// String returns the original's name of d.
func (d Distribution) String() string {
	if d == EqualShare {
		return "equal_share"
	}
	return "replication"
}

// ByteLevelChars is the special-character mapping of byte-level BPE tokenizers (GPT-2,
// CodeGen): 'Ġ' stands for a space and 'Ċ' for a newline.
func ByteLevelChars() map[string]string {
	return map[string]string{"Ġ": " ", "Ċ": "\n"}
}

// ReplaceSpecialChars returns tokens with every key of mapping replaced by its value.
// Keys are applied in sorted order so the result does not depend on map iteration.
func ReplaceSpecialChars(tokens []string, mapping map[string]string) []string {
	keys := make([]string, 0, len(mapping))
	for k := range mapping {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(tokens))
	for i, t := range tokens {
		for _, k := range keys {
			t = strings.ReplaceAll(t, k, mapping[k])
		}
		out[i] = t
	}
	return out
}

// MapToCharLevel spreads one weight per token over the characters of text
// (attwizard map_to_char_level). Special characters of the tokens are first replaced
// through mapping (nil = none). Walking text with a pointer: if the rest of the text
// starts with the current token, the token's characters receive its weight (whole for
// Replication, weight/len for EqualShare) and both advance; otherwise the current
// character receives 0 and only the text advances. The result has one entry per
// character of text. Where the original raises an index error because the tokens run
// out before the text, the remaining characters receive 0.
func MapToCharLevel(tokens []string, weights []float64, text string, dist Distribution, mapping map[string]string) ([]float64, error) {
	if len(tokens) != len(weights) {
		return nil, fmt.Errorf("map to char level: %d tokens but %d weights", len(tokens), len(weights))
	}
	toks := tokens
	if len(mapping) > 0 {
		toks = ReplaceSpecialChars(tokens, mapping)
	}
	chars := []rune(text)
	out := make([]float64, 0, len(chars))
	pos, k := 0, 0
	for pos < len(chars) {
		if k >= len(toks) {
			out = append(out, 0)
			pos++
			continue
		}
		tok := []rune(toks[k])
		if hasRunePrefix(chars[pos:], tok) {
			w := weights[k]
			if dist == EqualShare && len(tok) > 0 {
				w /= float64(len(tok))
			}
			for range tok {
				out = append(out, w)
			}
			pos += len(tok)
			k++
			continue
		}
		out = append(out, 0)
		pos++
	}
	return out, nil
}

func hasRunePrefix(s, prefix []rune) bool {
	if len(prefix) > len(s) {
		return false
	}
	for i, r := range prefix {
		if s[i] != r {
			return false
		}
	}
	return true
}

// CharWeightsFromOffsets spreads one weight per token over nChars characters using
// the tokens' character spans [start, end) (Hugging Face offsets), which works for any
// tokenizer family, including WordPiece whose token strings are not substrings of the
// text. Spans that are empty (special tokens) carry no character; overlapping spans add.
func CharWeightsFromOffsets(offsets [][2]int, weights []float64, nChars int, dist Distribution) ([]float64, error) {
	if len(offsets) != len(weights) {
		return nil, fmt.Errorf("char weights: %d offsets but %d weights", len(offsets), len(weights))
	}
	out := make([]float64, nChars)
	for i, o := range offsets {
		s, e := o[0], o[1]
		if s < 0 || e < s || e > nChars {
			return nil, fmt.Errorf("char weights: token %d has span [%d,%d) outside the %d characters of the text", i, s, e, nChars)
		}
		w := weights[i]
		if dist == EqualShare && e > s {
			w /= float64(e - s)
		}
		for c := s; c < e; c++ {
			out[c] += w
		}
	}
	return out, nil
}

// CharRecord is one character of a text (attwizard tokenize_char_level): T the
// character, I its index, L its line counted from 1, C its column counted from 0.
// A newline belongs to the line it ends.
type CharRecord struct {
	T    string
	I, L int
	C    int
}

// TokenizeCharLevel returns one record per character of text (tokenize_char_level).
func TokenizeCharLevel(text string) []CharRecord {
	var out []CharRecord
	line, col := 1, 0
	for i, r := range []rune(text) {
		out = append(out, CharRecord{T: string(r), I: i, L: line, C: col})
		if r == '\n' {
			line++
			col = 0
		} else {
			col++
		}
	}
	return out
}

// TokenPos is the position of a token in its text (get_tokens_with_col_and_line):
// S its first character's offset, I its index, C and L its column and line counted
// from 0, T the token.
type TokenPos struct {
	S, I, C, L int
	T          string
}

// TokensWithColAndLine places tokens, which must concatenate to a prefix of text, in
// text (get_tokens_with_col_and_line). After a token that contains newlines the line
// grows by their count and the column becomes the number of characters after the last one.
func TokensWithColAndLine(text string, tokens []string) ([]TokenPos, error) {
	chars := []rune(text)
	out := make([]TokenPos, 0, len(tokens))
	s, line, col := 0, 0, 0
	for i, t := range tokens {
		tr := []rune(t)
		if !hasRunePrefix(chars[s:], tr) {
			return nil, fmt.Errorf("token %d %q does not continue the text at character %d", i, t, s)
		}
		out = append(out, TokenPos{S: s, I: i, C: col, L: line, T: t})
		s += len(tr)
		if n := strings.Count(t, "\n"); n > 0 {
			line += n
			col = len([]rune(t[strings.LastIndex(t, "\n")+1:]))
		} else {
			col += len(tr)
		}
	}
	return out, nil
}

// TokenLines returns the 0-based line of every token (TokensWithColAndLine's L).
func TokenLines(text string, tokens []string) ([]int, error) {
	pos, err := TokensWithColAndLine(text, tokens)
	if err != nil {
		return nil, err
	}
	lines := make([]int, len(pos))
	for i, p := range pos {
		lines[i] = p.L
	}
	return lines, nil
}

// ConvertWeights moves weights from one tokenization of text to another
// (convert_weigths_from_tok_to_tok): each source token's weight is split equally over
// its characters, then each target token receives the sum over its character span.
// Both token lists must concatenate to prefixes of text. The total is preserved; an
// error reports weight that the target tokens do not cover.
func ConvertWeights(text string, src []string, weights []float64, dst []string) ([]float64, error) {
	if len(src) != len(weights) {
		return nil, fmt.Errorf("convert weights: %d source tokens but %d weights", len(src), len(weights))
	}
	sp, err := TokensWithColAndLine(text, src)
	if err != nil {
		return nil, fmt.Errorf("convert weights: source tokens: %w", err)
	}
	dp, err := TokensWithColAndLine(text, dst)
	if err != nil {
		return nil, fmt.Errorf("convert weights: target tokens: %w", err)
	}
	chars := make([]float64, len([]rune(text)))
	var total float64
	for i, p := range sp {
		n := len([]rune(p.T))
		if n == 0 {
			if weights[i] != 0 {
				return nil, fmt.Errorf("convert weights: empty source token %d carries weight %g", i, weights[i])
			}
			continue
		}
		for c := p.S; c < p.S+n; c++ {
			chars[c] += weights[i] / float64(n)
		}
		total += weights[i]
	}
	out := make([]float64, len(dst))
	var got float64
	for i, p := range dp {
		for c := p.S; c < p.S+len([]rune(p.T)); c++ {
			out[i] += chars[c]
		}
		got += out[i]
	}
	if math.Abs(got-total) > 1e-9*math.Max(1, math.Abs(total)) {
		return nil, fmt.Errorf("convert weights: target tokens receive %g of a total %g (they cover less text than the source tokens)", got, total)
	}
	return out, nil
}
