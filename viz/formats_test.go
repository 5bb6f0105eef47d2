package viz

import (
	"bytes"
	"encoding/xml"
	"io"
	"testing"
)

// TestEveryFigureInEveryFormat renders each kind of figure as PNG, SVG and PDF: SVG
// must be well-formed XML, PDF a complete document.
func TestEveryFigureInEveryFormat(t *testing.T) {
	m, labels, toks := referenceFixture()
	var layers []Matrix
	for l := range 2 {
		layers = append(layers, randomCausal(8, uint64(l)))
	}
	build := map[string]func() (*Figure, error){
		"heatmap": func() (*Figure, error) {
			return Heatmap(randomCausal(16, 1), HeatmapOptions{Title: "t", RowLabels: fixedTokens, ColLabels: fixedTokens, PromptLen: 5})
		},
		"grid": func() (*Figure, error) {
			return Grid([][]Matrix{{randomCausal(8, 1), randomCausal(8, 2)}, {randomCausal(8, 3)}}, GridOptions{Title: "g"})
		},
		"code": func() (*Figure, error) {
			return CodeHeatmap(goldenCode, codeWeights(goldenCode), CodeOptions{Title: "c"})
		},
		"histograms": func() (*Figure, error) { return Histograms([]HistPanel{{Values: []float64{1, 2, 2, 3}}}, "h") },
		"curves": func() (*Figure, error) {
			return Curves([]Series{{Name: "a", X: []float64{0, 1}, Y: []float64{0, 1}}}, CurvesOptions{Title: "c"})
		},
		"received":  func() (*Figure, error) { return Received([]float64{1, 2, 0.5}, []string{"a", " b", "\n"}, "r") },
		"reference": func() (*Figure, error) { return Reference(m, labels, toks, toks, ReferenceOutline, "ref") },
		"scores":    func() (*Figure, error) { return Reference(m, labels, toks, toks, ReferenceScores, "ref") },
		"dashboard": func() (*Figure, error) { return Dashboard(dashboardFixture(true)) },
		"empty-dashboard": func() (*Figure, error) {
			return Dashboard(dashboardFixture(false))
		},
		"graph": func() (*Figure, error) { return AttentionGraph(layers, fixedTokens[:8], 3, "graph") },
		"alignment": func() (*Figure, error) {
			return Alignment(randomCausal(8, 4), fixedTokens[:8], fixedTokens[:8], "a")
		},
		"code-weights": func() (*Figure, error) { return SortedWeights(codeWeights(goldenCode), "w") },
	}
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
