package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
)

// TestDiagnoseCommand runs diagnose jacobian and plot on the reference BERT,
// and checks that bad input exits 1 without leaving an output folder.
func TestDiagnoseCommand(t *testing.T) {
	model := refdata.Path(t, "models", "tiny-bert")
	tmp := t.TempDir()
	text := filepath.Join(tmp, "in.txt")
	if err := os.WriteFile(text, []byte("a = 1\nprint(a)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(tmp, "table.json")
	if err := os.WriteFile(bad, []byte("[0, 1, 2]"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "run")
	base := []string{"diagnose", "jacobian", "--model", model, "--text", text, "--batches", "2", "-o", out}
	if got := run(append(base, "--table", bad)); got != exitError {
		t.Errorf("wrong-size table exited %d", got)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a refused run left its folder")
	}
	if got := run([]string{"diagnose", "confusion", "--model", model, "--text", text, "-o", out}); got != exitError {
		t.Errorf("confusion without a GLUE file exited %d", got)
	}
	if got := run(base); got != exitOK {
		t.Fatalf("diagnose jacobian exited %d", got)
	}
	if got := run([]string{"diagnose", "plot", out, "-o", filepath.Join(tmp, "f.svg")}); got != exitOK {
		t.Fatalf("diagnose plot exited %d", got)
	}
}
