package viz

import (
	"image"
	"image/color"
	"math"
	"strings"
	"testing"

	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// textRecorder is a vg.Canvas that draws nothing and records the box of every string
// drawn, in figure coordinates (following Push/Pop/Translate/Rotate/Scale).
type textRecorder struct {
	w, h  vg.Length
	m     [6]float64 // affine transform: x' = m0 x + m1 y + m2, y' = m3 x + m4 y + m5
	stack [][6]float64
	boxes []textBox
}

// textBox is one drawn string: its four corners and text.
type textBox struct {
	text string
	pts  [4][2]float64
}

func newTextRecorder(w, h vg.Length) *textRecorder {
	return &textRecorder{w: w, h: h, m: [6]float64{1, 0, 0, 0, 1, 0}}
}

func (r *textRecorder) Size() (vg.Length, vg.Length) { return r.w, r.h }
func (r *textRecorder) SetLineWidth(vg.Length)       {}
func (r *textRecorder) SetLineDash([]vg.Length, vg.Length) {
}
func (r *textRecorder) SetColor(color.Color)                {}
func (r *textRecorder) Stroke(vg.Path)                      {}
func (r *textRecorder) Fill(vg.Path)                        {}
func (r *textRecorder) DrawImage(vg.Rectangle, image.Image) {}
func (r *textRecorder) Push()                               { r.stack = append(r.stack, r.m) }
func (r *textRecorder) Pop() {
	r.m = r.stack[len(r.stack)-1]
	r.stack = r.stack[:len(r.stack)-1]
}
func (r *textRecorder) mul(a, b, c, d, e, f float64) { // r.m = r.m × [a b c; d e f]
	m := r.m
	r.m = [6]float64{m[0]*a + m[1]*d, m[0]*b + m[1]*e, m[0]*c + m[1]*f + m[2], m[3]*a + m[4]*d, m[3]*b + m[4]*e, m[3]*c + m[4]*f + m[5]}
}
func (r *textRecorder) Translate(pt vg.Point) { r.mul(1, 0, float64(pt.X), 0, 1, float64(pt.Y)) }
func (r *textRecorder) Rotate(a float64) {
	s, c := math.Sincos(a)
	r.mul(c, -s, 0, s, c, 0)
}
func (r *textRecorder) Scale(x, y float64) { r.mul(x, 0, 0, 0, y, 0) }
func (r *textRecorder) FillString(f font.Face, pt vg.Point, s string) {
	if strings.TrimSpace(s) == "" {
		return
	}
	e := f.Extents()
	// The glyph box shrunk by 0.3 pt on each side: neighbours that merely touch (a
	// monospace line) do not count as overlapping.
	x0, x1 := float64(pt.X)+0.3, float64(pt.X+f.Width(s))-0.3
	y0, y1 := float64(pt.Y-e.Descent)+0.3, float64(pt.Y+e.Ascent)-0.3
	var b textBox
	b.text = s
	for i, p := range [4][2]float64{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}} {
		b.pts[i] = [2]float64{r.m[0]*p[0] + r.m[1]*p[1] + r.m[2], r.m[3]*p[0] + r.m[4]*p[1] + r.m[5]}
	}
	r.boxes = append(r.boxes, b)
}

// overlap reports whether two convex quadrilaterals intersect (separating axis test).
func overlap(a, b [4][2]float64) bool {
	for _, poly := range [][4][2]float64{a, b} {
		for i := range 4 {
			p, q := poly[i], poly[(i+1)%4]
			nx, ny := q[1]-p[1], p[0]-q[0]
			amin, amax := math.Inf(1), math.Inf(-1)
			bmin, bmax := math.Inf(1), math.Inf(-1)
			for k := range 4 {
				va := a[k][0]*nx + a[k][1]*ny
				vb := b[k][0]*nx + b[k][1]*ny
				amin, amax = min(amin, va), max(amax, va)
				bmin, bmax = min(bmin, vb), max(bmax, vb)
			}
			if amax <= bmin || bmax <= amin {
				return false
			}
		}
	}
	return true
}

// TestTextNeverOverlaps draws 512-token figures (heatmap, code, reference,
// alignment) on a canvas that records the box of every string and checks that no two
// boxes intersect: thinned tick labels, line numbers, titles and colour-bar labels
// all stay apart. A figure that draws every one of 512 labels must fail it.
func TestTextNeverOverlaps(t *testing.T) {
	const n = 512
	toks := make([]string, n)
	for i := range toks {
		toks[i] = []string{"Ġreturn", "(", "Ġself", ".", "items", ")", "Ċ", "Ġ=", "Ġdef", "_"}[i%10]
	}
	var src strings.Builder
	for _, t := range toks {
		src.WriteString(strings.NewReplacer("Ġ", " ", "Ċ", "\n").Replace(t))
	}
	code := src.String()
	labels := make([]int, n*n)
	for i := range labels {
		labels[i] = IgnoreLabel
	}
	for i := n / 2; i < n; i++ {
		labels[i*n+i/2] = 1
		labels[i*n+i/3] = 0
	}
	m := smoothCausal(n)
	figs := map[string]func() (*Figure, error){
		"heatmap": func() (*Figure, error) {
			return Heatmap(m, HeatmapOptions{Title: "512 tokens", RowLabels: toks, ColLabels: toks, PromptLen: 100})
		},
		"code":      func() (*Figure, error) { return CodeHeatmap(code, codeWeights(code), CodeOptions{Title: "code"}) },
		"reference": func() (*Figure, error) { return Reference(m, labels, toks, toks, ReferenceOutline, "reference") },
		"scores":    func() (*Figure, error) { return Reference(m, labels, toks, toks, ReferenceScores, "scores") },
		"alignment": func() (*Figure, error) { return Alignment(m, toks, toks, "alignment") },
		"alignment-short": func() (*Figure, error) {
			return Alignment(m, []string{"a", "bb", "ccc"}, toks[:7], "alignment")
		},
	}
	check := func(name string, f *Figure) int {
		r := newTextRecorder(f.Width, f.Height)
		f.draw(draw.New(r))
		bad := 0
		for i := range r.boxes {
			for j := i + 1; j < len(r.boxes); j++ {
				if overlap(r.boxes[i].pts, r.boxes[j].pts) {
					if bad < 3 {
						t.Logf("%s: %q and %q overlap", name, r.boxes[i].text, r.boxes[j].text)
					}
					bad++
				}
			}
		}
		if len(r.boxes) < 10 {
			t.Errorf("%s: only %d strings recorded", name, len(r.boxes))
		}
		return bad
	}
	for name, mk := range figs {
		f, err := mk()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if bad := check(name, f); bad > 0 {
			t.Errorf("%s: %d pairs of strings overlap", name, bad)
		}
	}
	// The check can fail: every label drawn on a 512-row axis overlaps.
	f, _ := Heatmap(m, HeatmapOptions{})
	full := &Figure{Width: f.Width, Height: f.Height, draw: func(c draw.Canvas) {
		sty := textStyle(sansFont, 8)
		for i := range n {
			c.FillText(sty, vg.Point{X: 10, Y: vg.Length(i)}, toks[i])
		}
	}}
	if bad := check("unthinned", full); bad == 0 {
		t.Error("512 labels 1 pt apart were not seen to overlap: the check cannot fail")
	}
}
