package human

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
)

// TokenRecord is a model token placed in the text (the original's
// get_model_tokenization record {t, i, l, c}): T the token text, I the model token's
// index, L its line and C its column, both counted from 1. A token made only of
// newlines is split into one record per newline, all with the same I.
type TokenRecord struct {
	T    string `json:"t"`
	I    int    `json:"i"`
	L    int    `json:"l"`
	C    int    `json:"c"`
	Span [2]int `json:"-"` // characters [start, end) of text
}

// Records places model tokens in text through their character offsets ([start, end)
// in Unicode code points, as package tokenizer reports them) and returns the records
// and, for every character of text, the record that holds it (-1: no token covers
// it). Tokens with an empty span (special tokens) have no record.
func Records(text string, offsets [][2]int) ([]TokenRecord, []int, error) {
	runes := []rune(text)
	lineOf := make([]int, len(runes)+1)
	colOf := make([]int, len(runes)+1)
	l, c := 1, 1
	for i, r := range runes {
		lineOf[i], colOf[i] = l, c
		if r == '\n' {
			l, c = l+1, 1
		} else {
			c++
		}
	}
	lineOf[len(runes)], colOf[len(runes)] = l, c
	charRec := make([]int, len(runes))
	for i := range charRec {
		charRec[i] = -1
	}
	var recs []TokenRecord
	for i, o := range offsets {
		s, e := o[0], o[1]
		if s < 0 || e < s || e > len(runes) {
			return nil, nil, fmt.Errorf("token %d has span [%d,%d) outside the %d characters of the text", i, s, e, len(runes))
		}
		if e == s {
			continue
		}
		tok := string(runes[s:e])
		if strings.Trim(tok, "\n") == "" {
			for k := s; k < e; k++ {
				charRec[k] = len(recs)
				recs = append(recs, TokenRecord{T: "\n", I: i, L: lineOf[k], C: colOf[k], Span: [2]int{k, k + 1}})
			}
			continue
		}
		for k := s; k < e; k++ {
			charRec[k] = len(recs)
		}
		recs = append(recs, TokenRecord{T: tok, I: i, L: lineOf[s], C: colOf[s], Span: [2]int{s, e}})
	}
	return recs, charRec, nil
}

// FollowupEvent is a look at one token record: Time in seconds, Duration in seconds.
type FollowupEvent struct {
	Record   int
	Time     float64
	Duration float64
}

// FollowupEvents turns character events into the events of the follow-up matrix as
// the original's get_followup_matrix: each event goes to the record holding its
// character; events with time ≤ 0 (never-looked-at markers) are dropped, and so are
// repeated (time, model token) pairs; times go from milliseconds to seconds; the
// result is sorted by time (stably). It returns the number of events on characters
// no token covers, which are dropped.
func FollowupEvents(text string, events []CharEvent, recs []TokenRecord, charRec []int) ([]FollowupEvent, int, error) {
	// index of the character at (line, column), both from 1
	lineStart := []int{0, 0}
	runes := []rune(text)
	for i, r := range runes {
		if r == '\n' {
			lineStart = append(lineStart, i+1)
		}
	}
	type key struct {
		t   float64
		tok int
	}
	seen := map[key]bool{}
	var out []FollowupEvent
	uncovered := 0
	for _, e := range events {
		if !(e.Time > 0) {
			continue
		}
		if e.Line < 1 || e.Line >= len(lineStart) || e.Column < 1 {
			return nil, 0, fmt.Errorf("event at line %d column %d is outside the text", e.Line, e.Column)
		}
		ci := lineStart[e.Line] + e.Column - 1
		end := len(runes)
		if e.Line+1 < len(lineStart) {
			end = lineStart[e.Line+1]
		}
		if ci >= end {
			return nil, 0, fmt.Errorf("event at line %d column %d is outside the text", e.Line, e.Column)
		}
		r := charRec[ci]
		if r < 0 {
			uncovered++
			continue
		}
		k := key{e.Time, recs[r].I}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, FollowupEvent{Record: r, Time: e.Time / 1000, Duration: e.TimeSpent})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time < out[j].Time })
	return out, uncovered, nil
}

// FollowupMatrix is the human follow-up (interaction) matrix over n records (the
// original's get_followup_matrix, Paltenghi et al., "Follow-up Attention: An Empirical
// Study of Developer and Neural Model Code Exploration"): for every ordered pair of
// events e₁ → e₂ with a = t₂ − (t₁ + d₁) and b = t₂ + d₂ − (t₁ + d₁),
//
//	F[r(e₁), r(e₂)] += ∫_a^b e^{−δx} dx = (e^{−δa} − e^{−δb})/δ   if a ≥ 0 (else 0),
//
// so looking at token j soon after finishing a look at token i makes F[i,j] large. An
// event paired with itself has a = −d ≤ 0 and adds nothing unless d = 0. The result
// is n×n row-major.
func FollowupMatrix(ctx context.Context, events []FollowupEvent, n int, decay float64) ([]float64, error) {
	m := make([]float64, n*n)
	c := -decay
	inv := 1 / c
	// events are sorted by start time, so partners with t₂ ≥ t₁ + d₁ form a suffix.
	for i, e1 := range events {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		x1end := e1.Time + e1.Duration
		j0 := sort.Search(len(events), func(k int) bool { return events[k].Time-x1end >= 0 })
		row := m[e1.Record*n : (e1.Record+1)*n]
		for _, e2 := range events[j0:] {
			a := e2.Time - x1end
			b := e2.Time + e2.Duration - x1end
			w := inv * (math.Exp(c*b) - math.Exp(c*a))
			if math.IsNaN(w) {
				continue
			}
			row[e2.Record] += w
		}
	}
	return m, nil
}

// Aggregate sums the rows and columns of the n×n matrix m by label (the original's
// aggregate_dim_tokens_to_line on both axes): the groups are the distinct labels in
// increasing order. It returns the k×k result and the sorted labels.
func Aggregate(m []float64, n int, labels []int) ([]float64, []int) {
	rows := AggregateColumns(m, n, n, labels)
	uniq := uniqueSorted(labels)
	k := len(uniq)
	// transpose trick: aggregate rows by summing row blocks
	pos := groupPos(labels, uniq)
	out := make([]float64, k*k)
	for i := 0; i < n; i++ {
		gi := pos[i]
		for j := 0; j < k; j++ {
			out[gi*k+j] += rows[i*k+j]
		}
	}
	return out, uniq
}

// AggregateColumns sums the columns of the r×n matrix m by label and returns r×k.
func AggregateColumns(m []float64, r, n int, labels []int) []float64 {
	uniq := uniqueSorted(labels)
	pos := groupPos(labels, uniq)
	k := len(uniq)
	out := make([]float64, r*k)
	for i := 0; i < r; i++ {
		for j := 0; j < n; j++ {
			out[i*k+pos[j]] += m[i*n+j]
		}
	}
	return out
}

func uniqueSorted(labels []int) []int {
	u := append([]int(nil), labels...)
	sort.Ints(u)
	out := u[:0]
	for i, v := range u {
		if i == 0 || v != u[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func groupPos(labels, uniq []int) []int {
	pos := make([]int, len(labels))
	for i, l := range labels {
		pos[i] = sort.SearchInts(uniq, l)
	}
	return pos
}

// NormalizeRows divides every row of the r×n matrix m by its sum (the original's
// norm_convert_row_to_prob, "turn_lines_into_prob_distrib"); a row summing to 0 stays
// 0 (the original leaves NaN there, which its later steps turn into 0).
func NormalizeRows(m []float64, r, n int) {
	for i := 0; i < r; i++ {
		row := m[i*n : (i+1)*n]
		var s float64
		for _, v := range row {
			s += v
		}
		if s == 0 {
			continue
		}
		for j := range row {
			row[j] /= s
		}
	}
}
