package viz

import (
	"bytes"
	"testing"
)

func TestStackedSharesAndSideBySide(t *testing.T) {
	f, err := StackedShares([]ShareBar{{"model", []float64{1, 2, 3, 4}}, {"baseline", []float64{4, 3, 2, 1}}}, []string{"0", "1", "2", "3"}, "top-3", "% of rows")
	if err != nil {
		t.Fatal(err)
	}
	g, err := CodeHeatmap("ab\nc", []float64{1, 2, 3, 4}, CodeOptions{Title: "code"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := SideBySide(f, g)
	if err != nil || s.Width <= f.Width+g.Width || s.Height != max(f.Height, g.Height) {
		t.Fatalf("side by side: %v", err)
	}
	for _, fig := range []*Figure{f, s} {
		var b bytes.Buffer
		if err := fig.WriteTo(&b, PNG); err != nil || b.Len() == 0 {
			t.Fatal(err)
		}
	}
	if _, err := StackedShares([]ShareBar{{"m", []float64{1}}}, []string{"0", "1"}, "", ""); err == nil {
		t.Fatal("counts of the wrong length accepted")
	}
	if _, err := StackedShares([]ShareBar{{"m", []float64{-1, 1}}}, []string{"0", "1"}, "", ""); err == nil {
		t.Fatal("negative count accepted")
	}
	if _, err := SideBySide(); err == nil {
		t.Fatal("no figures accepted")
	}
}
