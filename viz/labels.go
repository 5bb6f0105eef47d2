package viz

import (
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"gonum.org/v1/plot"
)

// MaxLabelRunes is the longest token label drawn on an axis; longer labels are cut
// with "…".
const MaxLabelRunes = 14

// TokenLabel makes a token readable as an axis label: whitespace becomes visible
// (space ␣, newline ⏎, tab ⇥, carriage return ␍), as do the byte-level BPE markers of
// GPT-2 (Ġ space, Ċ newline, ĉ tab) and SentencePiece's ▁; other control characters
// become their Unicode control pictures; long labels are cut to MaxLabelRunes.
func TokenLabel(tok string) string {
	var b strings.Builder
	n := 0
	for _, r := range tok {
		if n == MaxLabelRunes {
			b.WriteRune('…')
			break
		}
		switch {
		case r == ' ' || r == 'Ġ' || r == '▁' || r == '\u00a0':
			r = '␣'
		case r == '\n' || r == 'Ċ':
			r = '⏎'
		case r == '\t' || r == 'ĉ':
			r = '⇥'
		case r == '\r' || r == 'č':
			r = '␍'
		case r < 0x20:
			r = 0x2400 + r
		case r == utf8.RuneError || !unicode.IsPrint(r):
			r = '�'
		}
		b.WriteRune(r)
		n++
	}
	if n == 0 {
		return "∅"
	}
	return b.String()
}

// labelStride returns the smallest step k such that drawing every k-th of n labels
// of height lineHeight (points) along an axis of the given length (points) never
// overlaps: k·(length/n) ≥ lineHeight.
func labelStride(n int, length, lineHeight float64) int {
	if n <= 0 || length <= 0 {
		return 1
	}
	cell := length / float64(n)
	k := int(math.Ceil(lineHeight/cell - 1e-9))
	if k < 1 {
		k = 1
	}
	// Prefer round steps (1, 2, 5, 10, 20, 50, ...) so labelled positions are easy to read.
	for s := 1; ; s *= 10 {
		for _, m := range []int{1, 2, 5} {
			if m*s >= k {
				return m * s
			}
		}
	}
}

// categoryTicks returns ticks at the centres of n cells along an axis from 0 to n,
// labelled with labels[i] for every stride-th cell (all others unlabelled and not
// drawn). With reverse, cell 0 is at the top (largest coordinate), as rows of a
// matrix are shown.
func categoryTicks(labels []string, n, stride int, reverse bool) []plot.Tick {
	var ticks []plot.Tick
	for i := 0; i < n; i += stride {
		v := float64(i) + 0.5
		if reverse {
			v = float64(n-i) - 0.5
		}
		l := ""
		if i < len(labels) {
			l = labels[i]
		}
		if l == "" {
			l = " "
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: l})
	}
	return ticks
}
