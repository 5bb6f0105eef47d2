package seq2seq

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/attnscope/attnscope/internal/procstat"
)

// Benchmark shapes shared with testdata/torch_bench.py (same architecture, same
// batch shapes): the demo's model size.
var benchCfg = Config{Kind: KindAttention, SrcVocab: 3000, TrgVocab: 3700, Embed: 64, Hidden: 128, Layers: 2, MaxSrcLen: 24, MaxTrgLen: 32}

const benchBatch = 32

func benchBatchData(cfg Config, rng *rand.Rand) Batch {
	var ex []Example
	for range benchBatch {
		s, t := []int{SOSID}, []int{SOSID}
		for range cfg.MaxSrcLen {
			s = append(s, 4+rng.IntN(cfg.SrcVocab-4))
		}
		for range cfg.MaxTrgLen {
			t = append(t, 4+rng.IntN(cfg.TrgVocab-4))
		}
		ex = append(ex, Example{Src: append(s, EOSID), Trg: append(t, EOSID)})
	}
	return PadBatch(ex, benchBatch, cfg)
}

// BenchmarkTrainStep measures one Adam step with teacher forcing 0.5 on a full
// batch (32 × 26 source × 34 target positions); it reports target tokens per
// second. Compare: /usr/bin/python3 model/seq2seq/testdata/torch_bench.py.
func BenchmarkTrainStep(b *testing.B) {
	backend := testBackend(b)
	tr, err := NewTrainer(backend, benchCfg, Hyper{LearningRate: 1e-3, ClipNorm: 1, TeacherForcing: 0.5}, benchCfg.InitParams(1))
	if err != nil {
		b.Fatal(err)
	}
	batch := benchBatchData(benchCfg, rand.New(rand.NewPCG(1, 1)))
	if _, err := tr.Step(context.Background(), batch); err != nil { // compile
		b.Fatal(err)
	}
	b.ResetTimer()
	c0 := procstat.CPUTime()
	for b.Loop() {
		if _, err := tr.Step(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch.Tokens()*b.N)/b.Elapsed().Seconds(), "tokens/s")
	b.ReportMetric(float64((procstat.CPUTime()-c0).Milliseconds())/float64(b.N), "cpu-ms/op")
}

// BenchmarkGreedy measures greedy decoding of one source (26 positions) for 33
// steps (an untrained model rarely stops early; the step count is reported).
func BenchmarkGreedy(b *testing.B) {
	backend := testBackend(b)
	dec, err := NewDecoder(backend, benchCfg, benchCfg.InitParams(1))
	if err != nil {
		b.Fatal(err)
	}
	src := benchBatchData(benchCfg, rand.New(rand.NewPCG(1, 1))).Src[:1]
	if _, err := dec.Greedy(context.Background(), src, benchCfg.MaxTrgLen+1); err != nil {
		b.Fatal(err)
	}
	steps := 0
	b.ResetTimer()
	c0 := procstat.CPUTime()
	for b.Loop() {
		h, err := dec.Greedy(context.Background(), src, benchCfg.MaxTrgLen+1)
		if err != nil {
			b.Fatal(err)
		}
		steps += len(h[0].IDs)
	}
	b.ReportMetric(float64(steps)/float64(b.N), "steps/op")
	b.ReportMetric(float64((procstat.CPUTime()-c0).Milliseconds())/float64(b.N), "cpu-ms/op")
}
