package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/attnscope/attnscope/model"
	"github.com/spf13/cobra"
)

func newBenchCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "bench",
		Short: "Benchmarks against baselines (see its subcommands)",
	}
	c.AddCommand(newBenchCaptureCmd())
	return c
}

// torchFigures are the PyTorch eager baseline measured on the 2-core
// development machine (../shared/bench/README.md, 2026-11-22), printed when
// PyTorch cannot be run here.
var torchFigures = map[int]string{128: "171-176", 512: "1700"}

func newBenchCaptureCmd() *cobra.Command {
	var (
		dir, script, python string
		sizes, threads      []int
		repeats             int
	)
	c := &cobra.Command{
		Use:   "capture --model DIR",
		Short: "Time a full-capture forward pass (every attention and hidden state) beside PyTorch eager",
		Long: `Times model.Forward with a recorder that copies every attention matrix and hidden state
(full capture, no LM head) at each sequence length and thread count, and prints the median
milliseconds, achieved GFLOP/s (2·params·N + 4·N²·width per layer) and peak RSS (since
loading the model for that thread count, weights included). When
python3 with torch is installed and the baseline script exists, the PyTorch eager baseline
(../shared/bench/torch_gpt2.py) runs on the same checkpoint in the same command; otherwise
the figures of ../shared/bench/README.md are printed, labelled as such.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usagef(cmd, "--model is required")
			}
			if repeats < 1 {
				return usagef(cmd, "--repeats must be at least 1")
			}
			return runBenchCapture(cmd.Context(), cmd.OutOrStdout(), dir, sizes, threads, repeats, python, script)
		},
	}
	c.Flags().StringVar(&dir, "model", "", "model folder (e.g. one written by torch_gpt2.py make:DIR)")
	c.Flags().IntSliceVar(&sizes, "n", []int{128, 512}, "sequence lengths")
	c.Flags().IntSliceVar(&threads, "threads", []int{1, 2}, "thread counts (GOMAXPROCS; torch.set_num_threads)")
	c.Flags().IntVar(&repeats, "repeats", 3, "timed repetitions per setting (median reported)")
	c.Flags().StringVar(&python, "python", "/usr/bin/python3", "python interpreter for the PyTorch baseline")
	c.Flags().StringVar(&script, "torch-script", filepath.Join("..", "shared", "bench", "torch_gpt2.py"), "PyTorch baseline script")
	return c
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

func runBenchCapture(ctx context.Context, w io.Writer, dir string, sizes, threads []int, repeats int, python, script string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	haveTorch := false
	if _, err := os.Stat(script); err == nil {
		if exec.Command(python, "-c", "import torch, numpy").Run() == nil {
			haveTorch = true
		}
	}
	fmt.Fprintf(w, "model %s, full capture (attention + hidden states, no LM head), median of %d\n", dir, repeats)
	fmt.Fprintf(w, "%-6s %-7s %10s %10s %9s %12s %12s %s\n", "N", "threads", "attnscope", "CPU time", "GFLOP/s", "peak RSS", "PyTorch ms", "ratio")
	orig := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(orig)
	defer lowerGC()() // as capture does
	for _, th := range threads {
		runtime.GOMAXPROCS(th)
		runtime.GC()
		debug.FreeOSMemory()
		resetPeakRSS() // the peak below includes loading the weights
		m, err := model.Load(dir, model.LoadOptions{Backend: "go"})
		if err != nil {
			return err
		}
		cfg := m.Config()
		for _, n := range sizes {
			if n > cfg.MaxPositions {
				m.Close()
				return fmt.Errorf("bench: N=%d exceeds the model's context of %d", n, cfg.MaxPositions)
			}
			rng := rand.New(rand.NewPCG(1, uint64(n)))
			ids := make([]int, n)
			for i := range ids {
				ids[i] = rng.IntN(cfg.VocabSize)
			}
			rec := &sinkRecorder{}
			opts := model.ForwardOptions{Hidden: true}
			if _, err := m.Forward(ctx, model.Input{IDs: ids}, rec, opts); err != nil { // warm-up, compiles
				m.Close()
				return err
			}
			var ts []float64
			cpu0 := cpuTime()
			for range repeats {
				t0 := time.Now()
				if _, err := m.Forward(ctx, model.Input{IDs: ids}, rec, opts); err != nil {
					m.Close()
					return err
				}
				ts = append(ts, float64(time.Since(t0).Microseconds())/1000)
			}
			cpuMS := float64((cpuTime() - cpu0).Microseconds()) / 1000 / float64(repeats)
			slices.Sort(ts)
			ms := ts[len(ts)/2]
			gflops := model.ForwardFLOPs(cfg, n) / (ms / 1000) / 1e9
			peak := peakRSS()
			torchMS, label := "", ""
			if haveTorch {
				c := exec.CommandContext(ctx, python, script, dir, strconv.Itoa(n), strconv.Itoa(th), strconv.Itoa(repeats))
				// Debian's torch calls the system BLAS (OpenBLAS), whose own thread pool
				// ignores torch.set_num_threads: pin it to the same thread count.
				c.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS="+strconv.Itoa(th), "OMP_NUM_THREADS="+strconv.Itoa(th))
				out, err := c.Output()
				if err != nil {
					torchMS = "error"
				} else {
					torchMS = lastNumber(string(out))
				}
			} else {
				if f, ok := torchFigures[n]; ok {
					torchMS, label = f, " (README figure, 2 cores, best thread setting; torch not installed)"
				} else {
					torchMS, label = "n/a", " (torch not installed; the README has figures for N=128 and 512 only)"
				}
			}
			ratio := ""
			if v, err := strconv.ParseFloat(strings.Split(torchMS, "-")[0], 64); err == nil && ms > 0 {
				ratio = fmt.Sprintf("%.2fx", v/ms)
			}
			fmt.Fprintf(w, "%-6d %-7d %8.1fms %8.1fms %9.1f %10.0fMB %12s %s%s\n", n, th, ms, cpuMS, gflops, float64(peak)/(1<<20), torchMS, ratio, label)
		}
		fmt.Fprintf(w, "threads=%d: %d graphs compiled\n", th, m.CompiledGraphs())
		m.Close()
	}
	fmt.Fprintln(w, "ratio = PyTorch ms / attnscope ms (above 1: attnscope is faster); CPU time = process CPU per pass")
	if load := loadAverage(); load != "" {
		fmt.Fprintf(w, "load average during the run: %s (on a busy machine wall times are not comparable across runs)\n", load)
	}
	return nil
}

// cpuTime returns the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAverage returns the first three fields of /proc/loadavg, or "".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// lastNumber returns the last number printed by the baseline script.
func lastNumber(s string) string {
	f := strings.Fields(s)
	for i := len(f) - 1; i >= 0; i-- {
		if _, err := strconv.ParseFloat(f[i], 64); err == nil {
			return f[i]
		}
	}
	return "?"
}

// resetPeakRSS resets the kernel's peak-RSS counter (Linux ≥ 4.0); errors are ignored
// (peakRSS then reports the process-lifetime peak).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS returns VmHWM from /proc/self/status in bytes (0 if unavailable).
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
