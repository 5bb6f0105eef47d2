package viz

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strings"
	"unicode"

	"codeberg.org/go-pdf/fpdf"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
)

// pdfCanvas is a vg.Canvas that writes a one-page PDF with embedded UTF-8 (subset)
// fonts. gonum's own PDF backend encodes text as Windows-1252 (so ␣ ⏎ ⇥ are lost)
// and shares one font program between all faces of a document; this canvas keeps
// every glyph and face. It tracks the transformation matrix itself and hands fpdf page
// coordinates (points, origin at the top left).
type pdfCanvas struct {
	doc   *fpdf.Fpdf
	w, h  vg.Length
	st    pdfState
	stack []pdfState
	fonts map[string]bool
	nimg  int
	err   error
}

// pdfState is the graphics state saved by Push.
type pdfState struct {
	m      [6]float64 // x' = m0·x + m2·y + m4, y' = m1·x + m3·y + m5 (points, y up)
	color  color.NRGBA
	width  float64
	dashes []float64
	offset float64
}

func newPDFCanvas(w, h vg.Length) *pdfCanvas {
	doc := fpdf.NewCustom(&fpdf.InitType{UnitStr: "pt", Size: fpdf.SizeType{Wd: w.Points(), Ht: h.Points()}})
	doc.SetMargins(0, 0, 0)
	doc.SetAutoPageBreak(false, 0)
	doc.SetCreator("attnscope", true)
	doc.AddPage()
	c := &pdfCanvas{doc: doc, w: w, h: h, fonts: map[string]bool{}}
	c.st = pdfState{m: [6]float64{1, 0, 0, 1, 0, 0}, color: color.NRGBA{0, 0, 0, 255}, width: 1}
	c.apply()
	return c
}

func (c *pdfCanvas) Size() (vg.Length, vg.Length) { return c.w, c.h }
func (c *pdfCanvas) DPI() float64                 { return 72 }

// pt maps user coordinates to fpdf page coordinates.
func (c *pdfCanvas) pt(p vg.Point) (float64, float64) {
	m := c.st.m
	x, y := p.X.Points(), p.Y.Points()
	return m[0]*x + m[2]*y + m[4], c.h.Points() - (m[1]*x + m[3]*y + m[5])
}

// scale is the CTM's length factor (uniform scaling assumed).
func (c *pdfCanvas) scale() float64 { return math.Hypot(c.st.m[0], c.st.m[1]) }

func (c *pdfCanvas) mul(a, b, cc, d, e, f float64) {
	m := c.st.m
	c.st.m = [6]float64{
		m[0]*a + m[2]*b, m[1]*a + m[3]*b,
		m[0]*cc + m[2]*d, m[1]*cc + m[3]*d,
		m[0]*e + m[2]*f + m[4], m[1]*e + m[3]*f + m[5],
	}
}

func (c *pdfCanvas) Rotate(t float64) {
	c.mul(math.Cos(t), math.Sin(t), -math.Sin(t), math.Cos(t), 0, 0)
}
func (c *pdfCanvas) Translate(p vg.Point) { c.mul(1, 0, 0, 1, p.X.Points(), p.Y.Points()) }
func (c *pdfCanvas) Scale(x, y float64)   { c.mul(x, 0, 0, y, 0, 0) }

func (c *pdfCanvas) Push() {
	s := c.st
	s.dashes = append([]float64(nil), s.dashes...)
	c.stack = append(c.stack, s)
}

func (c *pdfCanvas) Pop() {
	if len(c.stack) == 0 {
		return
	}
	c.st = c.stack[len(c.stack)-1]
	c.stack = c.stack[:len(c.stack)-1]
	c.apply()
}

// apply sends the colour, line width and dashes of the current state to fpdf.
func (c *pdfCanvas) apply() {
	col := c.st.color
	c.doc.SetDrawColor(int(col.R), int(col.G), int(col.B))
	c.doc.SetFillColor(int(col.R), int(col.G), int(col.B))
	c.doc.SetTextColor(int(col.R), int(col.G), int(col.B))
	c.doc.SetAlpha(float64(col.A)/255, "Normal")
	s := c.scale()
	c.doc.SetLineWidth(c.st.width * s)
	d := make([]float64, len(c.st.dashes))
	for i, x := range c.st.dashes {
		d[i] = x * s
	}
	c.doc.SetDashPattern(d, c.st.offset*s)
}

func (c *pdfCanvas) SetLineWidth(w vg.Length) { c.st.width = w.Points(); c.apply() }

func (c *pdfCanvas) SetLineDash(ds []vg.Length, off vg.Length) {
	c.st.dashes = c.st.dashes[:0]
	for _, d := range ds {
		c.st.dashes = append(c.st.dashes, d.Points())
	}
	c.st.offset = off.Points()
	c.apply()
}

func (c *pdfCanvas) SetColor(clr color.Color) {
	if clr == nil {
		clr = color.Black
	}
	c.st.color = color.NRGBAModel.Convert(clr).(color.NRGBA)
	c.apply()
}

// path sends p to fpdf; arcs become short line segments.
func (c *pdfCanvas) path(p vg.Path) {
	started := false
	var sx, sy float64
	for _, comp := range p {
		switch comp.Type {
		case vg.MoveComp:
			sx, sy = c.pt(comp.Pos)
			c.doc.MoveTo(sx, sy)
			started = true
		case vg.LineComp:
			x, y := c.pt(comp.Pos)
			c.doc.LineTo(x, y)
		case vg.CurveComp:
			x, y := c.pt(comp.Pos)
			switch len(comp.Control) {
			case 1:
				cx, cy := c.pt(comp.Control[0])
				c.doc.CurveTo(cx, cy, x, y)
			case 2:
				ax, ay := c.pt(comp.Control[0])
				bx, by := c.pt(comp.Control[1])
				c.doc.CurveBezierCubicTo(ax, ay, bx, by, x, y)
			}
		case vg.ArcComp:
			n := max(8, int(math.Ceil(math.Abs(comp.Angle)/(math.Pi/32))))
			for i := 0; i <= n; i++ {
				a := comp.Start + comp.Angle*float64(i)/float64(n)
				x, y := c.pt(vg.Point{X: comp.Pos.X + comp.Radius*vg.Length(math.Cos(a)), Y: comp.Pos.Y + comp.Radius*vg.Length(math.Sin(a))})
				if i == 0 && !started {
					c.doc.MoveTo(x, y)
					sx, sy, started = x, y, true
				} else {
					c.doc.LineTo(x, y)
				}
			}
		case vg.CloseComp:
			c.doc.LineTo(sx, sy)
			c.doc.ClosePath()
		}
	}
}

func (c *pdfCanvas) Stroke(p vg.Path) {
	if c.st.width <= 0 {
		return
	}
	c.path(p)
	c.doc.DrawPath("D")
}

func (c *pdfCanvas) Fill(p vg.Path) {
	c.path(p)
	c.doc.DrawPath("F")
}

// FillString draws text with its baseline starting at pt.
func (c *pdfCanvas) FillString(f font.Face, pt vg.Point, s string) {
	if f.Font.Size == 0 || s == "" {
		return
	}
	name := pdfFontName(f.Font)
	if !c.fonts[name] {
		var b bytes.Buffer
		if _, err := f.Face.WriteSourceTo(nil, &b); err != nil {
			c.fail(fmt.Errorf("embed font %s: %w", name, err))
			return
		}
		c.doc.AddUTF8FontFromBytes(name, "", b.Bytes())
		c.fonts[name] = true
	}
	c.doc.SetFont(name, "", f.Font.Size.Points()*c.scale())
	x, y := c.pt(pt)
	angle := math.Atan2(c.st.m[1], c.st.m[0]) * 180 / math.Pi
	if math.Abs(angle) > 1e-9 {
		c.doc.TransformBegin()
		c.doc.TransformRotate(angle, x, y)
		c.doc.Text(x, y, s)
		c.doc.TransformEnd()
		return
	}
	c.doc.Text(x, y, s)
}

// pdfFontName is a font's name in the document (letters and digits only).
func pdfFontName(f font.Font) string {
	raw := fmt.Sprintf("%s%s%v%v", f.Typeface, f.Variant, f.Weight, f.Style)
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return r
		}
		return -1
	}, raw)
}

// DrawImage draws img stretched over rect (axis-aligned transforms only).
func (c *pdfCanvas) DrawImage(rect vg.Rectangle, img image.Image) {
	x0, y0 := c.pt(rect.Min)
	x1, y1 := c.pt(rect.Max)
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		c.fail(fmt.Errorf("encode image: %w", err))
		return
	}
	c.nimg++
	name := fmt.Sprintf("img%d", c.nimg)
	opts := fpdf.ImageOptions{ImageType: "PNG"}
	c.doc.RegisterImageOptionsReader(name, opts, &b)
	c.doc.ImageOptions(name, math.Min(x0, x1), math.Min(y0, y1), math.Abs(x1-x0), math.Abs(y1-y0), false, opts, 0, "")
}

func (c *pdfCanvas) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

// WriteTo writes the PDF document.
func (c *pdfCanvas) WriteTo(w io.Writer) (int64, error) {
	if c.err != nil {
		return 0, c.err
	}
	cw := &countWriter{w: w}
	if err := c.doc.Output(cw); err != nil {
		return cw.n, fmt.Errorf("write PDF: %w", err)
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
