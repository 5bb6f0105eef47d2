package derive

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/pyoracle"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

// groundTruthDir writes <dir>/<stem>.json in the format of attnscope tasks create.
func groundTruthDir(t *testing.T, stem string, parts []string, weights []float64) string {
	t.Helper()
	dir := t.TempDir()
	b, _ := json.Marshal(map[string]any{"attendable_parts": parts, "attention_level": "line", "attention_weights": weights,
		"args": map[string]any{}, "creation_strategy": "AssignmentChainCreator"})
	if err := os.WriteFile(filepath.Join(dir, stem+".json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// gtSample is a three-line prompt with a BOS token (no characters) first:
// "a = 1\nb = a\nb ==" as BOS, "a", " =", " 1", "\n", "b", " =", " a", "\n", "b", " ==".
func gtSample() *store.Sample {
	tokens := []string{"<s>", "a", " =", " 1", "\n", "b", " =", " a", "\n", "b", " =="}
	offsets := [][2]int{{0, 0}}
	pos := 0
	for _, tok := range tokens[1:] {
		offsets = append(offsets, [2]int{pos, pos + len(tok)})
		pos += len(tok)
	}
	return &store.Sample{ID: "s", Text: "a = 1\nb = a\nb ==", Tokens: tokens, Offsets: offsets, PromptLen: len(tokens), Source: "prompts/p.txt"}
}

// Hand check: the last token's row sums per line, BOS left out.
func TestGroundTruthLinesHand(t *testing.T) {
	m := gtSample()
	n := len(m.Offsets)
	att := tensor.New(n, n)
	// Row 10 (the last token " =="): BOS 0.3, line 0 tokens 1..4 get 0.1 each, line 1
	// tokens 5..8 get 0.05 each, line 2 tokens 9, 10 get 0.05 each.
	row := []float64{0.3, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05}
	copy(att.Data[10*n:], row)
	// Row 9 ("b" of the last line) puts 1 on line 1's token 7.
	att.Data[9*n+7] = 1
	dir := groundTruthDir(t, "p", []string{"a = 1", "b = a", "b =="}, []float64{1.0 / 3, 2.0 / 3, 1})
	spec := groundTruthSpec()
	res, err := spec.Fn(context.Background(), &Input{Tensor: att, Meta: m}, Kwargs{"ground_truth": dir, "query": "last", "last_line": true})
	if err != nil {
		t.Fatal(err)
	}
	// lines a = (0.4, 0.2, 0.1): relevant mass 1 (every line relevant), baseline 1,
	// weighted (0.4/3 + 0.2·2/3 + 0.1)/0.7 = 0.3666.../0.7, ranks (3,2,1) vs (1,2,3): ρ = −1.
	want := []float64{1, 1, (0.4/3 + 0.4/3 + 0.1) / 0.7, -1}
	if !reflect.DeepEqual(res.Tensor.Shape, []int{4}) {
		t.Fatalf("shape %v", res.Tensor.Shape)
	}
	for i := range want {
		if math.Abs(res.Tensor.Data[i]-want[i]) > 1e-12 {
			t.Errorf("last: %v, want %v", res.Tensor.Data, want)
			break
		}
	}
	if len(res.Metrics) != 4 || res.Metrics[3].Name != "gt_spearman" || res.Metrics[3].Layer != -1 {
		t.Errorf("metrics %+v", res.Metrics)
	}
	// last_line: rows 9 and 10 summed: lines (0.4, 1.2, 0.1), ranks (2,3,1) vs (1,2,3): ρ = −0.5.
	res, err = spec.Fn(context.Background(), &Input{Tensor: att, Meta: m}, Kwargs{"ground_truth": dir, "query": "last_line", "last_line": true})
	if err != nil {
		t.Fatal(err)
	}
	if w := (0.4/3 + 1.2*2/3 + 0.1) / 1.7; math.Abs(res.Tensor.Data[2]-w) > 1e-12 || math.Abs(res.Tensor.Data[3]+0.5) > 1e-12 {
		t.Errorf("last_line: %v, want weighted %v and ρ −0.5", res.Tensor.Data, w)
	}
	// Without the last line: lines (0.4, 0.2) vs (1/3, 2/3): mass 1, baseline 1,
	// weighted (0.4/3 + 0.4/3)/0.6 = 4/9, ρ −1.
	res, err = spec.Fn(context.Background(), &Input{Tensor: att, Meta: m}, Kwargs{"ground_truth": dir, "query": "last", "last_line": false})
	if err != nil {
		t.Fatal(err)
	}
	want = []float64{1, 1, 4.0 / 9, -1}
	for i := range want {
		if math.Abs(res.Tensor.Data[i]-want[i]) > 1e-12 {
			t.Errorf("without the last line: %v, want %v", res.Tensor.Data, want)
			break
		}
	}
}

func TestGroundTruthLinesErrors(t *testing.T) {
	m := gtSample()
	att := tensor.New(len(m.Offsets), len(m.Offsets))
	spec := groundTruthSpec()
	for _, c := range []struct {
		kw   Kwargs
		meta func(*store.Sample)
		want string
	}{
		{Kwargs{"ground_truth": "", "query": "last", "last_line": true}, nil, "kwarg ground_truth"},
		{Kwargs{"ground_truth": t.TempDir(), "query": "last", "last_line": true}, nil, "p.json: no such file"},
		{Kwargs{"ground_truth": groundTruthDir(t, "p", []string{"a = 1", "b = a"}, []float64{1, 0}), "query": "last", "last_line": true}, nil, "not the sample's prompt text"},
		{Kwargs{"ground_truth": groundTruthDir(t, "p", []string{"a = 1"}, nil), "query": "last", "last_line": true}, nil, "attention_weights is null"},
		{Kwargs{"ground_truth": t.TempDir(), "query": "last", "last_line": true}, func(s *store.Sample) { s.Source = "" }, "no source file"},
	} {
		mm := gtSample()
		if c.meta != nil {
			c.meta(mm)
		}
		_, err := spec.Fn(context.Background(), &Input{Tensor: att, Meta: mm}, c.kw)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}

// Independent float64 computation: NumPy sums the last token's row per line (lines from
// the character offsets, BOS left out) and SciPy's spearmanr ranks, for every head of a
// random [L,H,N,N] tensor.
func TestGroundTruthLinesNumPy(t *testing.T) {
	py := pyoracle.Python(t, "numpy", "scipy")
	m := gtSample()
	n := len(m.Offsets)
	rng := rand.New(rand.NewPCG(5, 6))
	att := tensor.New(2, 3, n, n)
	for i := range att.Data {
		att.Data[i] = rng.Float64()
	}
	weights := []float64{0.25, 0, 1}
	dir := groundTruthDir(t, "p", []string{"a = 1", "b = a", "b =="}, weights)
	for _, lastLine := range []bool{true, false} {
		res := groundTruthVsNumPy(t, py, att, m, dir, weights, lastLine)
		if got := res.Metrics[4*4+3]; got.Layer != 1 || got.Head != 1 || got.Name != "gt_spearman" {
			t.Errorf("metric 19 %+v, want layer 1 head 1 gt_spearman", got)
		}
	}
}

func groundTruthVsNumPy(t *testing.T, py string, att *tensor.Tensor, m *store.Sample, dir string, weights []float64, lastLine bool) *Result {
	t.Helper()
	res, err := groundTruthSpec().Fn(context.Background(), &Input{Tensor: att, Meta: m}, Kwargs{"ground_truth": dir, "query": "last", "last_line": lastLine})
	if err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal(map[string]any{"att": att.Data, "shape": att.Shape, "text": m.Text, "offsets": m.Offsets, "weights": weights, "last_line": lastLine})
	script := `import json, sys
import numpy as np
from scipy.stats import spearmanr
d = json.load(sys.stdin)
a = np.array(d["att"], dtype=np.float64).reshape(d["shape"])
g = np.array(d["weights"])
text, offs = d["text"], d["offsets"]
keys = [j for j, (s, e) in enumerate(offs) if e > s]
line = [text[:s].count("\n") for s, e in offs]
q = keys[-1]
out = []
for l in range(a.shape[0]):
    for h in range(a.shape[1]):
        v = np.zeros(len(g))
        for j in keys:
            v[line[j]] += a[l, h, q, j]
        if not d["last_line"]:
            v, gg = v[:-1], g[:-1]
        else:
            gg = g
        out.append([v[gg > 0].sum() / v.sum(), (gg > 0).mean(), (v * gg).sum() / v.sum(), spearmanr(v, gg).correlation])
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
	if !reflect.DeepEqual(res.Tensor.Shape, []int{2, 3, 4}) || len(want) != 6 {
		t.Fatalf("shape %v, oracle rows %d", res.Tensor.Shape, len(want))
	}
	for k, w := range want {
		for c := range w {
			if got := res.Tensor.Data[k*4+c]; math.Abs(got-w[c]) > 1e-12 {
				t.Errorf("last_line %v matrix %d criterion %s: %v, NumPy/SciPy %v", lastLine, k, groundTruthCriteria[c], got, w[c])
			}
		}
	}
	return res
}
