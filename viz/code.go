package viz

import (
	"errors"
	"fmt"
	"html"
	"image/color"
	"io"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// CodeOptions configure a code heatmap.
type CodeOptions struct {
	Title    string
	Colormap *Colormap // default Reds
	// ClipPercentile, when in (0, 100), clips weights above that percentile before
	// scaling (followup-attention's visualize_code_heatmap_codegen option).
	ClipPercentile float64
	// TabWidth is the number of columns a tab advances (default 4).
	TabWidth int
}

// codeCells lays text out on a grid: one cell per character, tabs expanded to the next
// multiple of tab columns. It returns per line the runes and the index into weights of
// each cell.
type codeCell struct {
	r   rune
	idx int
}

func layoutCode(text string, tab int) [][]codeCell {
	lines := [][]codeCell{nil}
	i := 0
	for _, r := range text {
		switch r {
		case '\n':
			lines[len(lines)-1] = append(lines[len(lines)-1], codeCell{'⏎', i})
			lines = append(lines, nil)
		case '\t':
			l := &lines[len(lines)-1]
			n := tab - len(*l)%tab
			for range n {
				*l = append(*l, codeCell{' ', i})
			}
		case '\r':
			// drawn as nothing; its weight is still counted in the scale
		default:
			lines[len(lines)-1] = append(lines[len(lines)-1], codeCell{r, i})
		}
		i++
	}
	return lines
}

// codeScale returns the colour-scale maximum of per-character weights.
func codeScale(weights []float64, clip float64) (float64, error) {
	for i, w := range weights {
		if math.IsNaN(w) || w < 0 {
			return 0, fmt.Errorf("code heatmap: weight %d is %v; want a non-negative number", i, w)
		}
	}
	_, hi := finiteRange(weights)
	if clip > 0 && clip < 100 {
		hi = percentile(weights, clip)
	}
	if hi <= 0 {
		hi = 1
	}
	return hi, nil
}

func checkCode(text string, weights []float64) error {
	n := len([]rune(text))
	if n == 0 {
		return errors.New("code heatmap: empty text")
	}
	if len(weights) != n {
		return fmt.Errorf("code heatmap: %d weights for %d characters", len(weights), n)
	}
	return nil
}

// CodeHeatmap draws source text with each character's background coloured by its
// weight (followup-attention's visualize_code_heatmap_codegen: token weights mapped to
// characters, see analysis/code), with line numbers and a colour bar. weights has one
// entry per character (rune) of text. Newlines show as ⏎ so their weight is visible.
func CodeHeatmap(text string, weights []float64, o CodeOptions) (*Figure, error) {
	if err := checkCode(text, weights); err != nil {
		return nil, err
	}
	if o.Colormap == nil {
		o.Colormap = Reds
	}
	if o.TabWidth <= 0 {
		o.TabWidth = 4
	}
	hi, err := codeScale(weights, o.ClipPercentile)
	if err != nil {
		return nil, err
	}
	lines := layoutCode(text, o.TabWidth)
	mono := textStyle(monoFont, 9)
	cw := mono.Width("M")
	const lh = 12 // char_height = 12 in the original
	width := 0
	for _, l := range lines {
		width = max(width, len(l))
	}
	numW := mono.Width(fmt.Sprint(len(lines))) + 10
	left, top, right, bottom := vg.Length(10)+numW, vg.Length(34), vg.Length(90), vg.Length(12)
	fig := &Figure{
		Width:  max(left+cw*vg.Length(max(width, 20))+right, min(textStyle(boldFont, 12).Width(o.Title)+20, maxTitleWidth)),
		Height: top + lh*vg.Length(len(lines)) + bottom,
	}
	fig.draw = func(c draw.Canvas) {
		c.SetColor(color.White)
		c.Fill(c.Rectangle.Path())
		title, fitted := fitTitle(textStyle(boldFont, 12), o.Title, c.Size().X-20)
		title.XAlign, title.YAlign = draw.XLeft, draw.YTop
		c.FillText(title, vg.Point{X: c.Min.X + 10, Y: c.Max.Y - 6}, fitted)
		x0, y1 := c.Min.X+left, c.Max.Y-top
		num := mono
		num.Color = color.Gray{0x88}
		num.XAlign, num.YAlign = draw.XRight, draw.YCenter
		ch := mono
		ch.YAlign = draw.YCenter
		// Backgrounds first, then text, so no background covers a glyph's descender
		// (underscores sit below the baseline).
		for li, l := range lines {
			yc := y1 - lh*vg.Length(li) - lh/2
			for k, cell := range l {
				x := x0 + cw*vg.Length(k)
				c.SetColor(o.Colormap.At(weights[cell.idx] / hi))
				c.Fill(vg.Rectangle{Min: vg.Point{X: x, Y: yc - lh/2}, Max: vg.Point{X: x + cw, Y: yc + lh/2}}.Path())
			}
		}
		for li, l := range lines {
			yc := y1 - lh*vg.Length(li) - lh/2
			c.FillText(num, vg.Point{X: x0 - 6, Y: yc}, fmt.Sprint(li+1))
			for k, cell := range l {
				bg := o.Colormap.At(weights[cell.idx] / hi)
				x := x0 + cw*vg.Length(k)
				if cell.r != ' ' {
					ch.Color = textOn(bg)
					if cell.r == '⏎' {
						ch.Color = color.Gray{0xaa}
					}
					c.FillText(ch, vg.Point{X: x, Y: yc}, string(cell.r))
				}
			}
		}
		drawColorbar(c, y1-lh*vg.Length(len(lines)), y1, x0+cw*vg.Length(max(width, 20))+14, 0, hi, o.Colormap, "weight")
	}
	return fig, nil
}

// textOn returns black or white, whichever reads better on bg.
func textOn(bg color.RGBA) color.Color {
	if 0.299*float64(bg.R)+0.587*float64(bg.G)+0.114*float64(bg.B) < 128 {
		return color.White
	}
	return color.Black
}

// WriteCodeHTML writes the code heatmap as a self-contained HTML fragment (a <pre>
// with one coloured <span> per character, the weight in its title attribute, and line
// numbers), for embedding in a page or saving as .html.
func WriteCodeHTML(w io.Writer, text string, weights []float64, o CodeOptions) error {
	if err := checkCode(text, weights); err != nil {
		return err
	}
	if o.Colormap == nil {
		o.Colormap = Reds
	}
	hi, err := codeScale(weights, o.ClipPercentile)
	if err != nil {
		return err
	}
	var b strings.Builder
	if o.Title != "" {
		fmt.Fprintf(&b, "<h3>%s</h3>\n", html.EscapeString(o.Title))
	}
	b.WriteString(`<pre class="codeheat" style="font-family:'DejaVu Sans Mono',monospace;font-size:13px;line-height:1.35;tab-size:4">`)
	line := 1
	startLine := func() { fmt.Fprintf(&b, `<span style="color:#888;user-select:none">%*d  </span>`, 4, line) }
	startLine()
	i := 0
	for _, r := range text {
		bg := o.Colormap.At(weights[i] / hi)
		fg := "#000"
		if textOn(bg) == color.White {
			fg = "#fff"
		}
		s := html.EscapeString(string(r))
		if r == '\n' {
			s = "⏎"
			fg = "#aaa"
		}
		fmt.Fprintf(&b, `<span style="background:#%02x%02x%02x;color:%s" title="%.4g">%s</span>`, bg.R, bg.G, bg.B, fg, weights[i], s)
		if r == '\n' {
			b.WriteByte('\n')
			line++
			startLine()
		}
		i++
	}
	b.WriteString("</pre>\n")
	_, err = io.WriteString(w, b.String())
	return err
}

// WriteCodeHTMLPage writes a complete self-contained HTML page around WriteCodeHTML.
func WriteCodeHTMLPage(w io.Writer, text string, weights []float64, o CodeOptions) error {
	if _, err := fmt.Fprintf(w, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title></head><body>\n", html.EscapeString(o.Title)); err != nil {
		return err
	}
	if err := WriteCodeHTML(w, text, weights, o); err != nil {
		return err
	}
	_, err := io.WriteString(w, "</body></html>\n")
	return err
}

// SortedWeights draws the character weights of a code heatmap sorted in ascending
// order against linspace(0, 1, n, endpoint=False), the line labelled "cumulative
// distribution" that visualize_code_heatmap_codegen draws beside the heatmap
// (seeds.md §1.9).
func SortedWeights(weights []float64, title string) (*Figure, error) {
	if len(weights) == 0 {
		return nil, errors.New("sorted weights: no weights")
	}
	y := slices.Clone(weights)
	for i, v := range y {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("sorted weights: weight %d is %v, finite weights expected", i, v)
		}
	}
	slices.Sort(y)
	x := make([]float64, len(y))
	for i := range x {
		x[i] = float64(i) / float64(len(y))
	}
	return Curves([]Series{{Name: "cumulative distribution", X: x, Y: y}},
		CurvesOptions{Title: title, XLabel: "fraction of characters", YLabel: "character weight (sorted)", LegendLeft: true})
}
