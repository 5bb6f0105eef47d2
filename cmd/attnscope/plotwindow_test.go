package main

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/testutil"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/store/storetest"
)

// uniformQKRun writes a run of one --store qk sample "s" of n tokens (one layer, 2
// heads over 1 kv head, head_dim 4, causal) whose queries and keys are 0: query i
// attends 1/(i+1) to each key j ≤ i (log-sum-exp ln(i+1)).
func uniformQKRun(t *testing.T, n int) string {
	t.Helper()
	const heads, hd = 2, 4
	lse := make([]float64, heads*n)
	for h := range heads {
		for i := range n {
			lse[h*n+i] = math.Log(float64(i + 1))
		}
	}
	dir := filepath.Join(t.TempDir(), "long")
	storetest.WriteQKRun(t, dir, heads, 1, n, hd, []storetest.QKLayer{{Q: make([]float32, heads*n*hd), K: make([]float32, n*hd), LSE: lse}})
	return dir
}

// TestPlotWindow: plot heatmap and grid draw --rows A:B --cols C:D of a full run and
// of a 32,768-token --store qk sample (the title names the window); a window
// outside the matrix (naming the sample, its size and the expected range), a
// malformed or empty range, and --rows or --cols on a figure that ignores them are
// refused with one sentence and exit 2, writing no file.
func TestPlotWindow(t *testing.T) {
	runDir := referenceRun(t)
	long := uniformQKRun(t, 32768)
	s, err := testutil.Must(store.Open(runDir)).Sample("case0")
	if err != nil {
		t.Fatal(err)
	}
	n := len(s.Tokens)
	out := t.TempDir()
	for _, tc := range []struct {
		args  []string
		file  string
		title string
	}{
		{[]string{"heatmap", runDir, "--sample", "case0", "--layer", "2", "--head", "1", "--rows", "2:8", "--cols", "0:5"}, "w.svg", "case0: layer 2, head 1, queries 2:8 × keys 0:5 of"},
		{[]string{"heatmap", runDir, "--sample", "case0", "--rows", "3:10", "--reduce", "max"}, "rows.svg", "case0: layer 3, max of heads, queries 3:10 × keys 0:" + strconv.Itoa(n)},
		{[]string{"grid", runDir, "--sample", "case0", "--rows", "1:6", "--cols", "0:4"}, "grid.svg", "case0: all heads (rows: layers, columns: heads), queries 1:6 × keys 0:4"},
		{[]string{"heatmap", long, "--head", "0", "--rows", "30000:30200", "--cols", "0:500"}, "long.svg", "s: layer 0, head 0, queries 30000:30200 × keys 0:500 of 32768×32768"},
		{[]string{"grid", long, "--rows", "32700:32768", "--cols", "32000:32768"}, "long-grid.png", ""},
	} {
		path := filepath.Join(out, tc.file)
		args := append([]string{"plot", tc.args[0], tc.args[1], "--out", path, "--dpi", "72"}, tc.args[2:]...)
		if code, stderr := runCLI(t, args...); code != exitOK {
			t.Fatalf("attnscope %s: exit %d: %s", strings.Join(args, " "), code, stderr)
		}
		checkFigureFile(t, path)
		if b, _ := os.ReadFile(path); tc.title != "" && !strings.Contains(string(b), tc.title) {
			t.Errorf("%s: the figure's title does not say %q", tc.file, tc.title)
		}
	}
	png := filepath.Join(t.TempDir(), "x.png")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"heatmap", long, "--rows", "40000:40100"}, "--rows 40000:40100: sample s has 32768 query positions (a 32768×32768 attention matrix), so a range A:B with 0 ≤ A < B ≤ 32768 is expected"},
		{[]string{"grid", long, "--cols", "0:32769"}, "--cols 0:32769: sample s has 32768 key positions"},
		{[]string{"heatmap", runDir, "--sample", "case0", "--cols", "0:99"}, "--cols 0:99: sample case0 has " + strconv.Itoa(n) + " key positions"},
		{[]string{"heatmap", runDir, "--rows", "5:3"}, `--rows "5:3": the start 5 is not below the end 3 (A:B is half-open: A < B expected)`},
		{[]string{"heatmap", runDir, "--cols", "4:4"}, `--cols "4:4": the start 4 is not below the end 4`},
		{[]string{"heatmap", runDir, "--rows", "5"}, `--rows "5": A:B expected, the token positions A ≤ i < B such as 30000:30200`},
		{[]string{"grid", runDir, "--cols", "a:b"}, `--cols "a:b": A:B expected`},
		{[]string{"heatmap", runDir, "--rows", "-2:4"}, `--rows "-2:4": positions start at 0`},
		{[]string{"entropy", runDir, "--rows", "0:5"}, "plot entropy does not use --rows"},
		{[]string{"received", runDir, "--cols", "0:5"}, "plot received does not use --cols"},
		{[]string{"code", runDir, "--rows", "0:5", "--cols", "0:5"}, "plot code does not use --cols, --rows"},
	} {
		args := append([]string{"plot", tc.args[0], tc.args[1], "--out", png}, tc.args[2:]...)
		code, stderr := runCLI(t, args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("attnscope %s: exit %d, stderr %q; want exit 2 saying %q", strings.Join(args, " "), code, stderr, tc.want)
		}
		if first, _, _ := strings.Cut(stderr, "\n"); strings.Count(first, ". ") > 0 {
			t.Errorf("attnscope %s: %q is more than one sentence", strings.Join(args, " "), first)
		}
		if _, err := os.Stat(png); err == nil {
			t.Fatalf("attnscope %s: a refused command wrote %s", strings.Join(args, " "), png)
		}
	}
	if ents, _ := os.ReadDir(filepath.Dir(png)); len(ents) != 0 {
		t.Errorf("refused commands left files: %v", ents)
	}
}
