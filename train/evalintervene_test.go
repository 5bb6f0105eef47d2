package train

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/evaluate"
	"github.com/attnscope/attnscope/model"
)

func writeIntervention(t *testing.T, yaml string) *model.InterventionFile {
	t.Helper()
	path := filepath.Join(t.TempDir(), "iv.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := model.ReadIntervention(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func datasetsJSON(t *testing.T, r *evaluate.Report) string {
	t.Helper()
	b, err := json.Marshal([]*evaluate.DatasetResult{r.ID, r.OOD})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEvaluateModelIntervention: evaluating a Hugging Face model with a no-op
// intervention gives the clean evaluation's results exactly (every metric and
// share) and records the file; zeroing layer 0's heads changes them; patch
// edits and a layer the model lacks are refused with the file and line.
func TestEvaluateModelIntervention(t *testing.T) {
	dir := hfChatModel(t)
	e, err := ParseExperiment("hf.yaml", []byte(hfEvalConfig), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	clean, err := EvaluateModel(ctx, e, dir, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	noopYAML := "name: noop\nedits:\n  - hook: attn.hook_pattern\n    op: scale\n    value: 1\n"
	noop, err := EvaluateModel(ctx, e, dir, EvalOptions{Intervention: writeIntervention(t, noopYAML)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := datasetsJSON(t, noop), datasetsJSON(t, clean); got != want {
		t.Errorf("no-op intervention changed the results:\n%s\nwant\n%s", got, want)
	}
	if noop.Intervention == nil || noop.Intervention.Name != "noop" || noop.Intervention.YAML != noopYAML || clean.Intervention != nil {
		t.Errorf("recorded intervention %+v (clean %+v)", noop.Intervention, clean.Intervention)
	}
	ablated, err := EvaluateModel(ctx, e, dir, EvalOptions{Intervention: writeIntervention(t, "edits:\n  - hook: blocks.0.attn.hook_z\n    op: zero\n")})
	if err != nil {
		t.Fatal(err)
	}
	if datasetsJSON(t, ablated) == datasetsJSON(t, clean) {
		t.Error("zeroing layer 0's heads changed no result: the intervention was not applied")
	}
	for _, c := range []struct{ yaml, want string }{
		{"edits:\n  - hook: hook_resid_post\n    op: patch\n    source_text: \"1+1\"\n", ":3: edits[0].op: op patch cannot be used in evaluate"},
		{"edits:\n  - hook: attn.hook_z\n    layers: [7]\n    op: zero\n", ":3: edits[0].layers: layer 7 does not exist"},
	} {
		f := writeIntervention(t, c.yaml)
		_, err := EvaluateModel(ctx, e, dir, EvalOptions{Intervention: f})
		if err == nil || !strings.Contains(err.Error(), f.Path+c.want) {
			t.Errorf("error %v, want %q", err, f.Path+c.want)
		}
	}
}

// TestEvaluateIntervention: evaluating a configured model with an intervention
// that zeroes one head's output gives the predictions of evaluating (without
// intervention) the weights whose output projection lacks that head's rows,
// and the same reference-attention shares within float32 rounding (the
// intervened model runs on package model's runtime, the clean one on the
// training graph); a no-op intervention gives the clean evaluation's.
func TestEvaluateIntervention(t *testing.T) {
	e, err := LoadExperiment(defaultConfig, []string{"evaluation.batch_size=4", "evaluation.dataset1.num_samples=4", "evaluation.dataset2.num_samples=4"})
	if err != nil {
		t.Fatal(err)
	}
	tok := Tokenizer()
	cfg, w, err := NewModel(e, tok)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const layer, head = 0, 2
	ablated := slices.Clone(w)
	hd := cfg.NEmbd / cfg.NHead
	for i, p := range cfg.Params() {
		if p.Name != fmt.Sprintf("transformer.h.%d.attn.c_proj.weight", layer) {
			continue
		}
		m := slices.Clone(w[i]) // Conv1D [in, out]
		for r := head * hd; r < (head+1)*hd; r++ {
			clear(m[r*p.Shape[1] : (r+1)*p.Shape[1]])
		}
		ablated[i] = m
	}
	want, err := Evaluate(ctx, e, cfg, ablated, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Evaluate(ctx, e, cfg, w, EvalOptions{Intervention: writeIntervention(t, "edits:\n  - hook: blocks.0.attn.hook_z\n    heads: [2]\n    op: zero\n")})
	if err != nil {
		t.Fatal(err)
	}
	clean, err := Evaluate(ctx, e, cfg, w, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	noop, err := Evaluate(ctx, e, cfg, w, EvalOptions{Intervention: writeIntervention(t, "edits:\n  - hook: attn.hook_z\n    op: scale\n    value: 1\n")})
	if err != nil {
		t.Fatal(err)
	}
	same := func(what string, a, b *evaluate.Report) float64 {
		t.Helper()
		var d float64
		for k, pair := range [][2]*evaluate.DatasetResult{{a.ID, b.ID}, {a.OOD, b.OOD}} {
			x, y := pair[0], pair[1]
			if x.Accuracy != y.Accuracy || len(x.Samples) != len(y.Samples) {
				t.Fatalf("%s dataset %d: accuracy %g vs %g", what, k+1, x.Accuracy, y.Accuracy)
			}
			for i := range x.Samples {
				if !slices.Equal(x.Samples[i].Piecewise, y.Samples[i].Piecewise) || x.Samples[i].Predicted != y.Samples[i].Predicted {
					t.Fatalf("%s dataset %d sample %d: predicted %q, want %q", what, k+1, i, x.Samples[i].Predicted, y.Samples[i].Predicted)
				}
				for j := range x.Samples[i].RefShare {
					d = math.Max(d, math.Abs(x.Samples[i].RefShare[j]-y.Samples[i].RefShare[j]))
				}
			}
		}
		if d > 1e-5 {
			t.Errorf("%s: reference-attention shares differ by %g", what, d)
		}
		return d
	}
	same("zeroed head vs checkpoint without its projection rows", got, want)
	same("no-op intervention vs clean", noop, clean)
	if got.Intervention == nil || noop.Intervention == nil {
		t.Error("the report does not record the intervention")
	}
	diff := false
	for i := range clean.ID.Samples {
		diff = diff || clean.ID.Samples[i].Predicted != want.ID.Samples[i].Predicted || !slices.Equal(clean.ID.Samples[i].RefShare, want.ID.Samples[i].RefShare)
	}
	if !diff {
		t.Error("removing the head changed nothing: the test would prove nothing")
	}
}
