package viz

import (
	"bytes"
	"encoding/xml"
	"image/color"
	"image/png"
	"io"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg"
)

// everyFigure returns a builder of each kind of figure, titled title.
func everyFigure(title string) map[string]func() (*Figure, error) {
	m, labels, toks := referenceFixture()
	var layers []Matrix
	for l := range 2 {
		layers = append(layers, randomCausal(8, uint64(l)))
	}
	return map[string]func() (*Figure, error){
		"heatmap": func() (*Figure, error) {
			return Heatmap(randomCausal(16, 1), HeatmapOptions{Title: title, RowLabels: fixedTokens, ColLabels: fixedTokens, PromptLen: 5})
		},
		"grid": func() (*Figure, error) {
			return Grid([][]Matrix{{randomCausal(8, 1), randomCausal(8, 2)}, {randomCausal(8, 3)}}, GridOptions{Title: title})
		},
		"code": func() (*Figure, error) {
			return CodeHeatmap(goldenCode, codeWeights(goldenCode), CodeOptions{Title: title})
		},
		"histograms": func() (*Figure, error) { return Histograms([]HistPanel{{Values: []float64{1, 2, 2, 3}}}, title) },
		"curves": func() (*Figure, error) {
			return Curves([]Series{{Name: "a", X: []float64{0, 1}, Y: []float64{0, 1}}}, CurvesOptions{Title: title})
		},
		"received":  func() (*Figure, error) { return Received([]float64{1, 2, 0.5}, []string{"a", " b", "\n"}, title) },
		"reference": func() (*Figure, error) { return Reference(m, labels, toks, toks, ReferenceOutline, title) },
		"scores":    func() (*Figure, error) { return Reference(m, labels, toks, toks, ReferenceScores, title) },
		"dashboard": func() (*Figure, error) { d := dashboardFixture(true); d.Title = title; return Dashboard(d) },
		"empty-dashboard": func() (*Figure, error) {
			d := dashboardFixture(false)
			d.Title = title
			return Dashboard(d)
		},
		"graph": func() (*Figure, error) { return AttentionGraph(layers, fixedTokens[:8], 3, title) },
		"alignment": func() (*Figure, error) {
			return Alignment(randomCausal(8, 4), fixedTokens[:8], fixedTokens[:8], title)
		},
		"code-weights": func() (*Figure, error) { return SortedWeights(codeWeights(goldenCode), title) },
	}
}

// TestEveryFigureInEveryFormat renders each kind of figure as PNG, SVG and PDF: SVG
// must be well-formed XML, PDF a complete document.
func TestEveryFigureInEveryFormat(t *testing.T) {
	build := everyFigure("t")
	for name, mk := range build {
		f, err := mk()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f.DPI = 40
		for _, format := range []Format{PNG, SVG, PDF} {
			var b bytes.Buffer
			if err := f.WriteTo(&b, format); err != nil {
				t.Fatalf("%s as %s: %v", name, format, err)
			}
			switch format {
			case SVG:
				// Every figure has a title or labels in DejaVu Sans, embedded.
				if !bytes.Contains(b.Bytes(), []byte("@font-face")) || !bytes.Contains(b.Bytes(), []byte(`font-family:"DejaVu Sans";`)) {
					t.Errorf("%s as SVG: DejaVu Sans is not embedded as @font-face", name)
				}
				d := xml.NewDecoder(&b)
				for {
					_, err := d.Token()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatalf("%s as SVG: not well-formed XML: %v", name, err)
					}
				}
			case PDF:
				if !bytes.HasPrefix(b.Bytes(), []byte("%PDF-")) || !bytes.Contains(b.Bytes()[max(0, b.Len()-64):], []byte("%%EOF")) {
					t.Fatalf("%s as PDF: incomplete document", name)
				}
			}
		}
	}
	if err := (&Figure{}).WriteTo(io.Discard, "gif"); err == nil {
		t.Error("unknown format: no error")
	}
}

// TestLongTitlesFit draws every kind of figure under a title far wider than the
// figure (as the reference figures' "dataset1-000 ..." titles were) and checks that
// no title pixel touches the left or right edge of the image: titles shrink, then
// wrap onto two lines, then are cut with "…", never clipped.
func TestLongTitlesFit(t *testing.T) {
	long := "dataset1-000 " + strings.Repeat("a very long title of a reference figure ", 8) + "end"
	for name, mk := range everyFigure(long) {
		f, err := mk()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f.DPI = 72
		var b bytes.Buffer
		if err := f.WriteTo(&b, PNG); err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(&b)
		if err != nil {
			t.Fatal(err)
		}
		r := img.Bounds()
		band := min(r.Dy(), 22) // the title band: two lines of 8 pt at 72 dpi
		for y := r.Min.Y; y < r.Min.Y+band; y++ {
			for _, x := range []int{r.Min.X, r.Min.X + 1, r.Max.X - 2, r.Max.X - 1} {
				if c := color.GrayModel.Convert(img.At(x, y)).(color.Gray); c.Y < 200 {
					t.Errorf("%s: pixel (%d, %d) at the edge of the title band is dark (%d): the title is clipped", name, x, y, c.Y)
					break
				}
			}
		}
	}
}

func TestFitTitle(t *testing.T) {
	sty := textStyle(boldFont, 12)
	for _, tc := range []struct {
		title string
		width vg.Length
		lines int
	}{
		{"short", 200, 1},
		{"a somewhat longer title that shrinks", 190, 1},
		{strings.Repeat("word ", 30), 200, 2},
		{strings.Repeat("x", 300), 100, 2},
	} {
		s, got := fitTitle(sty, tc.title, tc.width)
		lines := strings.Split(got, "\n")
		if len(lines) != tc.lines {
			t.Errorf("%q in %v: %d lines %q, want %d", tc.title, tc.width, len(lines), got, tc.lines)
		}
		for _, l := range lines {
			if w := s.Width(l); w > tc.width {
				t.Errorf("%q in %v: line %q is %v wide", tc.title, tc.width, l, w)
			}
		}
		if s.Font.Size < minTitleSize {
			t.Errorf("%q: size %v below %v", tc.title, s.Font.Size, minTitleSize)
		}
		if tc.lines == 1 && got != tc.title {
			t.Errorf("%q changed to %q though it fits on one line", tc.title, got)
		}
	}
}
