package derive

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/derive/derivetest"
	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/store"
)

// refRun serves the reference attentions of a trained model folder
// (reference.safetensors case{i}.attentions, reference.json texts and offsets).
type refRun struct {
	dir   string
	st    *checkpoint.Safetensors
	cases []refCase
}

type refCase struct {
	Text    string   `json:"text"`
	Tokens  []string `json:"tokens"`
	Offsets [][2]int `json:"offsets"`
}

func openRefRun(t *testing.T, model string) *refRun {
	t.Helper()
	dir := refdata.Path(t, "models", model)
	b, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Cases []refCase }
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	st, err := checkpoint.OpenSafetensors(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &refRun{dir: t.TempDir(), st: st, cases: doc.Cases}
}

func (r *refRun) Dir() string { return r.dir }
func (r *refRun) Samples(context.Context) ([]string, error) {
	var s []string
	for i := range r.cases {
		s = append(s, fmt.Sprintf("case%d", i))
	}
	return s, nil
}
func (r *refRun) index(s string) int {
	var i int
	fmt.Sscanf(s, "case%d", &i)
	return i
}
func (r *refRun) Attention(_ context.Context, s string) (*Tensor, error) {
	data, shape, err := r.st.Float32(s + ".attentions")
	if err != nil {
		return nil, err
	}
	t := &Tensor{Shape: shape, Data: make([]float64, len(data))}
	for i, v := range data {
		t.Data[i] = float64(v)
	}
	return t, nil
}
func (r *refRun) Meta(_ context.Context, s string) (*SampleMeta, error) {
	c := r.cases[r.index(s)]
	return &SampleMeta{Text: c.Text, Tokens: c.Tokens, Offsets: c.Offsets, PromptLen: len(c.Tokens), Language: "python"}, nil
}

// npyRun serves attention from .npy files (as another tool would export them) and
// the metadata of a reference run.
type npyRun struct {
	*refRun
	dir, attDir string
}

func (r *npyRun) Dir() string { return r.dir }
func (r *npyRun) Attention(_ context.Context, s string) (*Tensor, error) {
	return readNPY(filepath.Join(r.attDir, s+".npy"))
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
	if err := reg.Register(codeCategorySpec()); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig("code.yaml", []byte(codeConfig), reg)
	if err != nil {
		t.Fatal(err)
	}
	ref := openRefRun(t, "code-gpt2-mini")
	if _, err := Derive(context.Background(), ref, cfg, Options{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	imp := &npyRun{refRun: ref, dir: t.TempDir(), attDir: t.TempDir()}
	for i := range ref.cases {
		s := fmt.Sprintf("case%d", i)
		data, shape, err := ref.st.Float32(s + ".attentions")
		if err != nil {
			t.Fatal(err)
		}
		if err := checkpoint.WriteNpyFile(filepath.Join(imp.attDir, s+".npy"), shape, data); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Derive(context.Background(), imp, cfg, Options{Workers: 1}); err != nil {
		t.Fatal(err)
	}
	a, b := derivetest.Files(t, ref.dir, nil), derivetest.Files(t, imp.dir, nil)
	if len(a) == 0 {
		t.Fatal("no outputs")
	}
	derivetest.Same(t, b, a)

	rows, err := store.ReadMetricsCSV(filepath.Join(ref.dir, store.MetricsCSV))
	if err != nil {
		t.Fatal(err)
	}
	// On real attention the category shares of every sample, layer and head add to 1.
	sums := map[string]float64{}
	for _, r := range rows {
		if r.Pass == "categories" && len(r.Metric) > 6 && r.Metric[len(r.Metric)-6:] == "_share" {
			sums[fmt.Sprintf("%s/%d/%d", r.Sample, r.Layer, r.Head)] += r.Value
		}
	}
	if len(sums) != len(ref.cases)*(4*4+1) {
		t.Errorf("%d (sample, layer, head) share groups, want %d", len(sums), len(ref.cases)*17)
	}
	for k, s := range sums {
		if math.Abs(s-1) > 1e-9 {
			t.Errorf("%s: shares add to %g", k, s)
		}
	}
}
