package viz

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Band is one curve of means with a shaded mean ± std band.
type Band struct {
	Name         string
	X, Mean, Std []float64
	Color        color.Color // nil: the palette's next colour
}

// BandsOptions configure MeanStdBands.
type BandsOptions struct {
	Title, XLabel, YLabel string
	// Scientific writes the y tick labels in scientific notation (1.2e+03).
	Scientific bool
	// Size is the width and height in inches (0 means 4.8, BERT-non-text's figure).
	Size float64
}

// MeanStdBands draws each band's mean as a line over a translucent mean ± std band
// (BERT-non-text's layer-wise head-matching plot: layers on x, one band per model
// pair).
func MeanStdBands(bands []Band, o BandsOptions) (*Figure, error) {
	if len(bands) == 0 {
		return nil, errors.New("bands: no band")
	}
	p := newPlot(o.Title, o.XLabel, o.YLabel)
	for i, b := range bands {
		if len(b.X) != len(b.Mean) || len(b.X) != len(b.Std) || len(b.X) == 0 {
			return nil, fmt.Errorf("bands: %q has %d x, %d means and %d stds", b.Name, len(b.X), len(b.Mean), len(b.Std))
		}
		c := b.Color
		if c == nil {
			c = palette[i%len(palette)]
		}
		r, g, bl, _ := c.RGBA()
		fill := color.NRGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), 0x40}
		poly := make(plotter.XYs, 0, 2*len(b.X))
		line := make(plotter.XYs, len(b.X))
		for k := range b.X {
			if math.IsNaN(b.Mean[k]) || math.IsNaN(b.Std[k]) {
				return nil, fmt.Errorf("bands: %q has NaN at x = %v", b.Name, b.X[k])
			}
			poly = append(poly, plotter.XY{X: b.X[k], Y: b.Mean[k] + b.Std[k]})
			line[k] = plotter.XY{X: b.X[k], Y: b.Mean[k]}
		}
		for k := len(b.X) - 1; k >= 0; k-- {
			poly = append(poly, plotter.XY{X: b.X[k], Y: b.Mean[k] - b.Std[k]})
		}
		pg, err := plotter.NewPolygon(poly)
		if err != nil {
			return nil, err
		}
		pg.Color = fill
		pg.LineStyle.Width = 0
		l, err := plotter.NewLine(line)
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = c, vg.Points(1.5)
		p.Add(pg, l)
		if b.Name != "" {
			p.Legend.Add(b.Name, l)
		}
	}
	p.Legend.Top = true
	if o.Scientific {
		p.Y.Tick.Marker = sciTicks{}
	}
	p.Add(plotter.NewGrid())
	size := o.Size
	if size == 0 {
		size = 4.8
	}
	return single(p, vg.Length(size)*vg.Inch, vg.Length(size)*vg.Inch), nil
}

// sciTicks are plot.DefaultTicks labelled in scientific notation.
type sciTicks struct{}

func (sciTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'e', 1, 64)
		}
	}
	return ts
}
