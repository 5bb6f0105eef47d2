package derive

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/derive/derivetest"
	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

// importReference imports the reference attentions of a trained model folder
// (reference.safetensors with the tokens and offsets of reference.json) into a run
// folder, as attnscope import does.
func importReference(t *testing.T, model string) *store.Run {
	t.Helper()
	dir := refdata.Path(t, "models", model)
	out := filepath.Join(t.TempDir(), "run")
	if _, err := store.Import(context.Background(), out, []string{filepath.Join(dir, "reference.safetensors")},
		store.ImportOptions{TokensFrom: filepath.Join(dir, "reference.json")}); err != nil {
		t.Fatal(err)
	}
	r, err := store.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	// Keep the forward passes (the generations' attention comes without offsets).
	ids, _ := r.Samples()
	for _, id := range ids {
		if !strings.HasSuffix(id, ".attentions") {
			if err := os.RemoveAll(r.SampleDir(id)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return r
}

// npyRun returns a run whose attention is read from float32 .npy exports of run's
// attention (as another tool would write them), with run's sample records.
func npyRun(t *testing.T, run *store.Run) *memRun {
	t.Helper()
	ids, err := run.Samples()
	if err != nil {
		t.Fatal(err)
	}
	m := &memRun{dir: t.TempDir(), att: map[string]*tensor.Tensor{}, meta: map[string]*store.Sample{}}
	npyDir := t.TempDir()
	for _, id := range ids {
		a, err := run.Attention(id)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(npyDir, id+".npy")
		if err := checkpoint.WriteNpyFile(p, a.Shape, a.Float32()); err != nil {
			t.Fatal(err)
		}
		arr, err := checkpoint.ReadNpyFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m.att[id] = &tensor.Tensor{Shape: arr.Shape, Data: arr.Float64s()}
		if m.meta[id], err = run.Sample(id); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

const codeConfig = `passes:
  - name: categories
    input: attention
    function: attention_per_code_category
  - name: heads
    input: attention
    function: head_sum
  - name: heads_categories
    input: heads
    function: col_sum
`

// derive over the reference attentions of a trained model, read from safetensors and
// from float32 .npy exports of the same tensors, gives the same outputs.
func TestDeriveReferenceModelSafetensorsVsNPY(t *testing.T) {
	reg := testRegistry(t)
	spec := codeCategorySpec()
	spec.Axes = builtinAxes[spec.Name]
	if err := reg.Register(spec); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig("code.yaml", []byte(codeConfig), reg)
	if err != nil {
		t.Fatal(err)
	}
	ref := importReference(t, "code-gpt2-mini")
	if _, err := Derive(context.Background(), ref, cfg, Options{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	imp := npyRun(t, ref)
	if _, err := Derive(context.Background(), imp, cfg, Options{Workers: 1}); err != nil {
		t.Fatal(err)
	}
	a, b := derivetest.Files(t, ref.Dir(), derivetest.Derived), derivetest.Files(t, imp.dir, derivetest.Derived)
	if len(a) == 0 {
		t.Fatal("no outputs")
	}
	derivetest.Same(t, b, a)

	rows, err := ref.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	// On real attention the category shares of every sample, layer and head add to 1.
	sums := map[string]float64{}
	for _, r := range rows {
		if r.Pass == "categories" && strings.HasSuffix(r.Sample, ".attentions") && strings.HasSuffix(r.Metric, "_share") {
			sums[fmt.Sprintf("%s/%d/%d", r.Sample, r.Layer, r.Head)] += r.Value
		}
	}
	if cases := len(imp.att); cases == 0 || len(sums) != cases*(4*4+1) {
		t.Errorf("%d (sample, layer, head) share groups, want %d", len(sums), cases*17)
	}
	for k, s := range sums {
		if math.Abs(s-1) > 1e-9 {
			t.Errorf("%s: shares add to %g", k, s)
		}
	}
}
