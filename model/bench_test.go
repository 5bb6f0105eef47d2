package model

import (
	"context"
	"os"
	"runtime/metrics"
	"strconv"
	"testing"

	"github.com/attnscope/attnscope/internal/procstat"
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
	// Five untimed passes, as `attnscope bench capture` runs by default: the first
	// compiles the graphs, and the first four write into memory the process has not
	// touched yet (a page fault per allocated byte until the first collection).
	for range 5 {
		if _, err := m.Forward(ctx, Input{IDs: ids}, rec, ForwardOptions{Hidden: true}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	cpu0, user0, flt0, gor0 := procstat.CPUTime(), procstat.UserTime(), procstat.MinorFaults(), goroutinesCreated()
	for range b.N {
		if _, err := m.Forward(ctx, Input{IDs: ids}, rec, ForwardOptions{Hidden: true}); err != nil {
			b.Fatal(err)
		}
	}
	// Process CPU time (user + system: page faults of new buffers count) per pass is
	// less sensitive than wall time to other processes on a shared machine; the page
	// faults per pass (memory the pass touched for the first time) do not depend on it.
	b.ReportMetric(float64((procstat.CPUTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64((procstat.UserTime()-user0).Microseconds())/1000/float64(b.N), "user-ms/op")
	b.ReportMetric(float64(procstat.MinorFaults()-flt0)/float64(b.N), "minflt/op")
	// Goroutines started per pass: the Go backend starts one per parallel chunk of an op
	// (matmul, transpose, bias epilogue, LayerNorm, GELU), so this counts its fork/joins.
	b.ReportMetric(float64(goroutinesCreated()-gor0)/float64(b.N), "goroutines/op")
	b.ReportMetric(ForwardFLOPs(m.Config(), len(ids))*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// goroutinesCreated is the number of goroutines this process has started (runtime/metrics).
func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// BenchmarkForwardIntervention times the capture pass of BenchmarkForwardCapture
// without an intervention ("none") and with one: a head's output zeroed in
// every layer ("zero_head_z"), a reinforcement of one head's pattern with a
// threshold in every layer ("pattern_threshold"), and the residual stream of
// every layer patched from another run ("patch_resid_post"). Compare the
// sub-benchmarks of one run (benchstat) for the overhead of the hook.
func BenchmarkForwardIntervention(b *testing.B) {
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
	ctx := context.Background()
	src := Activations{}
	if _, err := m.Forward(ctx, Input{IDs: ids}, src, ForwardOptions{Hidden: true, QKV: true}); err != nil {
		b.Fatal(err)
	}
	thr := 0.01
	var cells [][2]int
	for i := range n {
		cells = append(cells, [2]int{i, 0}, [2]int{i, i / 2})
	}
	for _, c := range []struct {
		name string
		iv   *Intervention
	}{
		{"none", nil},
		{"zero_head_z", &Intervention{Edits: []Edit{{Hook: "attn.hook_z", Heads: []int{0}, Op: OpZero}}}},
		{"pattern_threshold", &Intervention{Edits: []Edit{{Hook: "attn.hook_pattern", Heads: []int{0}, Cells: cells, Op: OpAdd, Value: 1, Threshold: &thr}}}},
		{"patch_resid_post", &Intervention{Edits: []Edit{{Hook: "hook_resid_post", Op: OpPatch, Source: src}}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			rec := RecorderFunc(func(string, []int, []float32) error { return nil })
			opts := ForwardOptions{Hidden: true, Intervention: c.iv}
			if _, err := m.Forward(ctx, Input{IDs: ids}, rec, opts); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if _, err := m.Forward(ctx, Input{IDs: ids}, rec, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
