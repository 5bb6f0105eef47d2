package main

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/internal/shard"
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

// diagnose jacobian (training mode, a random token table), layernorm, perturb and
// confusion (training mode, 2 mini-batches per step) split into 3 shards and merged
// equal the unsharded run file for file (jobs.SameRun: provenance
// aside); a finished shard's rerun computes nothing; --shard 5/4 is a usage error.
func TestDiagnoseShards(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the diagnostics 3 times")
	}
	model := refdata.Path(t, "models", "tiny-bert")
	tmp := t.TempDir()
	text := writeFile(t, filepath.Join(tmp, "in.txt"), "a = 1\nprint(a)\nb = a + 2\nfor i in x:\nreturn y\ndef f(z):\n")
	glue := writeFile(t, filepath.Join(tmp, "train.tsv"), "index\tsentence1\tsentence2\tgold_label\n"+
		"0\ta b\tc d\tneutral\n1\te f\tg\tentailment\n2\th\ti j k\tcontradiction\n3\tl m\tn\tneutral\n"+
		"4\to p q\tr\tentailment\n5\ts\tt u\tcontradiction\n6\tv w\tx y\tneutral\n7\tz\ta b c\tentailment\n")
	for _, d := range [][]string{
		{"jacobian", "--text", text, "--batches", "6", "--train", "--random-table", "3", "--chunk", "64"},
		{"layernorm", "--text", text, "--batches", "3", "--batch-size", "2"},
		{"perturb", "--text", text, "--batches", "6", "--batch-size", "1", "--train"},
		{"confusion", "--glue", glue, "--task", "MNLI", "--init-head", "--batches", "4", "--batch-size", "2", "--accumulation", "2", "--train"},
	} {
		base := append([]string{"diagnose", d[0], "--model", model, "--max-len", "8"}, d[1:]...)
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

// Acceptance of sharded runs: a diagnose shard killed (SIGKILL, a real process) mid-way
// leaves no output folder, only its work folder with the items it finished; its rerun
// computes only the missing items (it says how many, and the finished items' files are
// not rewritten), leaves no temporary file, and the merged shards equal the unsharded run.
func TestDiagnoseShardKilledMidway(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process; skipped with -short")
	}
	model := refdata.Path(t, "models", "tiny-bert")
	tmp := t.TempDir()
	var lines strings.Builder
	for i := range 16 {
		fmt.Fprintf(&lines, "x = %d + y * %d - foo(bar, %d) for z in range(%d)\n", i, i, i, i)
	}
	text := writeFile(t, filepath.Join(tmp, "in.txt"), lines.String())
	base := []string{"diagnose", "jacobian", "--model", model, "--text", text, "--batches", "16", "--max-len", "24", "--train"}
	single := filepath.Join(tmp, "single")
	if got := run(append(base, "-o", single)); got != exitOK {
		t.Fatalf("unsharded run: exit %d", got)
	}
	shard0, shard1 := filepath.Join(tmp, "s0"), filepath.Join(tmp, "s1")
	if got := run(append(base, "-o", shard1, "--shard", "1/2")); got != exitOK {
		t.Fatalf("shard 1/2: exit %d", got)
	}
	argv := append(slices.Clone(base), "-o", shard0, "--shard", "0/2")
	work := filepath.Join(tmp, ".s0.shard-work")
	var ids []string
	for i := range 16 {
		ids = append(ids, fmt.Sprintf("ex%05d", i))
	}
	assigned := shard.Shard{Index: 0, Count: 2}.Select(ids)

	cmd := startStoppingChild(t, argv, work, 2)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if done, err := shard.ReadProgress(work); err == nil && len(done) >= 2 {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if _, err := os.Stat(shard0); err == nil {
		t.Fatal("the shard finished although it stopped itself mid-way to be killed")
	}
	done, err := shard.ReadProgress(work)
	if err != nil {
		t.Fatalf("the killed shard left no readable progress record in %s: %v", work, err)
	}
	if len(done) == 0 || len(done) == len(assigned) {
		t.Fatalf("killed with %d of %d items finished; expected mid-way", len(done), len(assigned))
	}
	before := map[string]os.FileInfo{}
	for _, id := range done {
		fi, err := os.Stat(filepath.Join(work, "run", "derived", "jacobian", id+".npy"))
		if err != nil {
			t.Fatalf("item %s is marked finished: %v", id, err)
		}
		before[id] = fi
	}

	rerun := exec.Command(os.Args[0], "-test.run=^TestDeriveChild$")
	rerun.Env = append(os.Environ(), deriveChildEnv+"="+strings.Join(argv, "\x1f"))
	out, err := rerun.CombinedOutput()
	if err != nil {
		t.Fatalf("rerun: %v\n%s", err, out)
	}
	want := fmt.Sprintf("%d of %d finished, computing %d", len(done), len(assigned), len(assigned)-len(done))
	if !strings.Contains(string(out), want) {
		t.Errorf("the rerun does not say %q:\n%s", want, out)
	}
	for id, fi := range before {
		now, err := os.Stat(filepath.Join(shard0, "derived", "jacobian", id+".npy"))
		if err != nil || !os.SameFile(fi, now) {
			t.Errorf("item %s, finished before the kill, was recomputed by the rerun (%v)", id, err)
		}
	}
	filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err == nil && (strings.Contains(d.Name(), ".tmp-") || strings.Contains(d.Name(), ".partial-") || strings.HasSuffix(d.Name(), ".shard-work")) {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
	merged := filepath.Join(tmp, "merged")
	if got := run([]string{"merge", "--out", merged, shard0, shard1}); got != exitOK {
		t.Fatalf("merge: exit %d", got)
	}
	if err := jobs.SameRun(single, merged); err != nil {
		t.Fatal(err)
	}
}
