package viz

import (
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
)

// minTitleSize is the smallest size a title shrinks to before it wraps.
const minTitleSize = 8

// fitTitle returns a title and style that fit within width: the style's size shrinks
// (down to minTitleSize) until the title fits on one line; a title still too long
// wraps at spaces onto two lines, and what does not fit on those is cut with "…".
// Nothing is ever drawn past width, so a centred title is never clipped at the
// figure's edges.
func fitTitle(sty text.Style, title string, width vg.Length) (text.Style, string) {
	if title == "" || width <= 0 || sty.Width(title) <= width {
		return sty, title
	}
	for size := sty.Font.Size - 1; size >= minTitleSize; size-- {
		sty.Font.Size = size
		if sty.Width(title) <= width {
			return sty, title
		}
	}
	sty.Font.Size = font.Length(minTitleSize)
	var lines []string
	rest := title
	for len(lines) < 2 && rest != "" {
		line := fitLine(sty, rest, width, len(lines) == 1)
		lines = append(lines, line)
		rest = strings.TrimLeft(rest[len(strings.TrimSuffix(line, "…")):], " ")
	}
	return sty, strings.Join(lines, "\n")
}

// fitLine returns the longest prefix of s that fits width: broken after a word when
// one fits, else cut mid-word; when last is set and s does not fit whole, the prefix
// ends with "…".
func fitLine(sty text.Style, s string, width vg.Length, last bool) string {
	if sty.Width(s) <= width {
		return s
	}
	suffix := ""
	if last {
		suffix = "…"
	}
	rs := []rune(s)
	n := 0 // the longest rune prefix that fits
	for n < len(rs) && sty.Width(string(rs[:n+1])+suffix) <= width {
		n++
	}
	n = max(n, 1)
	if !last {
		if sp := strings.LastIndex(string(rs[:n]), " "); sp > 0 {
			return string(rs[:n])[:sp]
		}
	}
	return string(rs[:n]) + suffix
}

// fitPlotTitle fits p's title to width (see fitTitle).
func fitPlotTitle(p *plot.Plot, width vg.Length) {
	p.Title.TextStyle, p.Title.Text = fitTitle(p.Title.TextStyle, p.Title.Text, width)
}

// maxTitleWidth caps how far a figure widens to hold its title on one line; longer
// titles shrink and wrap (fitTitle).
const maxTitleWidth = 720
