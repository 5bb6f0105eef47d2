package derive

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/attnscope/attnscope/capture"
	"github.com/attnscope/attnscope/capture/capturetest"
	"github.com/attnscope/attnscope/internal/procstat"
	"github.com/attnscope/attnscope/store"
)

// TestQKDeriveSpeed is a benchmark, not a test: it captures (once, into
// $ATTNSCOPE_QK_BENCH/run; reused when there) ATTNSCOPE_QK_BENCH_TOKENS tokens
// (default 8,192) of the 4-layer Llama-shaped model of TestQKLongContext with
// --store qk, then times the recomputation of the last 64 rows of every head of
// layer 0 (Rows; the causal weights computed count 2·head_dim flops for q·k plus
// one exp each) and, unless ATTNSCOPE_QK_BENCH_ROWS_ONLY is set, derive's
// entropy, max weight and attention received passes. It runs only with
// ATTNSCOPE_QK_BENCH set.
func TestQKDeriveSpeed(t *testing.T) {
	dir := os.Getenv("ATTNSCOPE_QK_BENCH")
	if dir == "" {
		t.Skip("a benchmark: set ATTNSCOPE_QK_BENCH to a folder for the captured run")
	}
	n := 8192
	if v, err := strconv.Atoi(os.Getenv("ATTNSCOPE_QK_BENCH_TOKENS")); err == nil && v > 0 {
		n = v
	}
	out := filepath.Join(dir, "run")
	if _, err := os.Stat(out); err != nil {
		model := filepath.Join(dir, "model")
		if err := os.MkdirAll(model, 0o755); err != nil {
			t.Fatal(err)
		}
		writeRandomLlama(t, model, 4, 512, 8, 2, n)
		text := capturetest.Code(n/10 + 1)
		start := time.Now()
		if _, err := capture.Run(context.Background(), out, []capture.Input{{ID: "long", Text: text}}, capture.Options{ModelDir: model, QK: true, Truncate: "right", Command: []string{"test"}, Info: func(string) {}}); err != nil {
			t.Fatal(err)
		}
		t.Logf("capture of %d tokens took %v", n, time.Since(start).Round(time.Second))
	}
	r, err := store.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	q, err := r.OpenQK("long")
	if err != nil {
		t.Fatal(err)
	}
	info := q.Info()
	if _, err := q.Rows(0, 0, 1); err != nil { // loads the layer
		t.Fatal(err)
	}
	N, rows := info.Tokens, 64
	start, cpu := time.Now(), procstat.CPUTime()
	if _, err := q.Rows(0, N-rows, N); err != nil {
		t.Fatal(err)
	}
	sec, cpuSec := time.Since(start).Seconds(), (procstat.CPUTime() - cpu).Seconds()
	weights := float64(info.Heads) * float64(rows) * float64(N-rows/2) // causal: row i has i+1 weights
	t.Logf("rows [%d, %d) of %d heads × %d tokens (head_dim %d): %.3f s (%.3f CPU s), %.2f GFLOP per CPU second (2·head_dim flops per weight), %.1f M weights per CPU second",
		N-rows, N, info.Heads, N, info.HeadDim, sec, cpuSec, weights*2*float64(info.HeadDim)/cpuSec/1e9, weights/cpuSec/1e6)
	q.Close()
	if os.Getenv("ATTNSCOPE_QK_BENCH_ROWS_ONLY") != "" {
		return
	}
	for _, pass := range []string{"entropy", "maxw", "received"} {
		i := strings.Index(qkPasses, "  - name: "+pass+"\n")
		yaml := "passes:\n" + qkPasses[i:]
		if j := strings.Index(yaml[len("passes:\n  - "):], "  - name:"); j >= 0 {
			yaml = yaml[:len("passes:\n  - ")+j]
		}
		if err := os.RemoveAll(filepath.Join(out, "derived", pass)); err != nil { // else derive keeps it
			t.Fatal(err)
		}
		start, cpu := time.Now(), procstat.CPUTime()
		if err := deriveRun(t, out, yaml); err != nil {
			t.Fatal(err)
		}
		t.Logf("derive %s over %d layers × %d heads × %d tokens: %.1f s (%.1f CPU s)", pass, info.Layers, info.Heads, N, time.Since(start).Seconds(), (procstat.CPUTime() - cpu).Seconds())
	}
}
