package viz

import (
	"io"
	"math/rand/v2"
	"testing"
)

// randomCausal returns an n×n causal attention matrix with softmax rows of random
// logits (a peak on the previous token), deterministic in seed.
func randomCausal(n int, seed uint64) Matrix {
	r := rand.New(rand.NewPCG(seed, 7))
	return causal(n, func(i, j int) float64 {
		v := r.ExpFloat64()
		if j == i-1 {
			v *= 4
		}
		return v
	})
}

// BenchmarkGrid512 renders the all-heads grid of a 12-layer, 12-head model on 512
// tokens to PNG (the acceptance target is under 10 s on 2 cores).
func BenchmarkGrid512(b *testing.B) {
	units := make([][]Matrix, 12)
	for l := range units {
		for h := range 12 {
			units[l] = append(units[l], randomCausal(512, uint64(l*12+h)))
		}
	}
	for _, clip := range []float64{0, 99.9} {
		name := "max"
		if clip > 0 {
			name = "clip99.9"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				f, err := Grid(units, GridOptions{Title: "bench", ClipPercentile: clip})
				if err != nil {
					b.Fatal(err)
				}
				if err := f.WriteTo(io.Discard, PNG); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHeatmap512 renders one 512-token heatmap with token labels to PNG.
func BenchmarkHeatmap512(b *testing.B) {
	m := randomCausal(512, 1)
	labels := make([]string, 512)
	for i := range labels {
		labels[i] = "Ġtok"
	}
	for b.Loop() {
		f, err := Heatmap(m, HeatmapOptions{RowLabels: labels, ColLabels: labels})
		if err != nil {
			b.Fatal(err)
		}
		if err := f.WriteTo(io.Discard, PNG); err != nil {
			b.Fatal(err)
		}
	}
}
