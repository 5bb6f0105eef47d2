package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// jobs slurm|k8s take the command to shard after --: its output names the shard
// folders and the merged folder (a compare config's output_comparison_folder read
// from the config, relative to its folder); a command before -- or one without
// --shard is a usage error that writes nothing.
func TestJobsCommandAfterDash(t *testing.T) {
	tmp := t.TempDir()
	os.MkdirAll(filepath.Join(tmp, "cfg"), 0o755)
	cfg := writeFile(t, filepath.Join(tmp, "cfg", "cmp.yaml"), "human_att_folder: h\nmachine_att_folder: m\noutput_comparison_folder: out\ncomparisons:\n  - name: a\n    comparison_function: mse\n    human: {subfolder: x, suffix: _h}\n    machine: {subfolder: y, suffix: _m}\n")
	dir := filepath.Join(tmp, "jobs")
	if got := run([]string{"jobs", "slurm", "--name", "ev", "--shards", "4", "--parallel", "2", "--dir", dir, "--",
		"evaluate", "exp.yaml", "training=null", "--model", "m", "--out", "runs/ev"}); got != exitOK {
		t.Fatalf("jobs slurm -- evaluate: exit %d", got)
	}
	arr, _ := os.ReadFile(filepath.Join(dir, "ev.array.sbatch"))
	mrg, _ := os.ReadFile(filepath.Join(dir, "ev.merge.sbatch"))
	if !strings.Contains(string(arr), "#SBATCH --array=0-3%2\n") || !strings.Contains(string(arr), `attnscope evaluate exp.yaml training=null --model m --out "$run" --shard "$i/4"`) ||
		!strings.Contains(string(mrg), "attnscope merge --out runs/ev runs/ev.shard-0 runs/ev.shard-1 runs/ev.shard-2 runs/ev.shard-3\n") {
		t.Errorf("array script:\n%s\nmerge script:\n%s", arr, mrg)
	}
	if got := run([]string{"jobs", "k8s", "--name", "cmp", "--shards", "2", "--image", "img", "--dir", dir, "--", "compare", "--config", cfg}); got != exitOK {
		t.Fatalf("jobs k8s -- compare: exit %d", got)
	}
	mk, _ := os.ReadFile(filepath.Join(dir, "cmp.merge.k8s.yaml"))
	out := filepath.Join(tmp, "cfg", "out")
	if !strings.Contains(string(mk), "merge --out "+out+" "+out+"/shard-0-of-2 "+out+"/shard-1-of-2\n") {
		t.Errorf("compare merge Job:\n%s", mk)
	}
	for _, args := range [][]string{
		{"jobs", "slurm", "--shards", "2", "--dir", filepath.Join(tmp, "bad"), "evaluate", "--out", "x"},
		{"jobs", "slurm", "--shards", "2", "--dir", filepath.Join(tmp, "bad"), "--", "run", "exp.yaml"},
		{"jobs", "slurm", "--shards", "2", "--dir", filepath.Join(tmp, "bad"), "--out", "y", "--", "capture", "--out", "x"},
	} {
		if got := run(args); got != exitUsage {
			t.Errorf("%q: exit %d, want a usage error", args, got)
		}
	}
	if _, err := os.Stat(filepath.Join(tmp, "bad")); !os.IsNotExist(err) {
		t.Error("a refused jobs command wrote its folder")
	}
}
