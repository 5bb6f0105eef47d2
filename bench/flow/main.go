// Command flow compares attnscope's attention flow with the published networkx method
// (Abnar & Zuidema 2020's attention_graph_util, one Edmonds-Karp max-flow per query, as
// followup-attention's compute_attention_flow) on the same attention, and prints the
// speed ratio. Run it through bench/flow/run.sh.
//
// The attention is random softmax attention (12 heads, fixed seed), head-averaged and
// residual-augmented (0.5·A + 0.5·I), the input the paper uses. attnscope computes every
// (source, input) max-flow; networkx runs them all for n ≤ -full-upto and otherwise a
// random sample of -samples queries whose mean time is extrapolated to all of them (the
// full matrix at n = 64 takes hours). The values of every query networkx ran are
// compared with attnscope's (they must agree within 1e-9).
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/attnscope/attnscope/analysis"
)

type pyResult struct {
	BuildS   float64     `json:"build_s"`
	QueryS   float64     `json:"query_s"`
	Queries  int         `json:"queries"`
	Measured int         `json:"measured"`
	TotalS   float64     `json:"total_s"`
	Values   [][]float64 `json:"values"`
}

func main() {
	layers := flag.Int("layers", 12, "number of layers")
	heads := flag.Int("heads", 12, "heads per layer (averaged)")
	sizes := flag.String("n", "16,32,64", "comma-separated token counts")
	causal := flag.Bool("causal", false, "causal (GPT-like) attention instead of full (BERT-like)")
	samples := flag.Int("samples", 40, "networkx queries to time when n > -full-upto")
	fullUpto := flag.Int("full-upto", 16, "run every networkx query up to this n")
	repeats := flag.Int("repeats", 3, "attnscope repetitions (median reported)")
	python := flag.String("python", "/usr/bin/python3", "Python with networkx and numpy (Debian's)")
	script := flag.String("script", "bench/flow/networkx_flow.py", "the networkx script")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if err := run(*layers, *heads, *sizes, *causal, *samples, *fullUpto, *repeats, *python, *script, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "flow bench:", err)
		os.Exit(1)
	}
}

func run(L, H int, sizes string, causal bool, samples, fullUpto, repeats int, python, script string, seed uint64) error {
	dir, err := os.MkdirTemp("", "attnscope-flow-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	kind := "full (BERT-like)"
	if causal {
		kind = "causal (GPT-like)"
	}
	fmt.Printf("attention flow, %d layers, %d heads averaged, residual 0.5A+0.5I, %s attention, seed %d\n", L, H, kind, seed)
	for _, s := range strings.Split(sizes, ",") {
		N, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || N < 1 {
			return fmt.Errorf("-n: %q is not a positive integer", s)
		}
		att := randomAttention(seed, L, H, N, causal)
		m, err := analysis.FlowMatrices(att, analysis.FlowResidual)
		if err != nil {
			return err
		}
		// attnscope: full flow matrix, median of repeats.
		var times []float64
		var vals *analysis.Tensor
		for r := 0; r < repeats; r++ {
			t0 := time.Now()
			vals, err = analysis.FlowValues(context.Background(), m, 0)
			if err != nil {
				return err
			}
			times = append(times, time.Since(t0).Seconds())
		}
		sort.Float64s(times)
		goS := times[len(times)/2]

		// networkx
		path := filepath.Join(dir, fmt.Sprintf("L%d_N%d.f64", L, N))
		if err := writeF64(path, m.Data); err != nil {
			return err
		}
		ns := samples
		if N <= fullUpto {
			ns = 0
		}
		out, err := exec.Command(python, script, path, strconv.Itoa(L), strconv.Itoa(N), strconv.Itoa(ns), strconv.FormatUint(seed, 10)).Output()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				return fmt.Errorf("%s %s: %w\n%s", python, script, err, ee.Stderr)
			}
			return fmt.Errorf("%s %s: %w", python, script, err)
		}
		var py pyResult
		if err := json.Unmarshal(out, &py); err != nil {
			return fmt.Errorf("networkx output: %w", err)
		}
		maxDiff := 0.0
		for _, q := range py.Values {
			u, v, f := int(q[0]), int(q[1]), q[2]
			c, i := u/N, u%N
			d := math.Abs(vals.At(c-1, i, v) - f)
			maxDiff = math.Max(maxDiff, d)
		}
		how := "all queries measured"
		if py.Measured < py.Queries {
			how = fmt.Sprintf("extrapolated from %d of %d queries", py.Measured, py.Queries)
		}
		fmt.Printf("n=%-3d attnscope %9.4f s (full matrix, median of %d) | networkx %10.1f s (graph %.2f s + %.4f s/query, %s) | ratio %8.0fx | max |Δflow| %.1e over %d queries\n",
			N, goS, repeats, py.TotalS, py.BuildS, py.QueryS, how, py.TotalS/goS, maxDiff, py.Measured)
		if maxDiff > 1e-9 {
			return fmt.Errorf("n=%d: attnscope and networkx differ by %g", N, maxDiff)
		}
	}
	return nil
}

// randomAttention returns [L,H,N,N] softmax attention of random logits (scale 3, so rows
// are peaked as trained heads are), causal or full.
func randomAttention(seed uint64, L, H, N int, causal bool) *analysis.Tensor {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	t := analysis.New(L, H, N, N)
	for l := 0; l < L; l++ {
		for h := 0; h < H; h++ {
			m := t.Matrix(l, h)
			for i := 0; i < N; i++ {
				row := m[i*N : (i+1)*N]
				s := 0.0
				for j := range row {
					if causal && j > i {
						break
					}
					row[j] = math.Exp(3 * r.NormFloat64())
					s += row[j]
				}
				for j := range row {
					row[j] /= s
				}
			}
		}
	}
	return t
}

func writeF64(path string, d []float64) error {
	b := make([]byte, 8*len(d))
	for k, v := range d {
		binary.LittleEndian.PutUint64(b[8*k:], math.Float64bits(v))
	}
	return os.WriteFile(path, b, 0o644)
}
