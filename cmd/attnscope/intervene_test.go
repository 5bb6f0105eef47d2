package main

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInterveneSweep: the head-ablation sweep of the bundled model writes a table
// with every head ranked, its JSON and the layer × head heatmap; bad arguments
// are one sentence and a non-zero exit.
func TestInterveneSweep(t *testing.T) {
	out := t.TempDir()
	code, stderr := runCLI(t, "intervene", "sweep", "--model", "../../models/default", "--task", "LongAdditionGenerator",
		"--param", "length=1,4", "--param", "num_of_nums=2,2", "--n", "5", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	f, err := os.Open(filepath.Join(out, "ablation.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2+2*4 || rows[1][0] != "clean" || rows[2][0] != "1" {
		t.Errorf("table %v: want a header, the clean row and 8 ranked heads", rows)
	}
	checkFigureFile(t, filepath.Join(out, "ablation.svg"))
	if _, err := os.Stat(filepath.Join(out, "ablation.json")); err != nil {
		t.Error(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"intervene", "swep", "--model", "x", "--task", "y", "--out", out}, `the experiment must be sweep or reinforce, got "swep"`},
		{[]string{"intervene", "reinforce", "--variant", "boost", "--model", "x", "--task", "y", "--out", out}, "--variant must be reinforce, zero, noise or random"},
		{[]string{"intervene", "sweep", "--model", "../../models/default", "--task", "NoSuchGenerator", "--out", out}, "NoSuchGenerator"},
	} {
		code, stderr := runCLI(t, c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, code, stderr, c.want)
		}
	}
}
