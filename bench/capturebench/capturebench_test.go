package capturebench

import (
	"bytes"
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/model/arch"
)

func TestRunWithoutTorch(t *testing.T) {
	dir := refdata.Path(t, "models", "tiny-gpt2")
	var out bytes.Buffer
	o := Options{Model: dir, Backend: "go:ops_sequential", Sizes: []int{16, 32}, Threads: []int{1}, Repeats: 1, Warmup: 1, Batches: []int{2}, BatchSizes: []int{16}, CeilingSize: 128,
		Torch: Torch{Python: "/nonexistent/python3", Script: "/nonexistent.py"}}
	cells, err := Run(context.Background(), &out, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(cells) != 3 || cells[0].N != 16 || cells[1].N != 32 || cells[2].N != 16 || cells[2].Batch != 2 || cells[0].Batch != 1 {
		t.Fatalf("cells %+v", cells)
	}
	for _, c := range cells {
		if c.MS <= 0 || c.GFLOPs <= 0 || c.CeilingGFLOPs <= 0 || c.PeakRSS <= 0 || c.TorchMS != 0 {
			t.Errorf("cell %+v: times, rates and RSS must be positive, no PyTorch time", c)
		}
	}
	s := out.String()
	for _, want := range []string{"PyTorch baseline not run: script /nonexistent.py not found", "backend go:ops_sequential", "%ceil", "\n1×16      1 ", "\n1×32      1 ", "\n2×16      1 "} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	// A batch of two does twice the work of one sequence.
	if r := cells[2].GFLOPs * cells[2].MS / (cells[0].GFLOPs * cells[0].MS); math.Abs(r-2) > 1e-9 {
		t.Errorf("batched cell counts %.3f× the FLOPs of one sequence, want 2", r)
	}
	o.Sizes = []int{1000}
	if _, err := Run(context.Background(), &out, o); err == nil || !strings.Contains(err.Error(), "context of 512") {
		t.Errorf("N beyond the context: %v", err)
	}
}

func TestEnv(t *testing.T) {
	env := Env([]string{"PATH=/bin", "OPENBLAS_CORETYPE=Haswell", "OPENBLAS_L2_SIZE=512", "OPENBLAS_NUM_THREADS=8", "OMP_NUM_THREADS=8", "HOME=/root"}, 2)
	want := []string{"PATH=/bin", "HOME=/root", "OPENBLAS_NUM_THREADS=2", "OMP_NUM_THREADS=2"}
	if !slices.Equal(env, want) {
		t.Fatalf("Env = %q, want %q", env, want)
	}
}

// TestTorchRun runs a stand-in baseline (a shell script in place of python3 + torch_gpt2.py)
// that records its arguments and environment and prints a time.
func TestTorchRun(t *testing.T) {
	tmp := t.TempDir()
	rec := filepath.Join(tmp, "seen")
	script := filepath.Join(tmp, "baseline.sh")
	body := "echo \"$* threads=$OPENBLAS_NUM_THREADS omp=$OMP_NUM_THREADS core=${OPENBLAS_CORETYPE-unset} l2=${OPENBLAS_L2_SIZE-unset}\" > " + rec + "\necho loading\necho 123.4\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OPENBLAS_CORETYPE", "Haswell")
	t.Setenv("OPENBLAS_L2_SIZE", "512")
	tr := Torch{Python: "/bin/sh", Script: script}
	ms, err := tr.Run(context.Background(), "/models/x", 128, 2, 3, 8)
	if err != nil || ms != 123.4 {
		t.Fatalf("Run = %v, %v; want 123.4", ms, err)
	}
	b, _ := os.ReadFile(rec)
	if got, want := strings.TrimSpace(string(b)), "/models/x 128 2 3 8 threads=2 omp=2 core=unset l2=unset"; got != want {
		t.Errorf("baseline saw %q, want %q", got, want)
	}
	if err := os.WriteFile(script, []byte("echo oops >&2; exit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(context.Background(), "/models/x", 128, 1, 1, 1); err == nil || !strings.Contains(err.Error(), "oops") {
		t.Errorf("failing baseline: %v", err)
	}
}

func TestMatmulCeiling(t *testing.T) {
	g, err := MatmulCeiling("go", 96, 2)
	if err != nil || g <= 0 {
		t.Fatalf("MatmulCeiling = %v, %v", g, err)
	}
	if _, err := MatmulCeiling("go", 0, 1); err == nil {
		t.Error("size 0 accepted")
	}
}

// countingModel counts the passes timeForward runs.
type countingModel struct {
	model.Model
	single, batched int
}

func (c *countingModel) Forward(context.Context, model.Input, model.Recorder, model.ForwardOptions) (*model.Output, error) {
	c.single++
	return nil, nil
}

func (c *countingModel) ForwardBatch(context.Context, []model.Input, []model.Recorder, model.ForwardOptions) ([]*model.Output, error) {
	c.batched++
	return nil, nil
}

func (c *countingModel) Config() *arch.Config { return &arch.Config{VocabSize: 10} }

// The warm-up passes run before the timed ones and are not timed; Run refuses fewer
// than one (the first pass compiles the graphs).
func TestWarmup(t *testing.T) {
	for _, batch := range []int{1, 3} {
		m := &countingModel{}
		if _, _, err := timeForward(context.Background(), m, 4, batch, 4, 2); err != nil {
			t.Fatal(err)
		}
		if got := m.single + m.batched; got != 6 || (batch == 1) != (m.single == 6) {
			t.Errorf("batch %d: %d single and %d batched passes; want 4 warm-up + 2 timed of one kind", batch, m.single, m.batched)
		}
	}
	o := Options{Model: "unused", Sizes: []int{16}, Threads: []int{1}, Repeats: 1, Warmup: 0}
	if _, err := Run(context.Background(), io.Discard, o); err == nil || !strings.Contains(err.Error(), "warm-up passes must be at least 1") {
		t.Errorf("Run with no warm-up pass: %v", err)
	}
}
