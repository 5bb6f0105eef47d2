package model

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
)

// BenchmarkForwardCapture times a full-capture forward pass (attention and
// hidden states recorded, no LM head) of the trained GPT-2 mini at N=128.
// $ATTNSCOPE_BENCH_N sets N; $ATTNSCOPE_BENCH_MODEL points it at another model folder (e.g. GPT-2
// small from ../shared/bench/torch_gpt2.py); side-by-side figures with
// PyTorch come from `attnscope bench capture`.
func BenchmarkForwardCapture(b *testing.B) {
	dir := os.Getenv("ATTNSCOPE_BENCH_MODEL")
	if dir == "" {
		dir = refdata.Path(b, "models", "code-gpt2-mini")
	}
	m, err := Load(dir, LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	n := 128
	if v, err := strconv.Atoi(os.Getenv("ATTNSCOPE_BENCH_N")); err == nil {
		n = v
	}
	ids := make([]int, n)
	for i := range ids {
		ids[i] = (i * 37) % m.Config().VocabSize
	}
	rec := RecorderFunc(func(string, []int, []float32) error { return nil })
	ctx := context.Background()
	if _, err := m.Forward(ctx, Input{IDs: ids}, rec, ForwardOptions{Hidden: true}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := m.Forward(ctx, Input{IDs: ids}, rec, ForwardOptions{Hidden: true}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(ForwardFLOPs(m.Config(), len(ids))*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
