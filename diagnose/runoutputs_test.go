package diagnose

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/store"
)

// The perturbation and gradient-confusion runs store their run-level densities: one
// value per example (perturb) or pair of steps (confusion) counted, densities that
// integrate to 1 over the bins, declared [bin] axes.
func TestDiagnoseRunOutputs(t *testing.T) {
	dir := refdata.Path(t, "models", "tiny-bert")
	tmp := t.TempDir()
	glue := filepath.Join(tmp, "train.tsv")
	tsv := "index\tsentence1\tsentence2\tgold_label\n0\ta b\tc d\tneutral\n1\te f\tg\tentailment\n2\th\ti j\tcontradiction\n"
	if err := os.WriteFile(glue, []byte(tsv), 0o644); err != nil {
		t.Fatal(err)
	}
	prepare := func(name string, head bool) *Setup {
		s, err := Prepare(Options{ModelDir: dir, GLUE: glue, Task: "MNLI", MaxLen: 16, Batches: 3, BatchSize: 1, InitHead: head, Seed: 3, Out: filepath.Join(tmp, name)}, head)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pdir, err := RunPerturb(context.Background(), prepare("perturb", false), 0.01, nil)
	if err != nil {
		t.Fatal(err)
	}
	cdir, err := RunConfusion(context.Background(), prepare("confusion", true), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir, name string
		count     int
	}{{pdir, PerturbDensity, 3}, {cdir, ConfusionDensity, 3}} {
		r, err := store.Open(c.dir)
		if err != nil {
			t.Fatal(err)
		}
		info, d, err := r.RunOutput(c.name)
		if err != nil {
			t.Fatal(err)
		}
		if len(info.Axes) != 1 || info.Axes[0].Name != store.AxisBin || len(d.Data) != HistogramBins {
			t.Fatalf("%s: axes %+v, %d values", c.name, info.Axes, len(d.Data))
		}
		if n, _ := info.Kwargs["count"].(float64); int(n) != c.count {
			t.Errorf("%s: %v values counted, want %d", c.name, info.Kwargs["count"], c.count)
		}
		sum := 0.0
		for i, lab := range info.Axes[0].Labels {
			lo, hi, _ := strings.Cut(lab, "…")
			l, _ := strconv.ParseFloat(lo, 64)
			h, _ := strconv.ParseFloat(hi, 64)
			sum += d.Data[i] * (h - l)
		}
		if math.Abs(sum-1) > 1e-3 {
			t.Errorf("%s integrates to %v over its (rounded) bins", c.name, sum)
		}
	}
}
