package web

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/attnscope/attnscope/capture/capturetest"
)

// BenchmarkQKFullResolutionTile: GET one full-resolution (level 0) 256×256 max
// tile on or below the diagonal of a 4,096-token --store qk sample of tiny-llama,
// each iteration a tile not requested before (the zoom pyramid is built before the timer starts).
// Recomputing only the tile's columns costs 256/4096 of recomputing whole rows.
//
//	go test -run '^$' -bench QKFullResolutionTile -benchtime 100x ./web
func BenchmarkQKFullResolutionTile(b *testing.B) {
	const n = 4096
	run := filepath.Join(b.TempDir(), "qk")
	capturetest.Capture(b, capturetest.TinyLlama(b, n), run, capturetest.Code(400), true)
	base, _ := startServer(b, run)
	get := func(ty, tx int) {
		if shape, _ := getFloats(b, base, fmt.Sprintf("/api/runs/qk/samples/s/tile/0/0/max/0/%d/%d", ty, tx)); shape != "256,256" {
			b.Fatalf("tile (%d, %d): shape %s", ty, tx, shape)
		}
	}
	get(0, 0)          // builds the pyramid
	var lower [][2]int // tiles on and below the diagonal, where the weights are
	for ty := range n / 256 {
		for tx := range ty + 1 {
			lower = append(lower, [2]int{ty, tx})
		}
	}
	lower = lower[1:]
	b.ResetTimer()
	for i := range b.N {
		get(lower[i%len(lower)][0], lower[i%len(lower)][1])
	}
}
