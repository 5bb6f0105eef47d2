package analysis

import (
	"context"
	"os"
	"strconv"
	"testing"
)

// benchLayers is the number of layers of the slow-pass benchmarks: the measured sizes by
// default, fewer with ATTNSCOPE_BENCH_LAYERS (a quick check on a busy machine).
func benchLayers(def int) int {
	if n, err := strconv.Atoi(os.Getenv("ATTNSCOPE_BENCH_LAYERS")); err == nil && n > 0 {
		return n
	}
	return def
}

// collapseScalar is Collapse's row comparison as it was before rowPairsJS (one JSDistance
// per pair) with the same parallelism over heads; the benchmark's "before".
func collapseScalar(att *Tensor) float64 {
	L, H, N := att.Shape[0], att.Shape[1], att.Shape[2]
	out := make([]float64, L*H)
	_ = parallelFor(context.Background(), L*H, func(u int) {
		js, pairs := rowPairsJSScalar(context.Background(), att.Matrix(u/H, u%H), N)
		out[u] = js / float64(pairs)
	})
	return out[0]
}

// BenchmarkHeadCollapse is head_collapse on one GPT-2-small-sized sample (12 layers × 12
// heads × 450 tokens of random causal attention): "before" the per-pair JSDistance loop,
// "after" Collapse as it is.
//
//	GOEXPERIMENT=simd go test ./analysis -run '^$' -bench HeadCollapse -benchtime 1x
func BenchmarkHeadCollapse(b *testing.B) {
	att := randomAttention(3, benchLayers(12), 12, 450, true)
	b.Run("before", func(b *testing.B) {
		for b.Loop() {
			collapseScalar(att)
		}
	})
	b.Run("after", func(b *testing.B) {
		for b.Loop() {
			if _, err := Collapse(att, CollapseOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkFlowFourLayer is the attention_flow pass (raw head means) on one sample of a
// 4-layer, 4-head model at 456 tokens (peaky causal attention), the size that took 185 s.
// "Before" is measured by running it on the previous flow.go:
//
//	git show 6d3ac3b:analysis/flow.go > analysis/flow.go
//	GOEXPERIMENT=simd go test ./analysis -run '^$' -bench FlowFourLayer -benchtime 1x
//	git checkout analysis/flow.go
func BenchmarkFlowFourLayer(b *testing.B) {
	n := 456
	if s, err := strconv.Atoi(os.Getenv("ATTNSCOPE_BENCH_N")); err == nil && s > 0 {
		n = s
	}
	m, err := FlowMatrices(peakyAttention(5, 4, 4, n, true, false), FlowRaw)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := AttentionFlow(context.Background(), m, FlowOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
