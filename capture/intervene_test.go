package capture

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/store"
)

// TestCaptureIntervention: a capture whose intervention patches every layer's
// residual stream from a clean text stores that text's final hidden states
// (bitwise), records the file in run.json, and refuses a source text of another
// length with the file and line before writing anything.
func TestCaptureIntervention(t *testing.T) {
	dir := refdata.Path(t, "models", "tiny-gpt2")
	tmp := t.TempDir()
	clean, corrupted := "x = add(a, b)", "x = sub(a, b)"
	ivPath := filepath.Join(tmp, "patch.yaml")
	yaml := "name: patch-all\nedits:\n  - hook: hook_resid_post\n    op: patch\n    source_text: \"" + clean + "\"\n"
	if err := os.WriteFile(ivPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	iv, err := model.ReadIntervention(ivPath)
	if err != nil {
		t.Fatal(err)
	}
	cleanRun, patched := filepath.Join(tmp, "clean"), filepath.Join(tmp, "patched")
	if _, err := Run(context.Background(), cleanRun, []Input{{ID: "a", Text: clean}}, Options{ModelDir: dir, Hidden: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), patched, []Input{{ID: "a", Text: corrupted}}, Options{ModelDir: dir, Hidden: true, Intervention: iv}); err != nil {
		t.Fatal(err)
	}
	rc, _ := store.Open(cleanRun)
	rp, err := store.Open(patched)
	if err != nil {
		t.Fatal(err)
	}
	if rp.Meta.Intervention == nil || rp.Meta.Intervention.YAML != yaml || rp.Meta.Intervention.Name != "patch-all" || rc.Meta.Intervention != nil {
		t.Fatalf("run.json intervention: %+v (clean run: %+v)", rp.Meta.Intervention, rc.Meta.Intervention)
	}
	hc, _ := rc.Hidden("a", "final_norm")
	hp, err := rp.Hidden("a", "final_norm")
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, hp.Float32(), hc.Float32()); d != 0 {
		t.Errorf("patched final_norm differs from the clean run's by %g", d)
	}
	e0c, _ := rc.Hidden("a", "embed")
	e0p, _ := rp.Hidden("a", "embed")
	if maxDiff(t, e0p.Float32(), e0c.Float32()) == 0 {
		t.Error("the corrupted text embeds like the clean one: the test would prove nothing")
	}

	yaml = "edits:\n  - hook: hook_resid_post\n    op: patch\n    source_text: \"x = add(a, b, c)\"\n"
	if err := os.WriteFile(ivPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if iv, err = model.ReadIntervention(ivPath); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "bad")
	_, err = Run(context.Background(), out, []Input{{ID: "a", Text: corrupted}}, Options{ModelDir: dir, Intervention: iv})
	if err == nil || !strings.Contains(err.Error(), ivPath+":4: edits[0].source_text: the source text has") {
		t.Fatalf("error %v, want the file, line 4 and the lengths", err)
	}
	if _, serr := os.Stat(out); !os.IsNotExist(serr) {
		t.Errorf("a refused capture left %s behind", out)
	}
}

// TestCaptureGenerateIntervention: a generating capture applies the
// intervention in every decode step: a no-op intervention stores the ids and
// attention (bitwise) of a clean generating capture, an ablation stores what
// model.Generate with that intervention produces, run.json records the file,
// and a patch edit is refused with the file and line.
func TestCaptureGenerateIntervention(t *testing.T) {
	dir := refdata.Path(t, "models", "tiny-gpt2")
	tmp := t.TempDir()
	gen := &model.GenerateOptions{MaxNewTokens: 5, EOS: []int{}}
	in := []Input{{ID: "a", Text: "x = add(a, b)"}}
	capture := func(name, yaml string) *store.Run {
		t.Helper()
		opts := Options{ModelDir: dir, Generate: gen}
		if yaml != "" {
			path := filepath.Join(tmp, name+".yaml")
			if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			iv, err := model.ReadIntervention(path)
			if err != nil {
				t.Fatal(err)
			}
			opts.Intervention = iv
		}
		out := filepath.Join(tmp, name)
		if _, err := Run(context.Background(), out, in, opts); err != nil {
			t.Fatal(err)
		}
		r, err := store.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	sample := func(r *store.Run) (*store.Sample, []float32) {
		t.Helper()
		s, err := r.Sample("a")
		if err != nil {
			t.Fatal(err)
		}
		a, err := r.Attention("a")
		if err != nil {
			t.Fatal(err)
		}
		return s, a.Float32()
	}
	clean := capture("clean", "")
	noop := capture("noop", "edits:\n  - hook: attn.hook_pattern\n    op: scale\n    value: 1\n")
	ablate := capture("ablate", "name: ablate\nedits:\n  - hook: blocks.1.attn.hook_z\n    heads: [2]\n    op: zero\n")
	sc, ac := sample(clean)
	sn, an := sample(noop)
	if !slices.Equal(sn.IDs, sc.IDs) || maxDiff(t, an, ac) != 0 || len(sc.IDs) != sc.PromptLen+5 {
		t.Fatalf("no-op intervention: ids %v (clean %v), attention differs by %g", sn.IDs, sc.IDs, maxDiff(t, an, ac))
	}
	if ablate.Meta.Intervention == nil || ablate.Meta.Intervention.Name != "ablate" || clean.Meta.Intervention != nil {
		t.Fatalf("run.json intervention: %+v", ablate.Meta.Intervention)
	}
	sa, aa := sample(ablate)
	m, err := model.Load(dir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	g := *gen
	g.Intervention = &model.Intervention{Edits: []model.Edit{{Hook: "attn.hook_z", Layers: []int{1}, Heads: []int{2}, Op: model.OpZero}}}
	rec := model.Activations{}
	want, err := m.Generate(context.Background(), sc.IDs[:sc.PromptLen], g, rec)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sa.IDs, want.IDs) {
		t.Fatalf("ablated capture ids %v, model.Generate %v", sa.IDs, want.IDs)
	}
	if d := maxDiff(t, aa[:len(rec["blocks.0.attn.pattern"].Data)], rec["blocks.0.attn.pattern"].Data); d != 0 {
		t.Errorf("ablated capture's layer 0 attention differs from model.Generate's by %g", d)
	}
	if maxDiff(t, aa, ac) == 0 {
		t.Error("the ablation changed no attention: the test would prove nothing")
	}

	bad := filepath.Join(tmp, "patch.yaml")
	if err := os.WriteFile(bad, []byte("edits:\n  - hook: hook_resid_post\n    op: patch\n    source_text: \"x = sub(a, b)\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	iv, err := model.ReadIntervention(bad)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), filepath.Join(tmp, "bad"), in, Options{ModelDir: dir, Generate: gen, Intervention: iv})
	if err == nil || !strings.Contains(err.Error(), bad+":3: edits[0].op: op patch cannot be combined with --generate") {
		t.Fatalf("error %v, want the file, line 3 and the refusal", err)
	}
}
