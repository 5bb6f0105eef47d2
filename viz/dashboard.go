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

// DashboardData holds the series of the transformer attention-analysis dashboard
// (seeds.md §3.3: the autoencoder code base's 12-panel
// comprehensive_attention_analysis.png). Optional parts are nil; their panels then say
// that the data is missing instead of crashing as the original does.
type DashboardData struct {
	Title                          string
	LayerNames                     []string // short names, one per layer
	InMean, OutMean, InStd, OutStd []float64
	Transform                      []float64 // |out_mean − in_mean|
	Pearson                        float64
	HasPearson                     bool
	HeadEntropy, HeadSparsity      [][]float64 // [weight capture][head], batch element 0
	WeightNames                    []string    // one per weight capture
	HiddenNorm                     []float64
	PCACumulative                  []float64
	LayerComparison                [][]float64 // layers × [in_mean, in_std, out_mean, out_std, T], normalised
	Received                       [][]float64 // first three weight captures
	SummaryNames                   []string
	SummaryValues                  []float64
}

var (
	purple  = color.RGBA{0x80, 0x00, 0x80, 0xff}
	green   = color.RGBA{0x00, 0x80, 0x00, 0xff}
	skyblue = color.RGBA{0x87, 0xce, 0xeb, 0xff}
)

// Dashboard draws the 12 panels on a 3 × 4 grid: layer-wise mean activations, their
// distribution, input–output correlation, transformation magnitude, representation
// diversity by depth, attention weight properties (entropy vs sparsity), hidden-state
// norm, effective dimensionality (PCA), layer property comparison, attention by
// sequence position, head entropy distribution and summary metrics.
func Dashboard(d DashboardData) (*Figure, error) {
	n := len(d.InMean)
	if n == 0 {
		return nil, errors.New("dashboard: no layers")
	}
	for _, s := range [][]float64{d.OutMean, d.InStd, d.OutStd, d.Transform} {
		if len(s) != n {
			return nil, fmt.Errorf("dashboard: per-layer series of lengths %d and %d", n, len(s))
		}
	}
	if len(d.LayerNames) != n {
		return nil, fmt.Errorf("dashboard: %d layer names for %d layers", len(d.LayerNames), n)
	}
	idx := make([]float64, n)
	for i := range idx {
		idx[i] = float64(i)
	}
	var panels []*plot.Plot

	// 1. Layer-wise mean activations.
	p := newPlot("Layer-wise Mean Activations", "Layer", "Mean Activation")
	addBars(p, idx, d.InMean, -0.2, 0.4, palette[0], "Input")
	addBars(p, idx, d.OutMean, 0.2, 0.4, palette[1], "Output")
	p.X.Tick.Marker = fixedTicks(categoryTicksAt(d.LayerNames, labelStride(n, 220, 10)))
	p.Legend.Top = true
	legendRoom(p, append(slices.Clone(d.InMean), d.OutMean...))
	panels = append(panels, p)

	// 2. Activation distribution (density histograms, 20 bins).
	p = newPlot("Activation Distribution", "Activation Value", "Density")
	for i, s := range [][]float64{d.InMean, d.OutMean} {
		h, err := plotter.NewHist(plotter.Values(s), 20)
		if err == nil {
			h.Normalize(1)
			c := palette[i]
			h.FillColor = color.NRGBA{c.R, c.G, c.B, 0xb0}
			h.LineStyle.Width = 0
			p.Add(h)
			p.Legend.Add([]string{"Inputs", "Outputs"}[i], h)
			if _, _, _, ymax := h.DataRange(); ymax > p.Y.Max {
				p.Y.Max = ymax
			}
		}
	}
	p.Legend.Top = true
	p.Y.Min, p.Y.Max = 0, p.Y.Max*1.4 // room above the bars for the legend
	panels = append(panels, p)

	// 3. Input–output correlation.
	p = newPlot("Input-Output Correlation", "Input Mean", "Output Mean")
	sc, _ := plotter.NewScatter(xys(d.InMean, d.OutMean))
	sc.GlyphStyle.Color = palette[0]
	sc.GlyphStyle.Shape = draw.CircleGlyph{}
	p.Add(sc)
	if d.HasPearson {
		p.Add(&cornerText{text: fmt.Sprintf("r = %.3f", d.Pearson)})
	}
	panels = append(panels, p)

	// 4. Transformation magnitude.
	panels = append(panels, linePanel("Transformation Magnitude", "Layer Index", "|Output - Input|", idx, d.Transform, palette[0]))
	// 5. Representation diversity by depth.
	panels = append(panels, linePanel("Representation Diversity by Depth", "Layer Depth", "Output Std", idx, d.OutStd, purple))

	// 6. Attention weight properties.
	if len(d.HeadEntropy) == 0 {
		panels = append(panels, messagePanel("Attention Weight Stats", "No attention weights\navailable"))
	} else {
		p = newPlot("Attention Weight Properties", "Average Entropy", "Sparsity")
		var e, s []float64
		for i := range d.HeadEntropy {
			e = append(e, d.HeadEntropy[i]...)
			s = append(s, d.HeadSparsity[i]...)
		}
		sc, _ := plotter.NewScatter(xys(e, s))
		sc.GlyphStyle.Color = palette[0]
		sc.GlyphStyle.Shape = draw.CircleGlyph{}
		p.Add(sc)
		panels = append(panels, p)
	}

	// 7. Hidden-state norm.
	if len(d.HiddenNorm) == 0 {
		panels = append(panels, messagePanel("Hidden State Evolution", "No hidden state\ndata available"))
	} else {
		panels = append(panels, linePanel("Hidden State Norm Evolution", "Layer Index", "L2 Norm", seq(len(d.HiddenNorm), 0), d.HiddenNorm, green))
	}

	// 8. Effective dimensionality.
	if len(d.PCACumulative) == 0 {
		panels = append(panels, messagePanel("Dimensionality Analysis", "Insufficient data\nfor PCA"))
	} else {
		p = linePanel("Effective Dimensionality", "Principal Components", "Cumulative Explained Variance", seq(len(d.PCACumulative), 1), d.PCACumulative, palette[0])
		k := float64(len(d.PCACumulative))
		for _, g := range []struct {
			y float64
			c color.RGBA
			n string
		}{{0.9, palette[3], "90%"}, {0.95, palette[2], "95%"}} {
			l, _ := plotter.NewLine(plotter.XYs{{X: 1, Y: g.y}, {X: k, Y: g.y}})
			l.Color = g.c
			l.Dashes = []vg.Length{5, 3}
			p.Add(l)
			p.Legend.Add(g.n, l)
		}
		p.Legend.Top = false
		p.Legend.Left = false
		panels = append(panels, p)
	}

	// 9. Layer property comparison.
	if len(d.LayerComparison) != n {
		return nil, fmt.Errorf("dashboard: layer comparison has %d rows for %d layers", len(d.LayerComparison), n)
	}
	cmp := Matrix{Rows: 5, Cols: n, Data: make([]float64, 5*n)}
	for k, row := range d.LayerComparison {
		if len(row) != 5 {
			return nil, fmt.Errorf("dashboard: layer comparison row %d has %d values, want 5", k, len(row))
		}
		for c, v := range row {
			cmp.Data[c*n+k] = v
		}
	}
	p = newPlot("Layer Property Comparison", "Layer", "Property")
	p.Add(&matrixPlotter{m: cmp, vmin: 0, vmax: 1, cmap: Viridis})
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, float64(n), 0, 5
	p.X.Padding, p.Y.Padding = 0, 0
	short := make([]string, n)
	for i := range short {
		short[i] = fmt.Sprintf("L%d", i)
	}
	p.X.Tick.Marker = fixedTicks(categoryTicks(short, n, labelStride(n, 220, 14), false))
	p.Y.Tick.Marker = fixedTicks(categoryTicks([]string{"In Mean", "In Std", "Out Mean", "Out Std", "Transform"}, 5, 1, true))
	panels = append(panels, p)

	// 10. Attention by sequence position.
	if len(d.Received) == 0 {
		panels = append(panels, messagePanel("Sequence Position Analysis", "No attention weights\nfor position analysis"))
	} else {
		p = newPlot("Attention by Sequence Position", "Position", "Total Attention Received")
		for i, r := range d.Received {
			l, pts, err := plotter.NewLinePoints(xys(seq(len(r), 0), r))
			if err != nil {
				continue
			}
			l.Color, pts.Color = palette[i], palette[i]
			pts.Shape = draw.CircleGlyph{}
			pts.Radius = 2
			p.Add(l, pts)
			p.Legend.Add(fmt.Sprintf("Layer %d", i), l, pts)
		}
		p.Add(plotter.NewGrid())
		p.Legend.Top = true
		panels = append(panels, p)
	}

	// 11. Head entropy distribution.
	if len(d.HeadEntropy) == 0 {
		panels = append(panels, messagePanel("Attention Head Analysis", "No attention weights\nfor head analysis"))
	} else {
		p = newPlot("Attention Head Entropy Distribution", "Layer", "Entropy")
		for i, e := range d.HeadEntropy {
			b, err := plotter.NewBoxPlot(vg.Points(14), float64(i), plotter.Values(e))
			if err != nil {
				continue
			}
			b.FillColor = color.White
			p.Add(b)
		}
		names := d.WeightNames
		if len(names) != len(d.HeadEntropy) {
			names = short[:min(len(short), len(d.HeadEntropy))]
		}
		p.X.Tick.Marker = fixedTicks(categoryTicksAt(names, labelStride(len(d.HeadEntropy), 220, 10)))
		panels = append(panels, p)
	}

	// 12. Summary metrics.
	p = newPlot("Summary Metrics", "Metric", "Value")
	if len(d.SummaryNames) != len(d.SummaryValues) {
		return nil, fmt.Errorf("dashboard: %d summary names for %d values", len(d.SummaryNames), len(d.SummaryValues))
	}
	addBars(p, seq(len(d.SummaryValues), 0), d.SummaryValues, 0, 0.7, skyblue, "")
	p.Add(&barValues{x: seq(len(d.SummaryValues), 0), y: d.SummaryValues})
	p.X.Tick.Marker = fixedTicks(categoryTicksAt(d.SummaryNames, 1))
	p.X.Tick.Label.Rotation = math.Pi / 8
	p.X.Tick.Label.XAlign = draw.XRight
	p.Y.Min = 0
	if _, hi := finiteRange(d.SummaryValues); hi > 0 {
		p.Y.Max = hi * 1.12 // room for the value labels
	}
	panels = append(panels, p)

	grid := [][]*plot.Plot{panels[0:4], panels[4:8], panels[8:12]}
	title := d.Title
	if title == "" {
		title = "Comprehensive attention analysis"
	}
	return tiled(grid, title, 20*vg.Inch, 15*vg.Inch), nil
}

func seq(n int, from float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = from + float64(i)
	}
	return s
}

func xys(x, y []float64) plotter.XYs {
	out := make(plotter.XYs, min(len(x), len(y)))
	for i := range out {
		out[i].X, out[i].Y = x[i], y[i]
	}
	return out
}

// categoryTicksAt labels integer positions 0..len(labels)−1 (bar charts, box plots).
func categoryTicksAt(labels []string, stride int) []plot.Tick {
	var t []plot.Tick
	for i := 0; i < len(labels); i += max(stride, 1) {
		t = append(t, plot.Tick{Value: float64(i), Label: labels[i]})
	}
	return t
}

func linePanel(title, xl, yl string, x, y []float64, c color.RGBA) *plot.Plot {
	p := newPlot(title, xl, yl)
	l, pts, err := plotter.NewLinePoints(xys(x, y))
	if err == nil {
		l.Color, l.Width = c, 2
		pts.Color, pts.Shape, pts.Radius = c, draw.CircleGlyph{}, 3
		if len(x) <= 40 {
			p.Add(l, pts)
		} else {
			p.Add(l) // markers would merge into a thick line
		}
	}
	p.Add(plotter.NewGrid())
	return p
}

// messagePanel is a panel without axes that says why it is empty.
func messagePanel(title, msg string) *plot.Plot {
	p := newPlot(title, "", "")
	p.HideAxes()
	p.Add(&centreText{text: msg})
	return p
}

// legendRoom extends the y axis above the data so that a legend in the top corner
// sits over empty space, not over the bars.
func legendRoom(p *plot.Plot, v []float64) {
	lo, hi := finiteRange(v)
	lo, hi = min(lo, 0), max(hi, 0)
	if hi > lo {
		p.Y.Min, p.Y.Max = lo, hi+0.45*(hi-lo)
	}
}

// addBars adds bars of the given width centred at x+offset.
func addBars(p *plot.Plot, x, y []float64, offset, width float64, c color.Color, name string) {
	b := &xbars{x: x, y: y, off: offset, w: width, c: c}
	p.Add(b)
	if name != "" {
		p.Legend.Add(name, b)
	}
}

type xbars struct {
	x, y   []float64
	off, w float64
	c      color.Color
}

func (b *xbars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	c.SetColor(b.c)
	for i := range b.x {
		x0, x1 := trX(b.x[i]+b.off-b.w/2), trX(b.x[i]+b.off+b.w/2)
		y0, y1 := trY(0), trY(b.y[i])
		c.Fill(vg.Rectangle{Min: vg.Point{X: x0, Y: min(y0, y1)}, Max: vg.Point{X: x1, Y: max(y0, y1)}}.Path())
	}
}

func (b *xbars) DataRange() (xmin, xmax, ymin, ymax float64) {
	lo, hi := finiteRange(b.y)
	xl, xh := finiteRange(b.x)
	return xl + b.off - b.w, xh + b.off + b.w, min(lo, 0), max(hi, 0)
}

// Thumbnail draws the legend swatch.
func (b *xbars) Thumbnail(c *draw.Canvas) {
	c.SetColor(b.c)
	c.Fill(c.Rectangle.Path())
}

// barValues writes each value above its bar with 3 decimals.
type barValues struct{ x, y []float64 }

func (b *barValues) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	sty := textStyle(sansFont, 8)
	sty.XAlign, sty.YAlign = draw.XCenter, draw.YBottom
	for i := range b.x {
		c.FillText(sty, vg.Point{X: trX(b.x[i]), Y: trY(b.y[i]) + 2}, fmt.Sprintf("%.3f", b.y[i]))
	}
}

// cornerText writes text in the top-left corner of the data area.
type cornerText struct{ text string }

func (t *cornerText) Plot(c draw.Canvas, p *plot.Plot) {
	sty := textStyle(sansFont, 9)
	sty.YAlign = draw.YTop
	c.FillText(sty, vg.Point{X: c.Min.X + 6, Y: c.Max.Y - 6}, t.text)
}

// centreText writes text in the middle of the canvas.
type centreText struct{ text string }

func (t *centreText) Plot(c draw.Canvas, p *plot.Plot) {
	sty := textStyle(sansFont, 10)
	sty.XAlign, sty.YAlign = draw.XCenter, draw.YCenter
	c.FillText(sty, c.Center(), t.text)
}
