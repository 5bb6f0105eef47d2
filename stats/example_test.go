package stats_test

import (
	"fmt"

	"github.com/attnscope/attnscope/stats"
)

func ExampleSpearman() {
	r, _ := stats.Spearman([]float64{1, 2, 3, 4}, []float64{1, 3, 2, 4})
	fmt.Printf("rho %.1f p %.1f\n", r.Statistic, r.P)
	// Output: rho 0.8 p 0.2
}

func ExampleHolm() {
	adj, _ := stats.Holm([]float64{0.01, 0.04, 0.03, 0.2})
	fmt.Println(adj)
	// Output: [0.04 0.09 0.09 0.2]
}
