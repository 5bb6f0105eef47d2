package train

import (
	"context"
	"testing"
)

// BenchmarkTrainStep times one AdamW step of the default model's shape
// (2 layers × 4 heads × 64 wide, batch 64 × 24 tokens of addition).
//
//	GOEXPERIMENT=simd go test ./train -run XXX -bench TrainStep
func BenchmarkTrainStep(b *testing.B) {
	be, err := Backend("")
	if err != nil {
		b.Fatal(err)
	}
	cfg := ModelConfig{VocabSize: Tokenizer().VocabSize(), NPositions: 64, NEmbd: 64, NLayer: 2, NHead: 4}
	tr, err := NewTrainer(be, cfg, Hyper{LearningRate: 1e-3, ClipNorm: 1}, cfg.InitParams(1))
	if err != nil {
		b.Fatal(err)
	}
	t := &testing.T{}
	ids, targets := additionBatch(t, 0, 64)
	for i := range ids {
		for len(ids[i]) < 24 {
			ids[i] = append(ids[i], 0)
			targets[i] = append(targets[i], -100)
		}
	}
	if _, err := tr.Step(context.Background(), ids, targets); err != nil { // compile
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tr.Step(context.Background(), ids, targets); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*64)/b.Elapsed().Seconds(), "samples/s")
}
