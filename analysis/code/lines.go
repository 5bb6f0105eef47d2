package code

import (
	"fmt"
	"math"
	"sort"
)

// Agg reduces the entries of one group (sum, mean, max).
type Agg func(xs []float64) float64

// Sum, Mean and Max are the usual reductions for AggregateToLines.
var (
	Sum Agg = func(xs []float64) float64 {
		var s float64
		for _, x := range xs {
			s += x
		}
		return s
	}
	Mean Agg = func(xs []float64) float64 {
		if len(xs) == 0 {
			return math.NaN()
		}
		return Sum(xs) / float64(len(xs))
	}
	Max Agg = func(xs []float64) float64 {
		m := math.Inf(-1)
		for _, x := range xs {
			m = max(m, x)
		}
		return m
	}
)

// AggregateToLines groups the entries of the rows×cols matrix m along dim (0 = rows,
// 1 = columns) by lines[k], the line of index k, and reduces each group with agg
// (attwizard aggregate_dim_tokens_to_line). Groups are ordered by their sorted
// distinct line values, so the result has as many entries along dim as distinct lines.
func AggregateToLines(m [][]float64, dim int, lines []int, agg Agg) ([][]float64, error) {
	rows := len(m)
	cols := 0
	if rows > 0 {
		cols = len(m[0])
	}
	for i, r := range m {
		if len(r) != cols {
			return nil, fmt.Errorf("aggregate to lines: row %d has %d entries, row 0 has %d", i, len(r), cols)
		}
	}
	size := rows
	if dim == 1 {
		size = cols
	} else if dim != 0 {
		return nil, fmt.Errorf("aggregate to lines: dim %d, want 0 or 1", dim)
	}
	if len(lines) != size {
		return nil, fmt.Errorf("aggregate to lines: %d line indices for a dimension of size %d", len(lines), size)
	}
	distinct := distinctSorted(lines)
	group := make(map[int]int, len(distinct))
	for g, l := range distinct {
		group[l] = g
	}
	if dim == 1 {
		out := make([][]float64, rows)
		buf := make([][]float64, len(distinct))
		for i, r := range m {
			for g := range buf {
				buf[g] = buf[g][:0]
			}
			for j, x := range r {
				g := group[lines[j]]
				buf[g] = append(buf[g], x)
			}
			out[i] = make([]float64, len(distinct))
			for g := range buf {
				out[i][g] = agg(buf[g])
			}
		}
		return out, nil
	}
	out := make([][]float64, len(distinct))
	col := make([]float64, 0, rows)
	for g, l := range distinct {
		out[g] = make([]float64, cols)
		for j := 0; j < cols; j++ {
			col = col[:0]
			for i := range m {
				if lines[i] == l {
					col = append(col, m[i][j])
				}
			}
			out[g][j] = agg(col)
		}
	}
	return out, nil
}

func distinctSorted(xs []int) []int {
	seen := make(map[int]bool, len(xs))
	var out []int
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	sort.Ints(out)
	return out
}

// TokensToLines is the comparator's convert_to_token_to_lines: tokens (which must
// concatenate to a prefix of text) are placed in text with 0-based lines, the square
// token×token matrix m is cut to T×T (T = number of tokens) and its columns are
// summed per line, giving T × (number of distinct lines).
func TokensToLines(m [][]float64, text string, tokens []string) ([][]float64, error) {
	lines, err := TokenLines(text, tokens)
	if err != nil {
		return nil, fmt.Errorf("tokens to lines: %w", err)
	}
	t := len(tokens)
	if len(m) < t {
		return nil, fmt.Errorf("tokens to lines: matrix has %d rows, fewer than the %d tokens", len(m), t)
	}
	cut := make([][]float64, t)
	for i := range cut {
		if len(m[i]) < t {
			return nil, fmt.Errorf("tokens to lines: row %d has %d columns, fewer than the %d tokens", i, len(m[i]), t)
		}
		cut[i] = m[i][:t]
	}
	return AggregateToLines(cut, 1, lines, Sum)
}

// KeepOnlyLinesSeenByModel cuts a token×line matrix to the tokens and lines of the
// prompt: rows [:nTokens], columns [:maxLine+1] where maxLine is the largest 0-based
// line index of the prompt tokens. With original set it reproduces followup-attention's
// off-by-one, columns [:maxLine], which drops the last line (spec §1.12).
func KeepOnlyLinesSeenByModel(m [][]float64, nTokens, maxLine int, original bool) ([][]float64, error) {
	keep := maxLine + 1
	if original {
		keep = maxLine
	}
	if nTokens > len(m) {
		return nil, fmt.Errorf("keep lines seen by model: %d tokens but the matrix has %d rows", nTokens, len(m))
	}
	out := make([][]float64, nTokens)
	for i := range out {
		if keep > len(m[i]) {
			return nil, fmt.Errorf("keep lines seen by model: %d lines but row %d has %d columns", keep, i, len(m[i]))
		}
		out[i] = append([]float64(nil), m[i][:keep]...)
	}
	return out, nil
}

// LinesFromOffsets returns the 0-based line of each token from its character span
// [start, end) in text (Hugging Face offsets): the number of newlines before its first
// character. It agrees with TokensWithColAndLine where both apply, and also serves
// tokenizers whose token strings are not substrings of the text (WordPiece,
// SentencePiece). A special token with an empty span gets the line of its start.
func LinesFromOffsets(text string, offsets [][2]int) ([]int, error) {
	chars := []rune(text)
	// before[c] = newlines among the first c characters.
	before := make([]int, len(chars)+1)
	for i, r := range chars {
		before[i+1] = before[i]
		if r == '\n' {
			before[i+1]++
		}
	}
	lines := make([]int, len(offsets))
	for i, o := range offsets {
		if o[0] < 0 || o[1] < o[0] || o[1] > len(chars) {
			return nil, fmt.Errorf("token %d has span [%d,%d) outside the %d characters of the text", i, o[0], o[1], len(chars))
		}
		lines[i] = before[o[0]]
	}
	return lines, nil
}
