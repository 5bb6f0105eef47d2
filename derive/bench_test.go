package derive

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

const benchConfig = `passes:
  - {name: followup, function: compute_followup_attention}
  - {name: rollout, function: compute_attention_rollout_from_tensor}
  - {name: entropy, function: attention_entropy}
  - {name: js_layers, function: js_distance_layers}
`

// BenchmarkDerive derives 8 samples of [12,12,64,64] attention with four passes, from
// scratch each iteration, with 1 and 2 workers (the speed-up of parallel samples).
func BenchmarkDerive(b *testing.B) {
	cfg, err := ParseConfig("bench.yaml", []byte(benchConfig), DefaultRegistry())
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	run := &memRun{att: map[string]*tensor.Tensor{}, meta: map[string]*store.Sample{}}
	for i := 0; i < 8; i++ {
		run.att[fmt.Sprintf("s%d", i)] = randomAttention(r, 12, 12, 64)
	}
	for _, w := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				run.dir = b.TempDir()
				b.StartTimer()
				if _, err := Derive(context.Background(), run, cfg, Options{Workers: w}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.RemoveAll(filepath.Join(run.dir, "derived"))
				b.StartTimer()
			}
		})
	}
}
