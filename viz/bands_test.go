package viz

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestMeanStdBands(t *testing.T) {
	x := []float64{1, 2, 3}
	f, err := MeanStdBands([]Band{
		{Name: "A–B", X: x, Mean: []float64{1e3, 2e3, 1.5e3}, Std: []float64{100, 50, 0}},
		{Name: "A–C", X: x, Mean: []float64{2e3, 2.5e3, 3e3}, Std: []float64{10, 20, 30}},
	}, BandsOptions{Title: "t", XLabel: "layer", YLabel: "L1 distance", Scientific: true})
	if err != nil {
		t.Fatal(err)
	}
	var svg bytes.Buffer
	if err := f.WriteTo(&svg, SVG); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"A–B", "A–C", "L1 distance", "e+03"} {
		if !strings.Contains(svg.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if _, err := MeanStdBands([]Band{{X: x, Mean: x[:2], Std: x}}, BandsOptions{}); err == nil {
		t.Error("mismatched lengths accepted")
	}
	if _, err := MeanStdBands([]Band{{X: x, Mean: []float64{1, math.NaN(), 2}, Std: x}}, BandsOptions{}); err == nil {
		t.Error("NaN mean accepted")
	}
	if _, err := MeanStdBands(nil, BandsOptions{}); err == nil {
		t.Error("no band accepted")
	}
}
