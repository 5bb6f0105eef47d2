package viz

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"sort"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// rankColors colour the edges of an attention graph by rank: strongest first.
var rankColors = []color.RGBA{
	{0xb2, 0x18, 0x2b, 0xff}, // 1st
	{0xef, 0x8a, 0x62, 0xff}, // 2nd
	{0x67, 0xa9, 0xcf, 0xff}, // 3rd
	{0x99, 0x99, 0x99, 0xff}, // further ranks
}

// AttentionGraph draws followup-attention's layer-by-layer attention graph
// (visualize_layer_wise_attention, seeds.md §1.9): one column of token nodes per layer
// boundary (0..len(layers)), and from every token of column l+1 an edge to each of its
// topK most attended tokens in column l (row i of layers[l]), coloured by rank and as
// wide as its weight. It serves raw attention (head mean per layer) and derived
// layer-pair matrices such as follow-up attention alike.
func AttentionGraph(layers []Matrix, tokens []string, topK int, title string) (*Figure, error) {
	if len(layers) == 0 {
		return nil, errors.New("attention graph: no layers")
	}
	n := layers[0].Rows
	for l, m := range layers {
		if m.Rows != n || m.Cols != n || len(m.Data) != n*n {
			return nil, fmt.Errorf("attention graph: layer %d is %d×%d, want %d×%d", l, m.Rows, m.Cols, n, n)
		}
	}
	if n == 0 {
		return nil, errors.New("attention graph: empty matrices")
	}
	if tokens != nil && len(tokens) != n {
		return nil, fmt.Errorf("attention graph: %d tokens for %d positions", len(tokens), n)
	}
	if topK < 1 {
		return nil, fmt.Errorf("attention graph: top-k %d, want at least 1", topK)
	}
	labels := readable(tokens, n, 0)
	rowH := vg.Length(math.Max(2, math.Min(14, 700/float64(n))))
	colW := vg.Length(math.Max(60, math.Min(140, 900/float64(len(layers)))))
	labW := maxLabelWidth(labels) + 10
	left, right, top, bottom := labW+10, labW+10, vg.Length(40), vg.Length(40)
	fig := &Figure{
		Width:  left + colW*vg.Length(len(layers)) + right,
		Height: top + rowH*vg.Length(n) + bottom,
	}
	fig.draw = func(c draw.Canvas) {
		c.SetColor(color.White)
		c.Fill(c.Rectangle.Path())
		x := func(l int) vg.Length { return c.Min.X + left + colW*vg.Length(l) }
		y := func(i int) vg.Length { return c.Max.Y - top - rowH*vg.Length(i) - rowH/2 }
		// Edges, weakest ranks first so the strongest lie on top.
		for rank := topK - 1; rank >= 0; rank-- {
			col := rankColors[min(rank, len(rankColors)-1)]
			for l, m := range layers {
				for i := range n {
					idx := topIndices(m.Data[i*n:(i+1)*n], topK)
					if rank >= len(idx) {
						continue
					}
					j := idx[rank]
					w := m.At(i, j)
					if !(w > 0) {
						continue
					}
					sty := draw.LineStyle{Color: col, Width: vg.Length(0.3 + 2.2*math.Min(1, w))}
					c.StrokeLine2(sty, x(l+1), y(i), x(l), y(j))
				}
			}
		}
		// Nodes.
		c.SetColor(color.Gray{0x44})
		r := vg.Length(math.Min(2, float64(rowH)/3))
		for l := 0; l <= len(layers); l++ {
			for i := range n {
				c.Fill(circle(x(l), y(i), r))
			}
		}
		// Token labels on both sides, thinned so they never overlap; layer names on top.
		stride := labelStride(n, float64(rowH)*float64(n), 9)
		sty := textStyle(sansFont, 7)
		sty.YAlign = draw.YCenter
		for i := 0; i < n; i += stride {
			sty.XAlign = draw.XRight
			c.FillText(sty, vg.Point{X: x(0) - 5, Y: y(i)}, labels[i])
			sty.XAlign = draw.XLeft
			c.FillText(sty, vg.Point{X: x(len(layers)) + 5, Y: y(i)}, labels[i])
		}
		head := textStyle(sansFont, 8)
		head.XAlign, head.YAlign = draw.XCenter, draw.YBottom
		for l := 0; l <= len(layers); l++ {
			name := "input"
			if l > 0 {
				name = fmt.Sprintf("after L%d", l-1)
			}
			c.FillText(head, vg.Point{X: x(l), Y: c.Max.Y - top + 6}, name)
		}
		t, fitted := fitTitle(textStyle(boldFont, 12), title, c.Size().X-8)
		t.XAlign, t.YAlign = draw.XCenter, draw.YTop
		c.FillText(t, vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: c.Max.Y - 4}, fitted)
		leg := textStyle(sansFont, 7)
		leg.YAlign = draw.YCenter
		lx := c.Min.X + left
		for k := 0; k < min(topK, len(rankColors)); k++ {
			c.StrokeLine2(draw.LineStyle{Color: rankColors[k], Width: 2}, lx, c.Min.Y+16, lx+18, c.Min.Y+16)
			name := fmt.Sprintf("rank %d", k+1)
			if k == len(rankColors)-1 && topK > len(rankColors) {
				name = fmt.Sprintf("rank %d–%d", k+1, topK)
			}
			c.FillText(leg, vg.Point{X: lx + 22, Y: c.Min.Y + 16}, name)
			lx += 22 + leg.Width(name) + 14
		}
	}
	return fig, nil
}

// topIndices returns the indices of the k largest finite values of v, largest first
// (ties: lower index first).
func topIndices(v []float64, k int) []int {
	idx := make([]int, 0, len(v))
	for i, x := range v {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return v[idx[a]] > v[idx[b]] })
	if len(idx) > k {
		idx = idx[:k]
	}
	return idx
}

func circle(x, y, r vg.Length) vg.Path {
	var p vg.Path
	p.Move(vg.Point{X: x + r, Y: y})
	p.Arc(vg.Point{X: x, Y: y}, r, 0, 2*math.Pi)
	p.Close()
	return p
}
