package viz

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
	"strings"

	"codeberg.org/go-pdf/fpdf"
	stdfnt "golang.org/x/image/font"
	"golang.org/x/image/font/sfnt"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// svgCanvas is a gonum SVG canvas that records the runes drawn in each font face, so
// that only those glyphs are embedded.
type svgCanvas struct {
	*vgsvg.Canvas
	faces []font.Face
	runes map[font.Font]map[rune]bool
}

func (c *svgCanvas) FillString(f font.Face, pt vg.Point, s string) {
	key := f.Font
	key.Size = 0 // one face embedded for all sizes
	if c.runes[key] == nil {
		c.runes[key] = map[rune]bool{' ': true}
		c.faces = append(c.faces, font.Face{Font: key, Face: f.Face})
	}
	for _, r := range s {
		c.runes[key][r] = true
	}
	c.Canvas.FillString(f, pt, s)
}

// writeSVG renders f as SVG with every font face it uses embedded as an @font-face
// data URI holding a subset of the face (the glyphs drawn, cut by fpdf.UTF8CutFont as
// for PDF output), so the SVG renders in DejaVu where it is not installed.
func writeSVG(w io.Writer, f *Figure) error {
	c := &svgCanvas{Canvas: vgsvg.NewWith(vgsvg.UseWH(f.Width, f.Height)), runes: map[font.Font]map[rune]bool{}}
	f.draw(draw.New(c))
	var style bytes.Buffer
	for _, face := range c.faces {
		var buf sfnt.Buffer
		family, err := face.Face.Name(&buf, sfnt.NameIDFamily)
		if err != nil {
			return fmt.Errorf("svg: font %s: family name: %w", face.Font.Typeface, err)
		}
		var ttf bytes.Buffer
		if _, err := face.Face.WriteSourceTo(nil, &ttf); err != nil {
			return fmt.Errorf("svg: font %s: %w", family, err)
		}
		var cut strings.Builder
		for _, r := range slices.Sorted(func(yield func(rune) bool) {
			for r := range c.runes[face.Font] {
				if !yield(r) {
					return
				}
			}
		}) {
			cut.WriteRune(r)
		}
		sub := fpdf.UTF8CutFont(ttf.Bytes(), cut.String())
		weight, style2 := "normal", "normal"
		if face.Font.Weight >= stdfnt.WeightBold {
			weight = "bold"
		}
		if face.Font.Style == stdfnt.StyleItalic {
			style2 = "italic"
		}
		fmt.Fprintf(&style, "@font-face{font-family:%q;font-weight:%s;font-style:%s;src:url(data:font/ttf;base64,%s) format(\"truetype\");}\n",
			family, weight, style2, base64.StdEncoding.EncodeToString(sub))
	}
	var doc bytes.Buffer
	if _, err := c.Canvas.WriteTo(&doc); err != nil {
		return err
	}
	b := doc.Bytes()
	at := bytes.Index(b, []byte("<svg"))
	end := -1
	if at >= 0 {
		end = bytes.IndexByte(b[at:], '>')
	}
	if end < 0 {
		return fmt.Errorf("svg: no <svg> element in gonum's output")
	}
	at += end + 1
	if _, err := w.Write(b[:at]); err != nil {
		return err
	}
	if style.Len() > 0 {
		if _, err := fmt.Fprintf(w, "\n<defs><style>\n%s</style></defs>", style.Bytes()); err != nil {
			return err
		}
	}
	_, err := w.Write(b[at:])
	return err
}
