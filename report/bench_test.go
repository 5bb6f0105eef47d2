package report

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
	"github.com/attnscope/attnscope/viz"
)

// BenchmarkGridFigure512 reads a 12-layer, 12-head, 512-token sample layer by layer
// from an in-memory run, max-pools every head and renders the all-heads grid to PNG
// (the target: under 10 s on 2 cores).
func BenchmarkGridFigure512(b *testing.B) {
	const L, H, N = 12, 12, 512
	r := &memRun{dir: "/runs/bench", att: map[string][]*tensor.Tensor{}}
	words := make([]string, N)
	for i := range words {
		words[i] = fmt.Sprint("w", i%37)
	}
	r.samples = []*store.Sample{{ID: "s", Text: strings.Join(words, " "), Tokens: words}}
	rng := rand.New(rand.NewPCG(1, 1))
	for range L {
		a := tensor.New(H, N, N)
		for h := range H {
			for i := range N {
				row := a.Data[(h*N+i)*N : (h*N+i)*N+i+1]
				s := 0.0
				for j := range row {
					row[j] = rng.Float64()
					s += row[j]
				}
				for j := range row {
					row[j] /= s
				}
			}
		}
		r.att["s"] = append(r.att["s"], a)
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		f, err := GridFigure(ctx, r, "s", 99.9)
		if err != nil {
			b.Fatal(err)
		}
		if err := f.WriteTo(io.Discard, viz.PNG); err != nil {
			b.Fatal(err)
		}
	}
}
