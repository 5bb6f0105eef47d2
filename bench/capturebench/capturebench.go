// Package capturebench times a full-capture forward pass (every attention matrix and
// hidden state, no LM head) beside the PyTorch eager baseline (../shared/bench/torch_gpt2.py,
// the same work) and beside the machine's matrix-multiply ceiling measured in the same run
// through the same GoMLX backend. `attnscope bench capture` is its command line.
package capturebench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	"github.com/attnscope/attnscope/internal/procstat"
	"github.com/attnscope/attnscope/model"
)

// Options configures Run.
type Options struct {
	Model string // model folder (config.json + model.safetensors)
	// Backend is the GoMLX backend config of the model and of the ceiling
	// (model.DefaultBackend when empty; e.g. "go" for the Go backend's op-parallel
	// mode or "go:parallelism=4" to compare worker settings).
	Backend string
	Sizes   []int // sequence lengths
	Threads []int // thread counts (GOMAXPROCS; torch.set_num_threads)
	Repeats int   // timed repetitions per cell (median reported)
	// Warmup is the number of untimed passes before them (at least 1: the first
	// compiles the graphs). After loading a model, the first few passes write into
	// memory the process has not touched yet and pay its page faults (40–50% more
	// time per pass for GPT-2 small at N = 128, for three or four passes); a capture
	// of a corpus runs at the speed of the passes after them.
	Warmup int
	// Batches adds, for each size b > 1, cells of b sequences run as one padded batch
	// (model.ForwardBatch; torch_gpt2.py's batch argument) at the lengths BatchSizes.
	Batches    []int
	BatchSizes []int
	// CeilingSize is the side of the square float32 matmul that measures the ceiling.
	CeilingSize int
	Torch       Torch // the PyTorch baseline; Torch.Script == "" skips it
}

func (o Options) backend() string {
	if o.Backend == "" {
		return model.DefaultBackend
	}
	return o.Backend
}

// Cell is one (N, threads) measurement.
type Cell struct {
	N, Threads     int
	Batch          int     // sequences per pass (1: a single input)
	MS, CPUMS      float64 // median wall milliseconds and mean process CPU per pass
	GFLOPs         float64 // model.ForwardFLOPs / median time
	CeilingGFLOPs  float64 // square matmul through the same backend, same thread count
	PeakRSS        int64   // bytes, since loading the model for this thread count
	TorchMS        float64 // PyTorch eager median; 0 when not run
	TorchErr       error   // why TorchMS is missing
	CompiledGraphs int
}

// Run measures every cell and writes the table to w as each row completes.
func Run(ctx context.Context, w io.Writer, o Options) ([]Cell, error) {
	if o.Repeats < 1 {
		return nil, fmt.Errorf("capturebench: repeats must be at least 1, got %d", o.Repeats)
	}
	if o.Warmup < 1 {
		return nil, fmt.Errorf("capturebench: warm-up passes must be at least 1 (the first compiles the graphs), got %d", o.Warmup)
	}
	torchOK := o.Torch.Available()
	fmt.Fprintf(w, "model %s, backend %s, full capture (attention + hidden states, no LM head), median of %d passes after %d untimed\n", o.Model, o.backend(), o.Repeats, o.Warmup)
	if !torchOK {
		fmt.Fprintf(w, "PyTorch baseline not run: %s\n", o.Torch.Missing())
	}
	fmt.Fprintf(w, "%-9s %-7s %10s %10s %10s %7s %8s %8s %6s %9s\n",
		"batch×N", "threads", "attnscope", "CPU/pass", "PyTorch", "ratio", "GFLOP/s", "ceiling", "%ceil", "peak RSS")
	orig := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(orig)
	var cells []Cell
	for _, th := range o.Threads {
		runtime.GOMAXPROCS(th)
		ceiling, err := MatmulCeiling(o.backend(), o.CeilingSize, o.Repeats)
		if err != nil {
			return cells, err
		}
		got, err := runThreads(ctx, w, o, th, ceiling, torchOK)
		cells = append(cells, got...)
		if err != nil {
			return cells, err
		}
	}
	fmt.Fprintf(w, "ratio = PyTorch ms / attnscope ms (above 1: attnscope is faster); ceiling = fastest %d² float32 matmul, same backend and threads\n", o.CeilingSize)
	if load := loadAverage(); load != "" {
		fmt.Fprintf(w, "load average during the run: %s (on a busy machine wall times are not comparable across runs)\n", load)
	}
	return cells, nil
}

// runThreads loads the model with GOMAXPROCS = th (the Go backend sizes its worker
// pool when it is created) and measures every sequence length.
func runThreads(ctx context.Context, w io.Writer, o Options, th int, ceiling float64, torchOK bool) ([]Cell, error) {
	runtime.GC()
	debug.FreeOSMemory()
	procstat.ResetPeakRSS() // the peak below includes loading the weights
	m, err := model.Load(o.Model, model.LoadOptions{Backend: o.backend()})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	cfg := m.Config()
	var cells []Cell
	type job struct{ n, batch int }
	var jobs []job
	for _, n := range o.Sizes {
		jobs = append(jobs, job{n, 1})
	}
	for _, b := range o.Batches {
		for _, n := range o.BatchSizes {
			if b > 1 {
				jobs = append(jobs, job{n, b})
			}
		}
	}
	for _, j := range jobs {
		n := j.n
		if n > cfg.MaxPositions {
			return cells, fmt.Errorf("capturebench: N=%d exceeds the model's context of %d", n, cfg.MaxPositions)
		}
		c := Cell{N: n, Batch: j.batch, Threads: th, CeilingGFLOPs: ceiling}
		if c.MS, c.CPUMS, err = timeForward(ctx, m, n, j.batch, o.Warmup, o.Repeats); err != nil {
			return cells, err
		}
		c.GFLOPs = float64(j.batch) * model.ForwardFLOPs(cfg, n) / (c.MS / 1000) / 1e9
		c.PeakRSS = procstat.PeakRSS()
		if torchOK {
			c.TorchMS, c.TorchErr = o.Torch.Run(ctx, o.Model, n, th, o.Repeats, j.batch)
		}
		c.CompiledGraphs = m.CompiledGraphs()
		printCell(w, c, torchOK)
		cells = append(cells, c)
	}
	return cells, nil
}

func printCell(w io.Writer, c Cell, torchOK bool) {
	torch, ratio := "-", "-"
	switch {
	case c.TorchErr != nil:
		torch = "error"
	case torchOK:
		torch, ratio = fmt.Sprintf("%.1fms", c.TorchMS), fmt.Sprintf("%.2fx", c.TorchMS/c.MS)
	}
	fmt.Fprintf(w, "%-9s %-7d %8.1fms %8.1fms %10s %7s %8.1f %8.1f %5.0f%% %7.0fMB\n",
		fmt.Sprintf("%d×%d", c.Batch, c.N), c.Threads, c.MS, c.CPUMS, torch, ratio, c.GFLOPs, c.CeilingGFLOPs, 100*c.GFLOPs/c.CeilingGFLOPs, float64(c.PeakRSS)/(1<<20))
	if c.TorchErr != nil {
		fmt.Fprintf(w, "  PyTorch baseline failed: %v\n", c.TorchErr)
	}
}

// sinkRecorder copies every tensor, as a capture to disk would read it.
type sinkRecorder struct {
	buf   []float32
	bytes int64
}

func (s *sinkRecorder) Record(_ string, _ []int, data []float32) error {
	s.buf = append(s.buf[:0], data...)
	s.bytes += int64(4 * len(data))
	return nil
}

// timeForward runs warmup untimed passes (the first compiles the graphs) and repeats
// timed full-capture passes over batch sequences of n random token ids (one padded
// batch through model.ForwardBatch when batch > 1); it returns the median wall and
// mean CPU milliseconds per timed pass.
func timeForward(ctx context.Context, m model.Model, n, batch, warmup, repeats int) (ms, cpuMS float64, err error) {
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	ins := make([]model.Input, batch)
	recs := make([]model.Recorder, batch)
	for b := range ins {
		ids := make([]int, n)
		for i := range ids {
			ids[i] = rng.IntN(m.Config().VocabSize)
		}
		ins[b] = model.Input{IDs: ids}
		recs[b] = &sinkRecorder{}
	}
	opts := model.ForwardOptions{Hidden: true}
	pass := func() error {
		if batch == 1 {
			_, err := m.Forward(ctx, ins[0], recs[0], opts)
			return err
		}
		_, err := m.ForwardBatch(ctx, ins, recs, opts)
		return err
	}
	for range warmup {
		if err := pass(); err != nil {
			return 0, 0, err
		}
	}
	ts := make([]float64, 0, repeats)
	cpu0 := procstat.CPUTime()
	for range repeats {
		t0 := time.Now()
		if err := pass(); err != nil {
			return 0, 0, err
		}
		ts = append(ts, float64(time.Since(t0).Microseconds())/1000)
	}
	cpuMS = float64((procstat.CPUTime() - cpu0).Microseconds()) / 1000 / float64(repeats)
	slices.Sort(ts)
	return ts[len(ts)/2], cpuMS, nil
}
