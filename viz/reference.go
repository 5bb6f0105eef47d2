package viz

import (
	"fmt"
	"image"
)

// ReferenceMode selects one of AttentionSpan's two reference-token figures.
type ReferenceMode int

const (
	// ReferenceOutline is visualize_attention: the scores in grey with the reference
	// cells (label 1) outlined in red.
	ReferenceOutline ReferenceMode = iota
	// ReferenceScores is visualize_scores_on_reference_map: the scores of reference
	// cells only (all others zeroed), in viridis.
	ReferenceScores
)

// IgnoreLabel marks a cell without a label (AttentionSpan's −100).
const IgnoreLabel = -100

// Reference draws AttentionSpan's reference-token figures (seeds.md §2.6): rows and
// columns whose labels are all IgnoreLabel are removed, the remaining block of scores
// is min–max normalised, and drawn per mode. labels has the shape of scores (row-major,
// values 1, 0 or IgnoreLabel); rowTokens and colTokens (optional) label the axes.
func Reference(scores Matrix, labels []int, rowTokens, colTokens []string, mode ReferenceMode, title string) (*Figure, error) {
	if len(labels) != scores.Rows*scores.Cols || len(scores.Data) != len(labels) {
		return nil, fmt.Errorf("reference: %d labels for a %d×%d score matrix", len(labels), scores.Rows, scores.Cols)
	}
	for i, l := range labels {
		if l != 0 && l != 1 && l != IgnoreLabel {
			return nil, fmt.Errorf("reference: label %d at (row %d, column %d); want 1, 0 or -100", l, i/scores.Cols, i%scores.Cols)
		}
	}
	var keepR, keepC []int
	for r := range scores.Rows {
		for c := range scores.Cols {
			if labels[r*scores.Cols+c] != IgnoreLabel {
				keepR = append(keepR, r)
				break
			}
		}
	}
	for c := range scores.Cols {
		for r := range scores.Rows {
			if labels[r*scores.Cols+c] != IgnoreLabel {
				keepC = append(keepC, c)
				break
			}
		}
	}
	if len(keepR) == 0 {
		return nil, fmt.Errorf("reference: every label is %d, nothing to draw", IgnoreLabel)
	}
	m := Matrix{Rows: len(keepR), Cols: len(keepC), Data: make([]float64, len(keepR)*len(keepC))}
	var outline []image.Point
	for i, r := range keepR {
		for j, c := range keepC {
			v := scores.At(r, c)
			l := labels[r*scores.Cols+c]
			if l == 1 {
				outline = append(outline, image.Pt(j, i))
			} else if mode == ReferenceScores {
				v = 0
			}
			m.Data[i*m.Cols+j] = v
		}
	}
	lo, hi := finiteRange(m.Data)
	for i, v := range m.Data {
		if hi > lo {
			m.Data[i] = (v - lo) / (hi - lo)
		} else {
			m.Data[i] = 0
		}
	}
	pick := func(toks []string, idx []int) []string {
		if toks == nil {
			out := make([]string, len(idx))
			for i, k := range idx {
				out[i] = fmt.Sprint(k)
			}
			return out
		}
		out := make([]string, len(idx))
		for i, k := range idx {
			out[i] = toks[k]
		}
		return out
	}
	if rowTokens != nil && len(rowTokens) != scores.Rows {
		return nil, fmt.Errorf("reference: %d row tokens for %d rows", len(rowTokens), scores.Rows)
	}
	if colTokens != nil && len(colTokens) != scores.Cols {
		return nil, fmt.Errorf("reference: %d column tokens for %d columns", len(colTokens), scores.Cols)
	}
	o := HeatmapOptions{
		Title: title, XLabel: "Key token", YLabel: "Query token",
		RowLabels: pick(rowTokens, keepR), ColLabels: pick(colTokens, keepC),
		VMin: 0, VMax: 1, ColorbarLabel: "min–max normalised score",
	}
	switch mode {
	case ReferenceOutline:
		o.Colormap = Gray
		o.Outline = outline
	case ReferenceScores:
		o.Colormap = Viridis
	default:
		return nil, fmt.Errorf("reference: unknown mode %d", mode)
	}
	return Heatmap(m, o)
}
