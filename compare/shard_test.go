package compare

import (
	"bytes"
	"context"
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

	"github.com/attnscope/attnscope/internal/shard"
)

// n shards of a compare merged are the unsharded run's tables, CSV and Parquet byte
// for byte (with the row time stamps fixed); a finished shard's rerun computes
// nothing; merging again rewrites the same bytes; an incomplete set writes nothing.
func TestShardsMergeToTheSingleRun(t *testing.T) {
	fixed := func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	dir, cfg := setup(t, false)
	single, err := Run(context.Background(), cfg, Options{Now: fixed, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for _, o := range single.Outputs {
		tables = append(tables, strings.TrimSuffix(filepath.Base(o), ".csv"))
	}
	for _, n := range []int{1, 2, 3, 4} {
		var dirs []string
		nonEmpty := 0
		for i := range n {
			sum, err := Run(context.Background(), cfg, Options{Now: fixed, Workers: 2, Shard: shard.Shard{Index: i, Count: n}, ConfigSum: "c"})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Pairs > 0 {
				nonEmpty++
			}
			dirs = append(dirs, filepath.Join(dir, "out", fmt.Sprintf("shard-%d-of-%d", i, n)))
		}
		if n > 1 && nonEmpty < 2 {
			t.Fatalf("%d shards: only %d hold pairs; the test does not exercise the merge", n, nonEmpty)
		}
		merged := filepath.Join(dir, fmt.Sprintf("merged-%d", n))
		for range 2 { // merging again rewrites the same bytes
			got, rows, err := MergeShards(merged, dirs)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tables) || rows != single.Rows {
				t.Fatalf("%d shards: merged %d tables, %d rows; the single run wrote %d tables, %d rows", n, len(got), rows, len(single.Outputs), single.Rows)
			}
			for _, tb := range tables {
				for _, ext := range []string{".csv", ".parquet"} {
					a, err1 := os.ReadFile(filepath.Join(dir, "out", tb+ext))
					b, err2 := os.ReadFile(filepath.Join(merged, tb+ext))
					if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
						t.Fatalf("%d shards: merged %s%s differs from the single run's (%v %v)", n, tb, ext, err1, err2)
					}
				}
			}
		}
		if n == 3 {
			// A finished shard's rerun computes nothing and leaves its tables as they are.
			before, _ := os.ReadFile(filepath.Join(dirs[1], "plain_m.csv"))
			sum, err := Run(context.Background(), cfg, Options{Now: func() time.Time { return time.Now() }, Shard: shard.Shard{Index: 1, Count: 3}, ConfigSum: "c"})
			after, _ := os.ReadFile(filepath.Join(dirs[1], "plain_m.csv"))
			if err != nil || !sum.Resumed || sum.Pairs != 0 || !bytes.Equal(before, after) {
				t.Fatalf("rerun of a finished shard: %+v, %v", sum, err)
			}
			// Another configuration is computed again.
			if sum, err := Run(context.Background(), cfg, Options{Now: fixed, Shard: shard.Shard{Index: 1, Count: 3}, ConfigSum: "other"}); err != nil || sum.Resumed {
				t.Fatalf("rerun with another configuration: %+v, %v", sum, err)
			}
			// Shards of two configurations, a missing shard, an unfinished shard: refused, nothing written.
			for name, set := range map[string][]string{"mixed": dirs, "missing": dirs[:2]} {
				dst := filepath.Join(dir, "refused-"+name)
				if _, _, err := MergeShards(dst, set); err == nil {
					t.Errorf("%s: merged", name)
				}
				if _, err := os.Stat(dst); !os.IsNotExist(err) {
					t.Errorf("%s: the refused merge created %s", name, dst)
				}
			}
		}
	}
}

// A shard killed before its tables were published left no manifest: merge says which
// shard to rerun.
func TestMergeRefusesUnfinishedShard(t *testing.T) {
	dir, cfg := setup(t, false)
	var dirs []string
	for i := range 2 {
		if _, err := Run(context.Background(), cfg, Options{Shard: shard.Shard{Index: i, Count: 2}}); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, filepath.Join(dir, "out", fmt.Sprintf("shard-%d-of-2", i)))
	}
	os.Remove(filepath.Join(dirs[1], ShardManifestFile))
	_, _, err := MergeShards(filepath.Join(dir, "m"), dirs)
	if err == nil || !strings.Contains(err.Error(), "shard-1-of-2") {
		t.Fatalf("merge with an unfinished shard: %v", err)
	}
}

const killChildEnv = "ATTNSCOPE_COMPARE_KILL_CHILD"

// TestShardKilledChild is the child process of TestShardKilledMidway: it runs shard
// 0/1 of the compare configuration named in its environment, slowed down after every
// pair and stopped once a session is finished, so that the parent kills it between
// two human sessions.
func TestShardKilledChild(t *testing.T) {
	path := os.Getenv(killChildEnv)
	if path == "" {
		t.Skip("helper for TestShardKilledMidway; runs only as its child process")
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	// After the first finished session is recorded, the child stops itself
	// (SIGSTOP) at its next pair, so the parent's kill finds it mid-way.
	work := filepath.Join(filepath.Dir(path), "out", "shard-0-of-1", shard.WorkDir)
	slow := func(int, int) {
		time.Sleep(40 * time.Millisecond)
		if done, err := shard.ReadProgress(work); err == nil && len(done) >= 1 {
			syscall.Kill(os.Getpid(), syscall.SIGSTOP)
		}
	}
	if _, err := Run(context.Background(), cfg, Options{Now: killFixed, Workers: 1, Shard: shard.Shard{Index: 0, Count: 1}, ConfigSum: "c", Progress: slow}); err != nil {
		t.Fatal(err)
	}
}

func killFixed() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

// Acceptance of sharded runs: a compare shard killed (SIGKILL, a real process) after
// its first human session keeps that session's tables and no shard table or manifest;
// its rerun compares only the other sessions, leaves no work folder or temporary file,
// and the merged shard is the unsharded run byte for byte.
func TestShardKilledMidway(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process; skipped with -short")
	}
	dir, cfg := setup(t, false)
	single, err := Run(context.Background(), cfg, Options{Now: killFixed, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out", "shard-0-of-1")
	work := filepath.Join(out, shard.WorkDir)
	cmd := exec.Command(os.Args[0], "-test.run=^TestShardKilledChild$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+filepath.Join(dir, "cmp.yaml"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if done, err := shard.ReadProgress(work); err == nil && len(done) >= 1 {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if IsShardOutput(out) {
		t.Fatal("the shard finished although it stopped itself after its first session to be killed")
	}
	done, err := shard.ReadProgress(work)
	if err != nil || len(done) == 0 {
		t.Fatalf("the killed shard recorded no finished session (%v)", err)
	}
	if tables, _ := filepath.Glob(filepath.Join(out, "*.csv")); len(tables) > 0 {
		t.Fatalf("the killed shard published tables: %v", tables)
	}
	sum, err := Run(context.Background(), cfg, Options{Now: killFixed, Workers: 2, Shard: shard.Shard{Index: 0, Count: 1}, ConfigSum: "c"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := ReadShardManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) == len(m.Assigned) {
		t.Fatalf("killed with all %d sessions finished; expected mid-way", len(done))
	}
	if sum.Kept != len(done) || sum.Sessions != len(m.Assigned)-len(done) {
		t.Errorf("rerun compared %d sessions and kept %d; want %d and %d", sum.Sessions, sum.Kept, len(m.Assigned)-len(done), len(done))
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && (strings.Contains(d.Name(), ".tmp-") || d.Name() == shard.WorkDir) {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
	merged := filepath.Join(dir, "merged")
	if _, _, err := MergeShards(merged, []string{out}); err != nil {
		t.Fatal(err)
	}
	for _, o := range single.Outputs {
		stem := strings.TrimSuffix(filepath.Base(o), ".csv")
		for _, ext := range []string{".csv", ".parquet"} {
			a, err1 := os.ReadFile(filepath.Join(filepath.Dir(o), stem+ext))
			b, err2 := os.ReadFile(filepath.Join(merged, stem+ext))
			if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
				t.Errorf("merged %s%s differs from the single run's (%v %v)", stem, ext, err1, err2)
			}
		}
	}
}

// A work folder left by a shard of another configuration (its progress record's key
// differs) is not taken: the rerun warns, compares every session afresh, and removes it.
func TestShardStaleWorkStartsAfresh(t *testing.T) {
	dir, cfg := setup(t, false)
	out := filepath.Join(dir, "out", "shard-0-of-1")
	sh := shard.Shard{Index: 0, Count: 1}
	w, err := shard.OpenWork(filepath.Join(out, shard.WorkDir), sh, "another configuration", "configuration")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Finish("a session of another run"); err != nil {
		t.Fatal(err)
	}
	sum, err := Run(context.Background(), cfg, Options{Now: killFixed, Workers: 2, Shard: sh, ConfigSum: "c"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := ReadShardManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Kept != 0 || sum.Sessions != len(m.Assigned) || len(m.Assigned) == 0 {
		t.Errorf("compared %d sessions and kept %d; want all %d and none", sum.Sessions, sum.Kept, len(m.Assigned))
	}
	if !slices.ContainsFunc(sum.Warnings, func(s string) bool { return strings.Contains(s, "started afresh") }) {
		t.Errorf("no warning about the stale work folder: %q", sum.Warnings)
	}
	if _, err := os.Stat(filepath.Join(out, shard.WorkDir)); !os.IsNotExist(err) {
		t.Errorf("the work folder is left (%v)", err)
	}
}
