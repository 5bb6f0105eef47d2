package viz

import (
	"errors"
	"fmt"
	"image/color"

	"gonum.org/v1/plot"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// ShareBar is one bar of StackedShares: a name and the count of each category.
type ShareBar struct {
	Name   string
	Counts []float64
}

// StackedShares draws one horizontal bar per entry, 100% long, split into the
// shares of its categories (followup-attention's notebook figure of the top-3
// overlap per model and baseline: the share of rows where 0, 1, 2 or 3 of the
// human's top 3 targets are among the model's).
func StackedShares(bars []ShareBar, categories []string, title, xlabel string) (*Figure, error) {
	if len(bars) == 0 || len(categories) == 0 {
		return nil, errors.New("stacked shares: no bars or no categories")
	}
	p := newPlot(title, xlabel, "")
	names := make([]string, len(bars))
	shares := make([][]float64, len(bars))
	for i, b := range bars {
		if len(b.Counts) != len(categories) {
			return nil, fmt.Errorf("stacked shares: bar %q has %d counts for %d categories", b.Name, len(b.Counts), len(categories))
		}
		var total float64
		for _, c := range b.Counts {
			if c < 0 {
				return nil, fmt.Errorf("stacked shares: bar %q has a negative count", b.Name)
			}
			total += c
		}
		shares[i] = make([]float64, len(categories))
		for k, c := range b.Counts {
			if total > 0 {
				shares[i][k] = 100 * c / total
			}
		}
		names[i] = b.Name
	}
	var below *plotter.BarChart
	for k, cat := range categories {
		vals := make(plotter.Values, len(bars))
		for i := range bars {
			vals[i] = shares[i][k]
		}
		bc, err := plotter.NewBarChart(vals, vg.Points(14))
		if err != nil {
			return nil, err
		}
		bc.Horizontal = true
		bc.Color = palette[k%len(palette)]
		bc.LineStyle.Width = 0
		if below != nil {
			bc.StackOn(below)
		}
		below = bc
		p.Add(bc)
		p.Legend.Add(cat, bc)
	}
	p.Legend.Top = true
	p.Legend.Left = false
	// The legend sits right of the 100% mark, outside the bars.
	p.X.Min, p.X.Max = 0, 114
	p.X.Tick.Marker = plot.ConstantTicks([]plot.Tick{{Value: 0, Label: "0"}, {Value: 25, Label: "25"}, {Value: 50, Label: "50"}, {Value: 75, Label: "75"}, {Value: 100, Label: "100"}})
	p.NominalY(names...)
	h := vg.Length(len(bars))*22 + 110
	return &Figure{Width: 8 * vg.Inch, Height: h, draw: func(c draw.Canvas) {
		c.SetColor(color.White)
		c.Fill(c.Rectangle.Path())
		fitPlotTitle(p, c.Size().X-8)
		p.Draw(c)
	}}, nil
}

// SideBySide places figures next to each other, top-aligned, on a white page.
func SideBySide(figs ...*Figure) (*Figure, error) {
	if len(figs) == 0 {
		return nil, errors.New("side by side: no figures")
	}
	var w, h vg.Length
	for _, f := range figs {
		if f == nil {
			return nil, errors.New("side by side: a nil figure")
		}
		w += f.Width
		h = max(h, f.Height)
	}
	gap := vg.Length(12)
	w += gap * vg.Length(len(figs)-1)
	return &Figure{Width: w, Height: h, draw: func(c draw.Canvas) {
		c.SetColor(color.White)
		c.Fill(c.Rectangle.Path())
		x := c.Min.X
		for _, f := range figs {
			sub := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
				Min: vg.Point{X: x, Y: c.Max.Y - f.Height}, Max: vg.Point{X: x + f.Width, Y: c.Max.Y}}}
			f.draw(sub)
			x += f.Width + gap
		}
	}}, nil
}
