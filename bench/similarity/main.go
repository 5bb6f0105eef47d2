// Command similarity times attnscope's linear CKA layer × layer matrix against NumPy
// on the same inputs: two runs of -layers hidden-state layers of -tokens × -width
// (BERT-base: 12 × 10,000 × 768), stored as float32 .npy files like captured hidden
// states and compared in float64 by both sides. Each side runs in its own process
// (this program with -side go, bench/similarity/numpy_cka.py) and reports its load
// time, compute time and peak resident memory (VmHWM, ru_maxrss); the two 12×12
// matrices must agree within 1e-8. Run it through bench/similarity/run.sh.
//
// Both sides use the same algorithm: centre every layer in place, ‖XᵀX‖_F once per
// layer, ‖X_lᵀY_m‖²_F for every pair (Kornblith et al. 2019's feature-space form);
// the cost is (2L + L²) products of d×n by n×d.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/procstat"
	"github.com/attnscope/attnscope/similarity"
	"github.com/attnscope/attnscope/tensor"
)

type result struct {
	Side     string    `json:"side"`
	LoadS    float64   `json:"load_s"`
	ComputeS float64   `json:"compute_s"`
	CPUS     float64   `json:"cpu_s"`
	PeakMB   float64   `json:"peak_mb"`
	Matrix   []float64 `json:"matrix"`
}

func main() {
	layers := flag.Int("layers", 12, "hidden-state layers per run")
	tokens := flag.Int("tokens", 10000, "tokens (rows)")
	width := flag.Int("width", 768, "hidden width (columns)")
	dir := flag.String("dir", "", "folder for the input .npy files (default: a temporary folder, removed)")
	side := flag.String("side", "", "internal: run one side (go) on -dir's files")
	python := flag.String("python", "/usr/bin/python3", "Python with NumPy (Debian's)")
	skipNumPy := flag.Bool("skip-numpy", false, "time attnscope only")
	concurrent := flag.Bool("concurrent", false, "run the two sides at the same time (side by side under the same load) instead of one after the other")
	flag.Parse()
	if *side == "go" {
		goSide(*dir)
		return
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "attnscope-cka-bench")
		check(err)
		defer os.RemoveAll(d)
		*dir = d
	}
	check(writeInputs(*dir, *layers, *tokens, *width))
	fmt.Printf("linear CKA, %d×%d layers of %d tokens × %d (float64), load %s\n", *layers, *layers, *tokens, *width, loadAverage())
	self, err := os.Executable()
	check(err)
	goCmd := exec.Command(self, "-side", "go", "-dir", *dir)
	if *skipNumPy {
		report(runSide(goCmd))
		return
	}
	npCmd := exec.Command(*python, filepath.Join(filepath.Dir(sourceFile()), "numpy_cka.py"), *dir)
	var goRes, npRes result
	if *concurrent {
		wait := startSide(npCmd)
		goRes = runSide(goCmd)
		npRes = wait()
	} else {
		goRes = runSide(goCmd)
		npRes = runSide(npCmd)
	}
	report(goRes)
	report(npRes)
	var worst float64
	for i := range goRes.Matrix {
		worst = math.Max(worst, math.Abs(goRes.Matrix[i]-npRes.Matrix[i]))
	}
	fmt.Printf("max |Go − NumPy| = %.3g; NumPy/Go time %.2f×, CPU %.2f×, memory %.2f×; load %s\n", worst,
		npRes.ComputeS/goRes.ComputeS, npRes.CPUS/goRes.CPUS, npRes.PeakMB/goRes.PeakMB, loadAverage())
	if worst > 1e-8 {
		fmt.Fprintln(os.Stderr, "similarity bench: the matrices differ by more than 1e-8")
		os.Exit(1)
	}
}

// sourceFile is this file's folder's main.go as seen from the repository root.
func sourceFile() string { return filepath.Join("bench", "similarity", "main.go") }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "similarity bench:", err)
		os.Exit(1)
	}
}

func report(r result) {
	fmt.Printf("%-6s load %7.2f s  compute %8.2f s (CPU %8.2f s)  peak %7.0f MB\n", r.Side, r.LoadS, r.ComputeS, r.CPUS, r.PeakMB)
}

func runSide(cmd *exec.Cmd) result { return startSide(cmd)() }

// startSide starts one side's process and returns a function that waits for its result.
func startSide(cmd *exec.Cmd) func() result {
	cmd.Stderr = os.Stderr
	var out strings.Builder
	cmd.Stdout = &out
	check(cmd.Start())
	return func() result {
		check(cmd.Wait())
		var r result
		check(json.Unmarshal([]byte(out.String()), &r))
		return r
	}
}

// writeInputs writes a.npy and b.npy, [layers, tokens, width] float32: run A's layers
// are a random walk through depth (each layer the previous plus noise, with a large
// per-neuron offset as real residual streams have); run B's layer m mixes run A's
// layer m with its own noise, so the matrix has structure.
func writeInputs(dir string, L, n, d int) error {
	rng := rand.New(rand.NewPCG(2019, 768))
	a := make([]float32, L*n*d)
	b := make([]float32, L*n*d)
	off := make([]float64, d)
	for j := range off {
		off[j] = 3 * rng.NormFloat64()
	}
	for l := range L {
		for i := range n * d {
			prev := off[i%d]
			if l > 0 {
				prev = float64(a[(l-1)*n*d+i])
			}
			a[l*n*d+i] = float32(prev + 0.5*rng.NormFloat64())
			b[l*n*d+i] = float32(0.8*float64(a[l*n*d+i]) + rng.NormFloat64())
		}
	}
	if err := checkpoint.WriteNpyFile(filepath.Join(dir, "a.npy"), []int{L, n, d}, a); err != nil {
		return err
	}
	return checkpoint.WriteNpyFile(filepath.Join(dir, "b.npy"), []int{L, n, d}, b)
}

// load reads a [L, n, d] float32 .npy file as L float64 layers.
func load(path string) ([]*tensor.Tensor, error) {
	arr, err := checkpoint.ReadNpyFile(path)
	if err != nil {
		return nil, err
	}
	f := arr.Float32s()
	L, n, d := arr.Shape[0], arr.Shape[1], arr.Shape[2]
	out := make([]*tensor.Tensor, L)
	for l := range out {
		t, err := tensor.FromFloat32([]int{n, d}, f[l*n*d:(l+1)*n*d])
		if err != nil {
			return nil, err
		}
		out[l] = t
	}
	return out, nil
}

func goSide(dir string) {
	start := time.Now()
	// Each run's float32 file is released before the next is read, as NumPy's
	// reference counting does.
	xs, err := load(filepath.Join(dir, "a.npy"))
	check(err)
	debug.FreeOSMemory()
	ys, err := load(filepath.Join(dir, "b.npy"))
	check(err)
	debug.FreeOSMemory()
	loaded, cpu0 := time.Now(), procstat.CPUTime()
	m, err := similarity.LinearCKAMatrixInPlace(xs, ys)
	check(err)
	r := result{Side: "Go", LoadS: loaded.Sub(start).Seconds(), ComputeS: time.Since(loaded).Seconds(),
		CPUS: (procstat.CPUTime() - cpu0).Seconds(), PeakMB: float64(procstat.PeakRSS()) / 1e6, Matrix: m}
	check(json.NewEncoder(os.Stdout).Encode(r))
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
