package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/jobs"
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

// diagnose jacobian (training mode, a random token table) and layernorm split into 3
// shards and merged equal the unsharded run file for file (jobs.SameRun: provenance
// aside); a finished shard's rerun computes nothing; --shard 5/4 is a usage error.
func TestDiagnoseShards(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the diagnostics 3 times")
	}
	model := refdata.Path(t, "models", "tiny-bert")
	tmp := t.TempDir()
	text := writeFile(t, filepath.Join(tmp, "in.txt"), "a = 1\nprint(a)\nb = a + 2\nfor i in x:\nreturn y\ndef f(z):\n")
	for _, d := range [][]string{
		{"jacobian", "--batches", "6", "--train", "--random-table", "3", "--chunk", "64"},
		{"layernorm", "--batches", "3", "--batch-size", "2"},
	} {
		base := append([]string{"diagnose", d[0], "--model", model, "--text", text, "--max-len", "8"}, d[1:]...)
		single := filepath.Join(tmp, d[0])
		if got := run(append(base, "-o", single)); got != exitOK {
			t.Fatalf("%v: exit %d", base, got)
		}
		var shards []string
		for i := range 3 {
			o := filepath.Join(tmp, fmt.Sprintf("%s.shard-%d", d[0], i))
			for range 2 { // the second run finds the shard finished
				if got := run(append(base, "-o", o, "--shard", fmt.Sprintf("%d/3", i))); got != exitOK {
					t.Fatalf("shard %d/3 of %s: exit %d", i, d[0], got)
				}
			}
			shards = append(shards, o)
		}
		merged := filepath.Join(tmp, d[0]+".merged")
		for range 2 {
			if got := run(append([]string{"merge", "--out", merged}, shards...)); got != exitOK {
				t.Fatalf("merge %s: exit %d", d[0], got)
			}
		}
		if err := jobs.SameRun(single, merged); err != nil {
			t.Fatalf("%s: %v", d[0], err)
		}
		if got := run(append(base, "-o", filepath.Join(tmp, "x"), "--shard", "5/4")); got != exitUsage {
			t.Errorf("--shard 5/4: exit %d", got)
		}
	}
}
