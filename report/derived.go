package report

import (
	"fmt"

	"github.com/attnscope/attnscope/viz"
)

// DerivedMatrix selects a matrix from a derive pass's output of the given shape: a
// 2-D output as is, a 3-D [layer, N, M] output's layer, a 4-D [layer, head, N, M]
// output's layer and head (or head mean with MeanHeads). layer < 0 selects the last
// layer. It returns a description of the selection for titles.
func DerivedMatrix(vals []float64, shape []int, layer, head int) (viz.Matrix, string, error) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if n != len(vals) || len(shape) < 2 || len(shape) > 4 {
		return viz.Matrix{}, "", fmt.Errorf("derived output of shape %v: a 2-D, 3-D [layer, N, M] or 4-D [layer, head, N, M] array expected", shape)
	}
	switch len(shape) {
	case 2:
		m, err := viz.NewMatrix(shape[0], shape[1], vals)
		return m, "", err
	case 3:
		if layer < 0 {
			layer = shape[0] - 1
		}
		if layer >= shape[0] {
			return viz.Matrix{}, "", fmt.Errorf("layer %d out of range: the output has layers 0..%d", layer, shape[0]-1)
		}
		sz := shape[1] * shape[2]
		m, err := viz.NewMatrix(shape[1], shape[2], vals[layer*sz:(layer+1)*sz])
		return m, fmt.Sprintf("layer %d", layer), err
	}
	L, H, R, C := shape[0], shape[1], shape[2], shape[3]
	if layer < 0 {
		layer = L - 1
	}
	if layer >= L {
		return viz.Matrix{}, "", fmt.Errorf("layer %d out of range: the output has layers 0..%d", layer, L-1)
	}
	sz := R * C
	if head == MeanHeads {
		out := make([]float64, sz)
		for h := range H {
			for i, v := range vals[(layer*H+h)*sz : (layer*H+h+1)*sz] {
				out[i] += v / float64(H)
			}
		}
		m, err := viz.NewMatrix(R, C, out)
		return m, fmt.Sprintf("layer %d, mean of heads", layer), err
	}
	if head < 0 || head >= H {
		return viz.Matrix{}, "", fmt.Errorf("head %d out of range: the output has heads 0..%d", head, H-1)
	}
	m, err := viz.NewMatrix(R, C, vals[(layer*H+head)*sz:(layer*H+head+1)*sz])
	return m, fmt.Sprintf("layer %d, head %d", layer, head), err
}

// UnitLabels names the units of a Jensen–Shannon matrix with n rows: "L<l>H<h>" when
// n = layers·heads, "L<l>" when n = layers, else the positions.
func UnitLabels(n, layers, heads int) []string {
	out := make([]string, n)
	for i := range out {
		switch {
		case layers > 0 && heads > 0 && n == layers*heads:
			out[i] = fmt.Sprintf("L%dH%d", i/heads, i%heads)
		case n == layers:
			out[i] = fmt.Sprintf("L%d", i)
		default:
			out[i] = fmt.Sprint(i)
		}
	}
	return out
}

// CurvesFromDerived turns a derive output of crispiness curves into series: shape
// [units, P] or [layer, head, P]; x is P evenly spaced points on [0, 1).
func CurvesFromDerived(vals []float64, shape []int) ([]viz.Series, error) {
	var units, p int
	var name func(i int) string
	switch len(shape) {
	case 2:
		units, p = shape[0], shape[1]
		name = func(i int) string { return fmt.Sprintf("unit %d", i) }
	case 3:
		units, p = shape[0]*shape[1], shape[2]
		h := shape[1]
		name = func(i int) string { return fmt.Sprintf("L%dH%d", i/h, i%h) }
	default:
		return nil, fmt.Errorf("crispiness output of shape %v: [units, points] or [layer, head, points] expected", shape)
	}
	if units*p != len(vals) || p == 0 {
		return nil, fmt.Errorf("crispiness output of shape %v holds %d values", shape, len(vals))
	}
	var s []viz.Series
	for u := range units {
		x := make([]float64, p)
		for i := range x {
			x[i] = float64(i) / float64(p)
		}
		s = append(s, viz.Series{Name: name(u), X: x, Y: vals[u*p : (u+1)*p]})
	}
	return s, nil
}

// SlicesColumns is the number of columns of a grid of slices (followup-attention's
// visualize_slices_of_3D_tensor uses at most 5).
const SlicesColumns = 5

// SlicesFigure draws every slice of a derive pass's 3-D output [slice, N, M] on a grid
// of at most SlicesColumns columns, or a 4-D output [layer, head, N, M] as layers ×
// heads, each slice scaled to its own maximum or clip percentile (followup-attention
// clips at 99.9 per slice).
func SlicesFigure(vals []float64, shape []int, pass, id string, clip float64) (*viz.Figure, error) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if n != len(vals) || (len(shape) != 3 && len(shape) != 4) {
		return nil, fmt.Errorf("pass %s, sample %s: output of shape %v, a 3-D [slice, N, M] or 4-D [layer, head, N, M] array expected", pass, id, shape)
	}
	title := fmt.Sprintf("%s: %s, every slice", id, pass)
	if len(shape) == 4 {
		L, H, R, C := shape[0], shape[1], shape[2], shape[3]
		units := make([][]viz.Matrix, L)
		for l := range L {
			for h := range H {
				off := (l*H + h) * R * C
				m, _ := viz.NewMatrix(R, C, vals[off:off+R*C])
				units[l] = append(units[l], viz.Downsample(m, gridThumb))
			}
		}
		return viz.Grid(units, viz.GridOptions{Title: title, ClipPercentile: clip})
	}
	S, R, C := shape[0], shape[1], shape[2]
	cols := min(S, SlicesColumns)
	var units [][]viz.Matrix
	var rowNames []string
	for k := range S {
		if k%cols == 0 {
			units = append(units, nil)
			rowNames = append(rowNames, fmt.Sprintf("%d–%d", k, min(k+cols, S)-1))
		}
		m, _ := viz.NewMatrix(R, C, vals[k*R*C:(k+1)*R*C])
		units[len(units)-1] = append(units[len(units)-1], viz.Downsample(m, gridThumb))
	}
	colNames := make([]string, cols)
	for c := range colNames {
		colNames[c] = fmt.Sprintf("+%d", c)
	}
	return viz.Grid(units, viz.GridOptions{Title: title, RowNames: rowNames, ColNames: colNames, ClipPercentile: clip, Unit: "slice"})
}
