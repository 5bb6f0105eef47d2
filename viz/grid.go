package viz

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/plot/vg"
	vgdraw "gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// GridOptions configure an all-heads grid.
type GridOptions struct {
	Title    string
	RowNames []string // one per grid row (default "L0", "L1", ...)
	ColNames []string // one per grid column (default "H0", "H1", ...)
	Colormap *Colormap
	// ClipPercentile, when in (0, 100), scales each thumbnail from 0 to that
	// percentile of its values (followup-attention's visualize_slices_of_3D_tensor
	// clips at 99.9) instead of its maximum.
	ClipPercentile float64
	// Unit names a thumbnail in the colour bar's caption (default "head").
	Unit string
}

// Grid draws units[row][col] (layers × heads of attention, BertViz's "model view" as a
// static figure) as thumbnails, each scaled from 0 to its own maximum (or clipped
// percentile) so that weak and strong heads are equally legible. All rows but the last
// must have the same number of columns (the last may be shorter, for slices wrapped
// into rows); matrices may differ in size.
func Grid(units [][]Matrix, o GridOptions) (*Figure, error) {
	rows := len(units)
	if rows == 0 || len(units[0]) == 0 {
		return nil, errors.New("grid: no matrices")
	}
	cols := len(units[0])
	for r, row := range units {
		// Only the last row may be shorter (slices of a 3-D tensor wrapped in columns).
		if len(row) > cols || (len(row) < cols && r != rows-1) || len(row) == 0 {
			return nil, fmt.Errorf("grid: row %d has %d matrices, row 0 has %d (only the last row may be shorter)", r, len(row), cols)
		}
		for c, m := range row {
			if m.Rows == 0 || m.Cols == 0 || len(m.Data) != m.Rows*m.Cols {
				return nil, fmt.Errorf("grid: matrix (%d, %d) is empty or malformed (%d×%d, %d values)", r, c, m.Rows, m.Cols, len(m.Data))
			}
		}
	}
	if o.RowNames != nil && len(o.RowNames) != rows {
		return nil, fmt.Errorf("grid: %d row names for %d rows", len(o.RowNames), rows)
	}
	if o.ColNames != nil && len(o.ColNames) != cols {
		return nil, fmt.Errorf("grid: %d column names for %d columns", len(o.ColNames), cols)
	}
	if o.Colormap == nil {
		o.Colormap = Reds
	}
	rowNames, colNames := o.RowNames, o.ColNames
	if rowNames == nil {
		rowNames = make([]string, rows)
		for i := range rowNames {
			rowNames[i] = fmt.Sprintf("L%d", i)
		}
	}
	if colNames == nil {
		colNames = make([]string, cols)
		for i := range colNames {
			colNames[i] = fmt.Sprintf("H%d", i)
		}
	}

	// Thumbnails of 40–110 pt, the whole grid at most about 900 pt wide or tall.
	thumb := vg.Length(math.Max(40, math.Min(110, 900/float64(max(rows, cols)))))
	const gapFrac = 0.06
	left, top, bottom, right := vg.Length(36), vg.Length(44), vg.Length(16), vg.Length(90)
	gridW := thumb * vg.Length(float64(cols)+gapFrac*float64(cols-1))
	gridH := thumb * vg.Length(float64(rows)+gapFrac*float64(rows-1))
	fig := &Figure{Width: left + gridW + right, Height: top + gridH + bottom}
	fig.draw = func(c vgdraw.Canvas) {
		c.SetColor(color.White)
		c.Fill(c.Rectangle.Path())
		x0 := c.Min.X + left
		y1 := c.Max.Y - top
		// Pixel size of one thumbnail.
		// Vector output: 100-pixel thumbnails with 6-pixel gaps keep the image's aspect
		// ratio exactly that of its box (gapFrac = 0.06).
		tp, gp := 100, 6
		if ic, ok := c.Canvas.(*vgimg.Canvas); ok {
			tp = max(8, int(math.Round(thumb.Dots(ic.DPI()))))
			gp = max(1, int(math.Round(float64(tp)*gapFrac)))
		}
		img := renderGrid(units, tp, gp, o)
		c.DrawImage(vg.Rectangle{Min: vg.Point{X: x0, Y: y1 - gridH}, Max: vg.Point{X: x0 + gridW, Y: y1}}, img)

		// Centred on the grid when it fits there, else on the figure.
		title, fitted := fitTitle(textStyle(boldFont, 12), o.Title, c.Size().X-8)
		title.XAlign, title.YAlign = vgdraw.XCenter, vgdraw.YTop
		tx := x0 + gridW/2
		if w := title.Width(fitted); tx-w/2 < c.Min.X+4 || tx+w/2 > c.Max.X-4 {
			tx = (c.Min.X + c.Max.X) / 2
		}
		c.FillText(title, vg.Point{X: tx, Y: c.Max.Y - 4}, fitted)
		lab := textStyle(sansFont, 8)
		lab.XAlign, lab.YAlign = vgdraw.XCenter, vgdraw.YBottom
		step := thumb * (1 + gapFrac)
		colStride := labelStride(cols, float64(gridW), float64(maxLabelWidth(colNames))+4)
		for i, n := range colNames {
			if i%colStride == 0 {
				c.FillText(lab, vg.Point{X: x0 + step*vg.Length(i) + thumb/2, Y: y1 + 3}, n)
			}
		}
		lab.XAlign, lab.YAlign = vgdraw.XRight, vgdraw.YCenter
		rowStride := labelStride(rows, float64(gridH), 10)
		for i, n := range rowNames {
			if i%rowStride == 0 {
				c.FillText(lab, vg.Point{X: x0 - 4, Y: y1 - step*vg.Length(i) - thumb/2}, n)
			}
		}
		unit := o.Unit
		if unit == "" {
			unit = "head"
		}
		cap := "weight / " + unit + " maximum"
		if o.ClipPercentile > 0 && o.ClipPercentile < 100 {
			cap = fmt.Sprintf("weight / %s %gth percentile", unit, o.ClipPercentile)
		}
		drawColorbar(c, y1-gridH, y1, x0+gridW+14, 0, 1, o.Colormap, cap)
	}
	return fig, nil
}

// renderGrid rasterises every thumbnail (tp × tp pixels, gp-pixel white gaps) into one
// image, using all CPUs.
func renderGrid(units [][]Matrix, tp, gp int, o GridOptions) *image.RGBA {
	rows, cols := len(units), len(units[0])
	img := image.NewRGBA(image.Rect(0, 0, cols*tp+(cols-1)*gp, rows*tp+(rows-1)*gp))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	jobs := make(chan [2]int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var scratch []float64
			for j := range jobs {
				m := units[j[0]][j[1]]
				lo, hi := finiteRange(m.Data)
				lo = min(lo, 0)
				if o.ClipPercentile > 0 && o.ClipPercentile < 100 {
					hi, scratch = quantile(m.Data, o.ClipPercentile, scratch)
				}
				if hi <= lo {
					hi = lo + 1
				}
				t := Rasterize(m, tp, tp, lo, hi, o.Colormap)
				at := image.Pt(j[1]*(tp+gp), j[0]*(tp+gp))
				draw.Draw(img, image.Rectangle{Min: at, Max: at.Add(image.Pt(tp, tp))}, t, image.Point{}, draw.Src)
			}
		}()
	}
	for r := range rows {
		for c := range units[r] {
			jobs <- [2]int{r, c}
		}
	}
	close(jobs)
	wg.Wait()
	return img
}
