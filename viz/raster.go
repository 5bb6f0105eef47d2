package viz

import (
	"image"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Rasterize draws m into a w × h image, row 0 at the top, colouring each pixel by
// cmap((v − vmin)/(vmax − vmin)). When a pixel covers several cells it shows their
// maximum (max-pooling keeps sharp attention peaks visible at any size); when a cell
// covers several pixels it is drawn as a solid block. NaN cells are light grey.
func Rasterize(m Matrix, w, h int, vmin, vmax float64, cmap *Colormap) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	if m.Rows == 0 || m.Cols == 0 || w <= 0 || h <= 0 {
		return img
	}
	c0, c1 := spans(m.Cols, w)
	r0, r1 := spans(m.Rows, h)
	scale := 0.0
	if vmax > vmin {
		scale = 1 / (vmax - vmin)
	}
	for y := 0; y < h; y++ {
		line := img.Pix[y*img.Stride : y*img.Stride+4*w]
		for x := 0; x < w; x++ {
			v := math.NaN()
			for r := r0[y]; r < r1[y]; r++ {
				row := m.Data[r*m.Cols+c0[x] : r*m.Cols+c1[x]]
				for _, a := range row {
					if !(a <= v) && !math.IsNaN(a) { // a > v, or v is NaN
						v = a
					}
				}
			}
			var col color.RGBA
			if math.IsNaN(v) {
				col = cmap.At(math.NaN())
			} else {
				col = cmap.At((v - vmin) * scale)
			}
			line[4*x], line[4*x+1], line[4*x+2], line[4*x+3] = col.R, col.G, col.B, col.A
		}
	}
	return img
}

// spans returns for each of px pixels the half-open range of the n cells it covers
// (at least one cell each).
func spans(n, px int) (lo, hi []int) {
	lo, hi = make([]int, px), make([]int, px)
	for i := range px {
		a := i * n / px
		b := (i + 1) * n / px
		if b <= a {
			b = a + 1
		}
		lo[i], hi[i] = a, min(b, n)
	}
	return lo, hi
}

// rasterSize chooses the pixel size of an image that fills a rectangle of the given
// size on canvas c: the rectangle's size in device pixels on a raster canvas; on a
// vector canvas (SVG, PDF) 1000–2000 pixels on the longer side (at least one pixel per
// cell) with exactly the rectangle's aspect ratio, since SVG viewers letterbox an image
// whose aspect differs from its box.
func rasterSize(c vg.Canvas, size vg.Point, cols, rows int) (w, h int) {
	if ic, ok := c.(*vgimg.Canvas); ok {
		dpi := ic.DPI()
		w = max(1, int(math.Round(size.X.Dots(dpi))))
		h = max(1, int(math.Round(size.Y.Dots(dpi))))
		return w, h
	}
	long := math.Max(float64(size.X), float64(size.Y))
	if long <= 0 {
		return 1, 1
	}
	px := math.Min(2000, math.Max(1000, float64(max(cols, rows))))
	s := px / long
	return max(1, int(math.Round(float64(size.X)*s))), max(1, int(math.Round(float64(size.Y)*s)))
}

// matrixPlotter draws a matrix as an image over the data rectangle [0, Cols] × [0, Rows]
// (row 0 at the top), rasterised at the canvas resolution when drawn.
type matrixPlotter struct {
	m          Matrix
	vmin, vmax float64
	cmap       *Colormap
}

func (mp *matrixPlotter) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	rect := vg.Rectangle{
		Min: vg.Point{X: trX(0), Y: trY(0)},
		Max: vg.Point{X: trX(float64(mp.m.Cols)), Y: trY(float64(mp.m.Rows))},
	}
	w, h := rasterSize(c.Canvas, rect.Size(), mp.m.Cols, mp.m.Rows)
	c.DrawImage(rect, Rasterize(mp.m, w, h, mp.vmin, mp.vmax, mp.cmap))
}

func (mp *matrixPlotter) DataRange() (xmin, xmax, ymin, ymax float64) {
	return 0, float64(mp.m.Cols), 0, float64(mp.m.Rows)
}

// cellOutline draws rectangles around blocks of cells of a matrix drawn by a
// matrixPlotter with rows rows.
type cellOutline struct {
	rows  int
	cells []image.Rectangle // in (column, row) cell coordinates, half-open
	style draw.LineStyle
}

func (o *cellOutline) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for _, r := range o.cells {
		x0, x1 := trX(float64(r.Min.X)), trX(float64(r.Max.X))
		y0, y1 := trY(float64(o.rows-r.Max.Y)), trY(float64(o.rows-r.Min.Y))
		c.StrokeLines(o.style, []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}, {X: x0, Y: y0}})
	}
}

// cellLines draws the lines between the cells of a rows × cols matrix drawn by a
// matrixPlotter.
type cellLines struct {
	rows, cols int
	style      draw.LineStyle
}

func (g *cellLines) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for j := 1; j < g.cols; j++ {
		x := trX(float64(j))
		c.StrokeLine2(g.style, x, trY(0), x, trY(float64(g.rows)))
	}
	for i := 1; i < g.rows; i++ {
		y := trY(float64(i))
		c.StrokeLine2(g.style, trX(0), y, trX(float64(g.cols)), y)
	}
}

// Downsample max-pools m to at most maxSide rows and columns (returned unchanged when
// already small enough), so callers can keep many thumbnails of long sequences in
// memory; Rasterize max-pools again, so peaks survive both steps.
func Downsample(m Matrix, maxSide int) Matrix {
	if maxSide <= 0 || (m.Rows <= maxSide && m.Cols <= maxSide) {
		return m
	}
	w, h := min(m.Cols, maxSide), min(m.Rows, maxSide)
	c0, c1 := spans(m.Cols, w)
	r0, r1 := spans(m.Rows, h)
	out := Matrix{Rows: h, Cols: w, Data: make([]float64, w*h)}
	for y := range h {
		for x := range w {
			v := math.NaN()
			for r := r0[y]; r < r1[y]; r++ {
				for _, a := range m.Data[r*m.Cols+c0[x] : r*m.Cols+c1[x]] {
					if !(a <= v) && !math.IsNaN(a) {
						v = a
					}
				}
			}
			out.Data[y*w+x] = v
		}
	}
	return out
}
