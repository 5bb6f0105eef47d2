package viz

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Tableau colours (matplotlib's default cycle) and the named colours of the originals.
var (
	palette = []color.RGBA{
		{0x1f, 0x77, 0xb4, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xd6, 0x27, 0x28, 0xff},
		{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
		{0xbc, 0xbd, 0x22, 0xff}, {0x17, 0xbe, 0xcf, 0xff},
	}
	SteelBlue = color.RGBA{0x46, 0x82, 0xb4, 0xff}
	Coral     = color.RGBA{0xff, 0x7f, 0x50, 0xff}
	meanRed   = color.RGBA{0xd6, 0x27, 0x28, 0xff}
)

// Series is one named curve.
type Series struct {
	Name string
	X, Y []float64
}

// CurvesOptions configure a line plot.
type CurvesOptions struct {
	Title, XLabel, YLabel string
	// Legend is drawn when there are at most MaxLegend named series (default 12);
	// with more series, the curves are drawn thinner and unlabelled.
	MaxLegend int
	// LegendLeft puts the legend in the top-left corner (default top-right).
	LegendLeft bool
}

// Curves draws series as lines (crispiness curves, entropy through depth, ...).
func Curves(series []Series, o CurvesOptions) (*Figure, error) {
	if len(series) == 0 {
		return nil, errors.New("curves: no series")
	}
	p := newPlot(o.Title, o.XLabel, o.YLabel)
	maxLegend := o.MaxLegend
	if maxLegend == 0 {
		maxLegend = 12
	}
	width := vg.Points(1.5)
	if len(series) > maxLegend {
		width = 0.7
	}
	for i, s := range series {
		if len(s.X) != len(s.Y) {
			return nil, fmt.Errorf("curves: series %q has %d x and %d y values", s.Name, len(s.X), len(s.Y))
		}
		xy := make(plotter.XYs, len(s.X))
		for k := range s.X {
			xy[k].X, xy[k].Y = s.X[k], s.Y[k]
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return nil, fmt.Errorf("curves: series %q: %w", s.Name, err)
		}
		l.Color = palette[i%len(palette)]
		l.Width = width
		p.Add(l)
		if len(series) <= maxLegend && s.Name != "" {
			p.Legend.Add(s.Name, l)
		}
	}
	p.Legend.Top = true
	p.Legend.Left = o.LegendLeft
	p.Add(plotter.NewGrid())
	return single(p, 6*vg.Inch, 4*vg.Inch), nil
}

// single wraps one gonum plot as a Figure.
func single(p *plot.Plot, w, h vg.Length) *Figure {
	return &Figure{Width: w, Height: h, draw: func(c draw.Canvas) {
		fitPlotTitle(p, c.Size().X-8)
		p.Draw(c)
	}}
}

// HistPanel is one histogram with a dashed mean line.
type HistPanel struct {
	Values        []float64
	Bins          int // default 40
	Title, XLabel string
	Color         color.Color // default steel blue
}

// Histograms draws panels side by side, each a histogram (Bins bins) with a dashed red
// vertical line at the mean and a legend "Mean: x.xx", as the Text_to_Python notebook's
// attention_entropy_analysis.png (entropy "Lower = more focused", max weight "Higher =
// more confident").
func Histograms(panels []HistPanel, title string) (*Figure, error) {
	if len(panels) == 0 {
		return nil, errors.New("histograms: no panels")
	}
	plots := make([][]*plot.Plot, 1)
	for i, hp := range panels {
		if len(hp.Values) == 0 {
			return nil, fmt.Errorf("histograms: panel %d (%s) has no values", i, hp.Title)
		}
		bins := hp.Bins
		if bins <= 0 {
			bins = 40
		}
		p := newPlot(hp.Title, hp.XLabel, "Frequency")
		h, err := plotter.NewHist(plotter.Values(hp.Values), bins)
		if err != nil {
			return nil, fmt.Errorf("histograms: panel %d: %w", i, err)
		}
		h.FillColor = hp.Color
		if h.FillColor == nil {
			h.FillColor = SteelBlue
		}
		h.LineStyle.Color = color.White
		h.LineStyle.Width = 0.5
		p.Add(h)
		mean := 0.0
		for _, v := range hp.Values {
			mean += v
		}
		mean /= float64(len(hp.Values))
		_, _, _, ymax := h.DataRange()
		ml, _ := plotter.NewLine(plotter.XYs{{X: mean, Y: 0}, {X: mean, Y: ymax * 1.05}})
		ml.Color = meanRed
		ml.Width = 2
		ml.Dashes = []vg.Length{6, 3}
		p.Add(ml)
		p.Legend.Add(fmt.Sprintf("Mean: %.2f", mean), ml)
		p.Legend.Top = true
		plots[0] = append(plots[0], p)
	}
	w := vg.Length(len(panels)) * 7 * vg.Inch
	return tiled(plots, title, w, 5*vg.Inch), nil
}

// tiled lays plots out on a grid of tiles under an optional overall title.
func tiled(plots [][]*plot.Plot, title string, w, h vg.Length) *Figure {
	return &Figure{Width: w, Height: h, draw: func(c draw.Canvas) {
		c.SetColor(color.White)
		c.Fill(c.Rectangle.Path())
		if title != "" {
			sty, fitted := fitTitle(textStyle(boldFont, 14), title, c.Size().X-12)
			sty.XAlign, sty.YAlign = draw.XCenter, draw.YTop
			c.FillText(sty, vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: c.Max.Y - 6}, fitted)
			c = draw.Crop(c, 0, 0, 0, -max(28, sty.Height(fitted)+12))
		}
		t := draw.Tiles{Rows: len(plots), Cols: len(plots[0]), PadX: 16, PadY: 16, PadTop: 6, PadBottom: 6, PadLeft: 6, PadRight: 6}
		tileW := (c.Size().X-t.PadLeft-t.PadRight-t.PadX*vg.Length(t.Cols-1))/vg.Length(t.Cols) - 8
		for _, row := range plots {
			for _, p := range row {
				if p != nil {
					fitPlotTitle(p, tileW)
				}
			}
		}
		canvases := plot.Align(plots, t, c)
		for i := range plots {
			for j, p := range plots[i] {
				if p != nil {
					p.Draw(canvases[i][j])
				}
			}
		}
	}}
}

// Received draws the attention each key position receives (column sums of an
// attention matrix, seeds.md §3.3 panel 10) as bars, with token labels under the bars
// thinned so they never overlap.
func Received(values []float64, tokens []string, title string) (*Figure, error) {
	return Bars(values, tokens, BarsOptions{Title: title, XLabel: "Key position", YLabel: "Attention received (column sum)"})
}

// BarsOptions configure a bar chart.
type BarsOptions struct {
	Title, XLabel, YLabel string
	// PositionTicks: the labels name their positions (HeatmapOptions.PositionTicks).
	PositionTicks bool
}

// Bars draws one bar per value with labels (tokens, layer names; nil: numbered) under
// the bars, thinned so they never overlap.
func Bars(values []float64, tokens []string, o BarsOptions) (*Figure, error) {
	n := len(values)
	if n == 0 {
		return nil, errors.New("bars: no values")
	}
	if tokens != nil && len(tokens) != n {
		return nil, fmt.Errorf("bars: %d labels for %d values", len(tokens), n)
	}
	p := newPlot(o.Title, o.XLabel, o.YLabel)
	p.Add(&bars{v: values, color: SteelBlue})
	p.X.Min, p.X.Max = 0, float64(n)
	p.X.Padding = 0
	p.Y.Min = min(0, slices.Min(values))
	p.X.Tick.Label.Rotation = math.Pi / 2
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	labels := readable(tokens, n, 0)
	w := vg.Length(math.Min(math.Max(float64(n)*12, 360), 900)) + 80
	h := 4*vg.Inch + maxLabelWidth(labels)
	fig := &Figure{Width: w, Height: h}
	fig.draw = func(c draw.Canvas) {
		lineH := float64(p.X.Tick.Label.Font.Size) * 1.25
		prefix := func(s int) int { // numbered's stride: 1 keeps the labels as they are
			if o.PositionTicks {
				return 1
			}
			return s
		}
		s0 := labelStride(n, float64(c.Size().X)*0.8, lineH)
		p.X.Tick.Marker = fixedTicks(categoryTicks(numbered(labels, prefix(s0), 0), n, s0, false))
		da := p.DataCanvas(c)
		s := labelStride(n, float64(da.Size().X), lineH)
		p.X.Tick.Marker = fixedTicks(categoryTicks(numbered(labels, prefix(s), 0), n, s, false))
		fitPlotTitle(p, c.Size().X-8)
		p.Draw(c)
	}
	return fig, nil
}

// bars draws one filled bar per value over [i+0.1, i+0.9].
type bars struct {
	v     []float64
	color color.Color
}

func (b *bars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	c.SetColor(b.color)
	for i, v := range b.v {
		if math.IsNaN(v) {
			continue
		}
		x0, x1 := trX(float64(i)+0.1), trX(float64(i)+0.9)
		y0, y1 := trY(0), trY(v)
		var path vg.Path
		path.Move(vg.Point{X: x0, Y: y0})
		path.Line(vg.Point{X: x1, Y: y0})
		path.Line(vg.Point{X: x1, Y: y1})
		path.Line(vg.Point{X: x0, Y: y1})
		path.Close()
		c.Fill(path)
	}
}

func (b *bars) DataRange() (xmin, xmax, ymin, ymax float64) {
	lo, hi := finiteRange(b.v)
	return 0, float64(len(b.v)), min(lo, 0), max(hi, 0)
}
