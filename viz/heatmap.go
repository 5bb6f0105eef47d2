package viz

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// HeatmapOptions configure a matrix heatmap. The zero value draws an unlabelled
// heatmap in Reds scaled from 0 to the matrix maximum.
type HeatmapOptions struct {
	Title          string
	XLabel, YLabel string   // axis titles (defaults "Key (attended to)", "Query (attending)")
	RowLabels      []string // one per row (e.g. query tokens); made readable with TokenLabel
	ColLabels      []string // one per column (e.g. key tokens)
	Colormap       *Colormap
	// VMin and VMax fix the colour scale; when both are 0 the scale runs from
	// min(0, data minimum) to the data maximum (or its ClipPercentile-th percentile).
	VMin, VMax float64
	// ClipPercentile, when in (0, 100), clips the top of the colour scale at that
	// percentile of the values (followup-attention clips grids at 99.9).
	ClipPercentile float64
	// PromptLen > 0 outlines the prompt block (rows and columns 0..PromptLen−1) of a
	// generation.
	PromptLen int
	// Outline lists cells to outline in red (AttentionSpan's reference cells), in
	// (column, row) coordinates.
	Outline []image.Point
	// ColorbarLabel is written beside the colour bar (default "attention weight").
	ColorbarLabel string
	// CellLines draws thin white lines between cells (seaborn's linewidths=0.5).
	CellLines bool
	// XLabelRotation is the angle of the column labels in radians, counter-clockwise
	// (0: the default, vertical labels, π/2).
	XLabelRotation float64
	// PositionTicks: the labels already name their positions (e.g. "120–131" for a
	// pooled block of tokens), so labels thinned out are not prefixed by their index.
	PositionTicks bool
	// RowStart and ColStart are the token positions of the first row and column (a
	// window of a larger matrix): unlabelled axes and the position prefixes of
	// thinned labels count from them.
	RowStart, ColStart int
}

// colourScale returns the colour scale limits of values under o.
func (o *HeatmapOptions) colourScale(v []float64) (lo, hi float64) {
	if o.VMin != 0 || o.VMax != 0 {
		return o.VMin, o.VMax
	}
	lo, hi = finiteRange(v)
	lo = min(lo, 0)
	if o.ClipPercentile > 0 && o.ClipPercentile < 100 {
		hi = percentile(v, o.ClipPercentile)
	}
	if hi <= lo {
		hi = lo + 1
	}
	return lo, hi
}

// Heatmap draws m (rows = queries, columns = keys, row 0 at the top) with token labels
// on both axes (thinned so they never overlap), a colour bar, and optionally the
// prompt block or reference cells outlined. It serves token × token attention, the
// source × target alignment of a seq2seq model and Jensen–Shannon matrices.
func Heatmap(m Matrix, o HeatmapOptions) (*Figure, error) {
	if m.Rows == 0 || m.Cols == 0 {
		return nil, errors.New("heatmap: empty matrix")
	}
	if len(m.Data) != m.Rows*m.Cols {
		return nil, fmt.Errorf("heatmap: matrix %d×%d has %d values", m.Rows, m.Cols, len(m.Data))
	}
	if o.RowLabels != nil && len(o.RowLabels) != m.Rows {
		return nil, fmt.Errorf("heatmap: %d row labels for %d rows", len(o.RowLabels), m.Rows)
	}
	if o.ColLabels != nil && len(o.ColLabels) != m.Cols {
		return nil, fmt.Errorf("heatmap: %d column labels for %d columns", len(o.ColLabels), m.Cols)
	}
	if o.PromptLen < 0 || o.PromptLen > min(m.Rows, m.Cols) {
		return nil, fmt.Errorf("heatmap: prompt length %d outside 0..%d", o.PromptLen, min(m.Rows, m.Cols))
	}
	for _, p := range o.Outline {
		if p.X < 0 || p.X >= m.Cols || p.Y < 0 || p.Y >= m.Rows {
			return nil, fmt.Errorf("heatmap: outlined cell (row %d, column %d) outside the %d×%d matrix", p.Y, p.X, m.Rows, m.Cols)
		}
	}
	if o.Colormap == nil {
		o.Colormap = Reds
	}
	if o.XLabel == "" && o.YLabel == "" {
		o.XLabel, o.YLabel = "Key (attended to)", "Query (attending)"
	}
	if o.ColorbarLabel == "" {
		o.ColorbarLabel = "attention weight"
	}
	vmin, vmax := o.colourScale(m.Data)
	rowLabels := readable(o.RowLabels, m.Rows, o.RowStart)
	colLabels := readable(o.ColLabels, m.Cols, o.ColStart)

	// Square cells of 16 pt up to 40 cells, then the longer side is 640 pt.
	cell := math.Min(16, 640/float64(max(m.Rows, m.Cols)))
	areaW := vg.Length(math.Max(cell*float64(m.Cols), 120))
	areaH := vg.Length(math.Max(cell*float64(m.Rows), 120))
	yLabW := maxLabelWidth(rowLabels) + 40
	xLabH := maxLabelWidth(colLabels) + 40
	if m.Rows > 45 {
		yLabW += 20 // room for the position prefix of thinned labels
	}
	if m.Cols > 45 {
		xLabH += 20
	}
	const cbW = 80
	fig := &Figure{
		Width:  max(areaW+yLabW, min(textStyle(boldFont, 12).Width(o.Title)+24, maxTitleWidth)) + cbW + 20,
		Height: areaH + xLabH + 40,
	}
	fig.draw = func(c draw.Canvas) {
		c.SetColor(color.White)
		c.Fill(c.Rectangle.Path())
		main := draw.Crop(c, 0, -cbW, 0, 0)
		p := heatmapPlot(m, o, vmin, vmax, rowLabels, colLabels, main)
		fitPlotTitle(p, main.Size().X-8)
		p.Draw(main)
		da := p.DataCanvas(main)
		drawColorbar(c, da.Min.Y, da.Max.Y, main.Max.X+12, vmin, vmax, o.Colormap, o.ColorbarLabel)
	}
	return fig, nil
}

// heatmapPlot builds the gonum plot of a heatmap whose label strides fit canvas c.
func heatmapPlot(m Matrix, o HeatmapOptions, vmin, vmax float64, rowLabels, colLabels []string, c draw.Canvas) *plot.Plot {
	p := newPlot(o.Title, o.XLabel, o.YLabel)
	p.Add(&matrixPlotter{m: m, vmin: vmin, vmax: vmax, cmap: o.Colormap})
	if o.PromptLen > 0 {
		p.Add(&cellOutline{rows: m.Rows, cells: []image.Rectangle{image.Rect(0, 0, o.PromptLen, o.PromptLen)},
			style: draw.LineStyle{Color: color.RGBA{0x1f, 0x77, 0xb4, 0xff}, Width: vg.Points(1.5)}})
	}
	if len(o.Outline) > 0 {
		cells := make([]image.Rectangle, len(o.Outline))
		for i, pt := range o.Outline {
			cells[i] = image.Rect(pt.X, pt.Y, pt.X+1, pt.Y+1)
		}
		p.Add(&cellOutline{rows: m.Rows, cells: cells, style: draw.LineStyle{Color: color.RGBA{0xe0, 0x10, 0x10, 0xff}, Width: vg.Points(1.2)}})
	}
	p.X.Min, p.X.Max = 0, float64(m.Cols)
	p.Y.Min, p.Y.Max = 0, float64(m.Rows)
	p.X.Padding, p.Y.Padding = 0, 0
	if o.CellLines {
		p.Add(&cellLines{rows: m.Rows, cols: m.Cols, style: draw.LineStyle{Color: color.White, Width: vg.Points(0.5)}})
	}
	rot := o.XLabelRotation
	if rot <= 0 || rot > math.Pi/2 {
		rot = math.Pi / 2
	}
	p.X.Tick.Label.Rotation = rot
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	if rot < math.Pi/2 {
		p.X.Tick.Label.YAlign = draw.YTop
	}
	p.X.Tick.Length, p.Y.Tick.Length = 2, 2
	lineH := float64(p.X.Tick.Label.Font.Size) * 1.25
	// Rotated by θ, neighbouring labels stay apart when their spacing is at least
	// lineH/sin θ.
	xLineH := lineH / math.Sin(rot)
	setTicks := func(xStride, yStride int) {
		xs, ys := xStride, yStride
		if o.PositionTicks {
			xs, ys = 1, 1 // numbered keeps the labels as they are
		}
		p.X.Tick.Marker = fixedTicks(categoryTicks(numbered(colLabels, xs, o.ColStart), m.Cols, xStride, false))
		p.Y.Tick.Marker = fixedTicks(categoryTicks(numbered(rowLabels, ys, o.RowStart), m.Rows, yStride, true))
	}
	// First guess from the canvas size, then refine with the real data area (which can
	// only grow when fewer labels are drawn), so labels never overlap.
	xs := labelStride(m.Cols, float64(c.Size().X)*0.7, xLineH)
	ys := labelStride(m.Rows, float64(c.Size().Y)*0.7, lineH)
	setTicks(xs, ys)
	da := p.DataCanvas(c)
	setTicks(labelStride(m.Cols, float64(da.Size().X), xLineH), labelStride(m.Rows, float64(da.Size().Y), lineH))
	return p
}

// numbered prefixes each label with its position (start + index) when labels are
// thinned (stride > 1), so a reader can still locate a token: "128 ␣return".
func numbered(labels []string, stride, start int) []string {
	if stride <= 1 {
		return labels
	}
	out := make([]string, len(labels))
	for i, l := range labels {
		if i%stride == 0 {
			out[i] = fmt.Sprintf("%d %s", start+i, l)
		}
	}
	return out
}

// fixedTicks is a plot.Ticker that returns a fixed list of ticks.
type fixedTicks []plot.Tick

func (t fixedTicks) Ticks(min, max float64) []plot.Tick { return t }

// readable returns TokenLabel of each label, or the position numbers (from start) when
// labels is nil.
func readable(labels []string, n, start int) []string {
	out := make([]string, n)
	for i := range out {
		if labels == nil {
			out[i] = fmt.Sprint(start + i)
		} else {
			out[i] = TokenLabel(labels[i])
		}
	}
	return out
}

// maxLabelWidth returns the width in points of the widest tick label (8 pt DejaVu Sans).
func maxLabelWidth(labels []string) vg.Length {
	sty := textStyle(sansFont, 8)
	var w vg.Length
	for _, l := range labels {
		w = max(w, sty.Width(l))
	}
	return w
}

// drawColorbar draws a vertical colour bar from y0 to y1 at x with tick labels on its
// right and a rotated caption.
func drawColorbar(c draw.Canvas, y0, y1, x vg.Length, vmin, vmax float64, cmap *Colormap, caption string) {
	const barW = 10
	rect := vg.Rectangle{Min: vg.Point{X: x, Y: y0}, Max: vg.Point{X: x + barW, Y: y1}}
	w, h := rasterSize(c.Canvas, rect.Size(), 1, 256)
	grad := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		col := cmap.At(1 - (float64(y)+0.5)/float64(h))
		for x := range w {
			grad.SetRGBA(x, y, col)
		}
	}
	c.DrawImage(rect, grad)
	c.StrokeLines(draw.LineStyle{Color: color.Black, Width: 0.5},
		[]vg.Point{rect.Min, {X: rect.Max.X, Y: rect.Min.Y}, rect.Max, {X: rect.Min.X, Y: rect.Max.Y}, rect.Min})
	sty := textStyle(sansFont, 7)
	sty.YAlign = draw.YCenter
	var labW vg.Length
	for _, t := range (plot.DefaultTicks{}).Ticks(vmin, vmax) {
		if t.IsMinor() || t.Value < vmin || t.Value > vmax {
			continue
		}
		y := y0 + (y1-y0)*vg.Length((t.Value-vmin)/(vmax-vmin))
		c.StrokeLine2(draw.LineStyle{Color: color.Black, Width: 0.5}, x+barW, y, x+barW+3, y)
		c.FillText(sty, vg.Point{X: x + barW + 5, Y: y}, t.Label)
		labW = max(labW, sty.Width(t.Label))
	}
	cap := textStyle(sansFont, 8)
	cap.Rotation = -math.Pi / 2
	cap.XAlign = draw.XCenter
	cap.YAlign = draw.YBottom
	c.FillText(cap, vg.Point{X: x + barW + 10 + labW, Y: (y0 + y1) / 2}, caption)
}
