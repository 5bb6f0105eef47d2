package main

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/pyoracle"
	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tasks/followup"
)

const creatorTestConfig = `input_data_folder: DIR/prompts
ground_truth_folder: DIR/truth
prompt_creation_strategy:
  name: assignment_chain
  type: creator
  attention_level: line
  n_prompts: 3
  kwargs:
    seed: 1
    n_assignments: 3
    init_min_int_value: 0
    init_max_int_value: 99
    n_arithmetic_ops: 3
    allow_reuse_of_derived_nodes: true
    distance_fn: naive
    custom_prompt: "if (<RELEVANT_VARIABLE> == "
    arithmetic_ops: [{symbol: "+", min_n_args: 2, max_n_args: 2}]
`

// tasks create, capture of the prompts by a reference model, derive ground_truth_lines:
// each sample's [L,H,4] scores equal NumPy/SciPy's from the stored attention.
func TestTasksCreateCaptureScore(t *testing.T) {
	tmp := t.TempDir()
	cfg := writeFile(t, filepath.Join(tmp, "exp.yaml"), strings.ReplaceAll(creatorTestConfig, "DIR", tmp))
	bad := writeFile(t, filepath.Join(tmp, "bad.yaml"), strings.ReplaceAll(creatorTestConfig, "DIR", tmp)+"colour: red\n")
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"tasks", "create"}, exitUsage},
		{[]string{"tasks", "create", "--config", bad}, exitError},
		{[]string{"tasks", "create", "--config", cfg}, exitOK},
		{[]string{"tasks", "create", "--config", cfg}, exitError}, // prompts exist
		{[]string{"tasks", "create", "--config", cfg, "--force"}, exitOK},
	} {
		if got := run(c.args); got != c.want {
			t.Fatalf("attnscope %s: exit %d, want %d", strings.Join(c.args, " "), got, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(tmp, "prompts", "prompt_0_assignment_chain.txt")); err != nil {
		t.Fatal(err)
	}
	captured := filepath.Join(tmp, "run")
	if got := run([]string{"capture", "--model", refdata.Path(t, "models", "code-gpt2-mini"), "--prompts", filepath.Join(tmp, "prompts"), "--out", captured}); got != exitOK {
		t.Fatalf("capture exited %d", got)
	}
	dcfg := writeFile(t, filepath.Join(tmp, "derive.yaml"), "passes:\n  - {name: gt, input: attention, function: ground_truth_lines, kwargs: {ground_truth: "+filepath.Join(tmp, "truth")+"}}\n")
	if got := run([]string{"derive", "--config", dcfg, captured}); got != exitOK {
		t.Fatalf("derive exited %d", got)
	}
	r, err := store.Open(captured)
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := r.Samples()
	if len(ids) != 3 {
		t.Fatalf("%d samples", len(ids))
	}
	py := pyoracle.Python(t, "numpy", "scipy")
	for _, id := range ids {
		scoreAgainstNumPy(t, r, id, filepath.Join(tmp, "truth"), py)
	}
	rows, err := store.ReadMetricsCSV(filepath.Join(captured, store.MetricsCSV))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range rows {
		if m.Pass == "gt" && m.Metric == "gt_relevant_mass" && m.Layer == -1 && m.Head == -1 {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d overall gt_relevant_mass rows, want one per sample", n)
	}
}

func scoreAgainstNumPy(t *testing.T, r *store.Run, id, truth, py string) {
	t.Helper()
	got, err := r.Derived("gt", id)
	if err != nil {
		t.Fatal(err)
	}
	att, err := r.Attention(id)
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Sample(id)
	if err != nil {
		t.Fatal(err)
	}
	g, err := followup.ReadGroundTruth(filepath.Join(truth, strings.TrimSuffix(id, ".txt")+".json"))
	if err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal(map[string]any{"att": att.Data, "shape": att.Shape, "text": m.Text, "offsets": m.Offsets, "weights": g.AttentionWeights})
	script := `import json, sys
import numpy as np
from scipy.stats import spearmanr
d = json.load(sys.stdin)
a = np.array(d["att"], dtype=np.float64).reshape(d["shape"])
g = np.array(d["weights"])
keys = [j for j, (s, e) in enumerate(d["offsets"]) if e > s]
line = [d["text"][:s].count("\n") for s, e in d["offsets"]]
out = []
for l in range(a.shape[0]):
    for h in range(a.shape[1]):
        v = np.zeros(len(g))
        np.add.at(v, [line[j] for j in keys], a[l, h, keys[-1], keys])
        out.append([v[g > 0].sum() / v.sum(), (g > 0).mean(), (v * g).sum() / v.sum(), spearmanr(v, g).correlation])
print(json.dumps(out))`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var want [][]float64
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	L, H := att.Shape[0], att.Shape[1]
	if len(got.Shape) != 3 || got.Shape[0] != L || got.Shape[1] != H || got.Shape[2] != 4 || len(want) != L*H {
		t.Fatalf("%s: shape %v, attention %v", id, got.Shape, att.Shape)
	}
	for k, w := range want {
		for c := range w {
			if d := got.Data[k*4+c] - w[c]; math.Abs(d) > 1e-9 {
				t.Errorf("%s matrix %d criterion %d: %v, NumPy/SciPy %v", id, k, c, got.Data[k*4+c], w[c])
			}
		}
	}
}
