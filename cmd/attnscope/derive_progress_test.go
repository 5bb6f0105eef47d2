package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/attnscope/attnscope/derive"
	"github.com/attnscope/attnscope/internal/progress"
	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/tasks"
	"github.com/attnscope/attnscope/train"
)

// TestDeriveProgressLines: with stderr not a terminal, derive prints progress lines per
// pass and sample (pass, sample, elapsed, ETA) as it goes, the last one "done".
func TestDeriveProgressLines(t *testing.T) {
	t.Setenv(progress.EnvEvery, "0") // a line for every pass output
	dir := filepath.Join(t.TempDir(), "run")
	syntheticRun(t, dir, 3)
	cfg := filepath.Join(refdata.RepoRoot(), "configs", "demo-derive.yaml")
	root := newRootCmd()
	var stdout, stderr bytes.Buffer
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs([]string{"derive", "--config", cfg, "--workers", "1", dir})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	cfgPasses, err := derive.LoadConfig(cfg, derive.DefaultRegistry())
	if err != nil {
		t.Fatal(err)
	}
	total := 3 * len(cfgPasses.Passes)
	if len(lines) != total {
		t.Fatalf("%d progress lines, want %d (one per pass and sample):\n%s", len(lines), total, stderr.String())
	}
	line := regexp.MustCompile(`^derive: (\d+)/(\d+) pass outputs \((\S+) on (\S+), [0-9.]+[mµn]?s\), elapsed [0-9.hms]+, (ETA [0-9.hms]+|done)$`)
	for k, l := range lines {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %d %q does not give the count, pass, sample, elapsed time and ETA", k+1, l)
		}
		if m[1] != strconv.Itoa(k+1) || m[2] != strconv.Itoa(total) {
			t.Errorf("line %d counts %s/%s", k+1, m[1], m[2])
		}
	}
	if !strings.HasSuffix(lines[len(lines)-1], "done") {
		t.Errorf("last line %q", lines[len(lines)-1])
	}
}

// TestSlowPassAnnounced: a pass the cost model expects to take long is announced with
// its expected time before it starts.
func TestSlowPassAnnounced(t *testing.T) {
	d, ok := derive.ExpectedTime("compute_attention_flow_from_tensor", 4, 4, 1024)
	if !ok || d < 30*time.Second || d > 20*time.Minute {
		t.Fatalf("flow at L=4, N=1024: expected %v (%v), the measured order is minutes", d, ok)
	}
	if _, ok := derive.ExpectedTime("attention_entropy", 4, 4, 456); ok {
		t.Error("a linear pass has a cost model")
	}
	var buf bytes.Buffer
	tr := progress.New(&buf, "derive", "pass outputs", 1)
	passProgress(tr)(derive.PassEvent{Pass: "attention_flow", Function: "compute_attention_flow_from_tensor", Sample: "s0",
		Expected: d, Layers: 4, Heads: 4, Tokens: 1024})
	tr.Close()
	if got := buf.String(); !strings.Contains(got, "attention_flow (compute_attention_flow_from_tensor) on s0, 1024 tokens × 4 layers × 4 heads: expected to take about") {
		t.Fatalf("announcement %q", got)
	}
}

// TestCaptureProgressLines: capture's per-sample progress off a terminal gives count,
// sample, time, elapsed and ETA.
func TestCaptureProgressLines(t *testing.T) {
	t.Setenv(progress.EnvEvery, "0")
	var buf bytes.Buffer
	report, done := captureProgress(&buf, 3)
	report(1, 3, "a.py", false, 1500*time.Millisecond)
	report(2, 3, "b.py", true, 0)
	report(3, 3, "c.py", false, time.Second)
	done()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := regexp.MustCompile(`^capture: [123]/3 samples \([abc]\.py, (1\.50s|already finished, skipped|1\.00s)\), elapsed [0-9.hmsµn]+, (ETA [0-9.hmsµn]+|done)$`)
	if len(lines) != 3 {
		t.Fatalf("lines %q", lines)
	}
	for _, l := range lines {
		if !want.MatchString(l) {
			t.Errorf("line %q", l)
		}
	}
}

// TestEvaluateProgressLines: evaluate counts the samples of both datasets and still
// calls the figure callback.
func TestEvaluateProgressLines(t *testing.T) {
	t.Setenv(progress.EnvEvery, "0")
	e := &train.Experiment{Evaluation: &train.EvalCfg{Dataset1: &train.DatasetCfg{NumSamples: 2}, Dataset2: &train.DatasetCfg{NumSamples: 1}}}
	var buf bytes.Buffer
	calls := 0
	f, done := evalProgress(&buf, e, func(string, int, *tasks.Sample, []int, [][][]float32) error { calls++; return nil })
	for _, c := range []struct {
		ds string
		i  int
	}{{"dataset1", 0}, {"dataset1", 1}, {"dataset2", 0}} {
		if err := f(c.ds, c.i, nil, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	done()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if calls != 3 || len(lines) != 3 || !strings.HasPrefix(lines[2], "evaluate: 3/3 samples (dataset2 sample 0), elapsed ") || !strings.HasSuffix(lines[2], "done") {
		t.Fatalf("calls %d, lines %q", calls, lines)
	}
}

// TestTrainLogETA: off a terminal, train's step lines get the step count and an ETA.
func TestTrainLogETA(t *testing.T) {
	var buf bytes.Buffer
	w := trainLog(&buf)
	fmt.Fprintf(w, "training x: 2 layers × 4 heads × 64 wide, 100 steps of 64 samples (6400 training samples)\n")
	fmt.Fprintf(w, "step 25: train_loss 1.0000 grad_norm 0.500 lr 1.00e-03 (10s)\nsaved out\n")
	want := "training x: 2 layers × 4 heads × 64 wide, 100 steps of 64 samples (6400 training samples)\n" +
		"step 25: train_loss 1.0000 grad_norm 0.500 lr 1.00e-03 (10s, step 25/100, ETA 30s)\nsaved out\n"
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
}
