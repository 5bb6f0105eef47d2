package capture

import (
	"context"
	"os"
	"path/filepath"
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
