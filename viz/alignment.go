package viz

import (
	"errors"
	"fmt"
	"math"
)

// AlignmentMax is plot_attention's max_src = max_trg = 30: at most this many source
// columns and target rows are drawn.
const AlignmentMax = 30

// Alignment draws the source × target attention of a seq2seq generation as the
// Text_to_Python notebook's plot_attention does (seeds.md §5.4): with
// T = min(len(trg), rows, 30) and S = min(len(src), cols, 30), the heatmap of
// m[:T, :S], x = source tokens ("Source (Docstring)"), y = generated tokens
// ("Generated (Code)"), YlOrRd from 0 to the drawn maximum, cell lines, x labels
// rotated 45°. Callers that want rows and tokens to match exactly check it first.
func Alignment(m Matrix, src, trg []string, title string) (*Figure, error) {
	if len(m.Data) != m.Rows*m.Cols {
		return nil, fmt.Errorf("alignment: matrix %d×%d has %d values", m.Rows, m.Cols, len(m.Data))
	}
	T := min(len(trg), m.Rows, AlignmentMax)
	S := min(len(src), m.Cols, AlignmentMax)
	if T == 0 || S == 0 {
		return nil, errors.New("alignment: nothing to draw (no source or target tokens, or an empty matrix)")
	}
	sub := Matrix{Rows: T, Cols: S, Data: make([]float64, T*S)}
	vmax := math.Inf(-1)
	for i := range T {
		copy(sub.Data[i*S:(i+1)*S], m.Data[i*m.Cols:i*m.Cols+S])
		for _, v := range sub.Data[i*S : (i+1)*S] {
			if !math.IsNaN(v) {
				vmax = max(vmax, v)
			}
		}
	}
	if !(vmax > 0) || math.IsInf(vmax, 0) {
		vmax = 1
	}
	return Heatmap(sub, HeatmapOptions{
		Title: title, XLabel: "Source (Docstring)", YLabel: "Generated (Code)",
		RowLabels: trg[:T], ColLabels: src[:S], Colormap: YlOrRd,
		VMin: 0, VMax: vmax, CellLines: true, XLabelRotation: math.Pi / 4,
	})
}
