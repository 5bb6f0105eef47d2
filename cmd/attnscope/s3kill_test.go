package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/attnscope/attnscope/internal/s3test"
	"github.com/attnscope/attnscope/internal/shard"
	"github.com/attnscope/attnscope/internal/testutil"
	"github.com/attnscope/attnscope/jobs"
	"github.com/attnscope/attnscope/store"
)

// runChild runs the attnscope command line args in a child process (TestDeriveChild)
// and returns its exit error and its output, stdout then stderr.
func runChild(t *testing.T, args []string, started func(*exec.Cmd)) (error, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDeriveChild$")
	cmd.Env = append(os.Environ(), deriveChildEnv+"="+strings.Join(args, "\x1f"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if started != nil {
		started(cmd)
	}
	err := cmd.Wait()
	return err, stdout.String() + stderr.String()
}

// killedChild runs args in a child process and kills it (SIGKILL) when it asks the
// server to copy (publish) its nth object whose key starts with keyPrefix and ends
// with suffix: after the object's upload to its temporary key, before the copy. It
// returns the child's output.
func killedChild(t *testing.T, srv *s3test.Server, args []string, keyPrefix, suffix string, nth int32) string {
	t.Helper()
	var child atomic.Pointer[exec.Cmd]
	var copies atomic.Int32
	var killed atomic.Bool
	srv.OnRequest(func(r *http.Request) bool {
		if r.Method != http.MethodPut || r.Header.Get("X-Amz-Copy-Source") == "" ||
			!strings.HasPrefix(r.URL.Path, "/"+s3test.Bucket+"/"+keyPrefix) || !strings.HasSuffix(r.URL.Path, suffix) || copies.Add(1) != nth {
			return false
		}
		// Marked before the signal: once the child is dead, runChild's Wait may
		// return and the test read killed before this handler resumes.
		if c := child.Load(); c != nil {
			killed.Store(true)
			if err := c.Process.Signal(syscall.SIGKILL); err != nil {
				killed.Store(false)
			}
		}
		return true
	})
	defer srv.OnRequest(nil)
	err, out := runChild(t, args, func(c *exec.Cmd) { child.Store(c) })
	if !killed.Load() || err == nil {
		t.Fatalf("%v was not killed at its publish %d of %s*%s (exit %v):\n%s", args, nth, keyPrefix, suffix, err, out)
	}
	return out
}

// Acceptance (issue 17): shard 1/2 of a capture into S3, run as a child process and
// killed (SIGKILL) between uploading a sample.json to its temporary key and
// publishing it, leaves no unfinished sample visible as finished: the bucket shows
// the samples whose sample.json went up (their objects the local run's bytes), no
// run.json, readers and merge refuse the shard, and the killed writer's temporary
// object is still there. Rerun on the same machine, the shard skips the samples it
// had finished, deletes that temporary object (store.Claim) and completes; merged
// with shard 0 the S3 run equals the single-machine local run.
func TestS3ShardKilledMidway(t *testing.T) {
	if testing.Short() {
		t.Skip("captures runs in child processes; skipped with -short")
	}
	srv := s3test.StartEnv(t)
	ctx := context.Background()
	model := defaultModel
	prompts := sumPrompts(t, 8)
	local, cfg := localRun(t, "local", prompts, entropyRollout)
	ids, err := testutil.Must(store.Open(local)).Samples()
	if err != nil {
		t.Fatal(err)
	}
	mine := shard.Shard{Index: 1, Count: 2}.Select(ids)
	if len(mine) < 3 {
		t.Fatalf("shard 1/2 holds %d of the %d samples; the test needs 3", len(mine), len(ids))
	}
	shards := []string{"s3://runs/k.shard-0", "s3://runs/k.shard-1"}
	for _, args := range [][]string{
		{"capture", "--model", model, "--prompts", prompts, "--out", shards[0], "--shard", "0/2"},
		{"derive", "--config", cfg, shards[0], "--shard", "0/2"},
	} {
		if got := run(args); got != exitOK {
			t.Fatalf("%v: exit %d", args, got)
		}
	}
	args := []string{"capture", "--model", model, "--prompts", prompts, "--out", shards[1], "--shard", "1/2"}

	// Kill shard 1 when it asks to copy its second sample.json to the final key.
	const prefix = "k.shard-1/"
	killedChild(t, srv, args, prefix+store.SamplesDir+"/", "/"+store.SampleFile, 2)

	// (1) What the bucket shows after the kill.
	b := testutil.Must(store.OpenS3(ctx, shards[1]))
	keys := testutil.Must(b.List(ctx))
	var finished []string
	for _, k := range keys {
		if id, ok := strings.CutSuffix(strings.TrimPrefix(k, store.SamplesDir+"/"), "/"+store.SampleFile); ok {
			finished = append(finished, id)
		}
		if k == store.RunFile {
			t.Errorf("the killed shard's run.json is in the bucket")
		}
	}
	if len(finished) != 1 || finished[0] != mine[0] {
		t.Fatalf("samples with a sample.json after the kill: %v; want [%s]", finished, mine[0])
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, store.SamplesDir+"/"+mine[0]+"/") {
			continue
		}
		got, want := testutil.Must(b.ReadFile(ctx, k)), testutil.Must(os.ReadFile(filepath.Join(local, filepath.FromSlash(k))))
		if path.Base(k) == store.SampleFile { // equal but for the seconds the model took
			got, want = withoutSeconds(t, got), withoutSeconds(t, want)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("the published %s differs from the local run's", k)
		}
	}
	tmp := testutil.Must(srv.Keys(prefix + ".tmp/"))
	if len(tmp) == 0 || !strings.HasPrefix(tmp[0], prefix+".tmp/capture-shard-1-of-2/") {
		t.Fatalf("the killed writer left temporary objects %v; want one under %s.tmp/capture-shard-1-of-2/", tmp, prefix)
	}
	if _, err := store.OpenRead(ctx, shards[1]); err == nil {
		t.Errorf("store.OpenRead accepted the killed shard")
	}
	if code, stderr := runCLI(t, append([]string{"merge", "--out", "s3://runs/k"}, shards...)...); code == exitOK || !strings.Contains(stderr, "not a run folder") {
		t.Errorf("merge with the killed shard: exit %d, %q", code, stderr)

	} else {
		t.Logf("merge refused: %s", strings.TrimSpace(stderr))
	}
	if keys, _ := testutil.Must(store.OpenS3(ctx, "s3://runs/k")).List(ctx); len(keys) != 0 {
		t.Errorf("the refused merge wrote %v", keys)
	}

	// (2) The rerun on the same machine (same cache) skips what it finished and
	// leaves no temporary object.
	err, out := runChild(t, args, nil)
	if err != nil {
		t.Fatalf("rerun of shard 1: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("captured 0 samples into %s (%d already finished, skipped)", shards[1], len(mine)); !strings.Contains(out, want) {
		t.Errorf("rerun of shard 1 printed %q; want %q", out, want)
	}
	if tmp := testutil.Must(srv.Keys(prefix + ".tmp/")); len(tmp) != 0 {
		t.Errorf("after the rerun, temporary objects remain: %v", tmp)
	}

	// The same for derive on shard 1: killed when it publishes its second output.
	dargs := []string{"derive", "--config", cfg, shards[1], "--shard", "1/2"}
	killedChild(t, srv, dargs, prefix+store.DerivedDir+"/", ".npy", 2)
	keys = testutil.Must(b.List(ctx))
	npy := 0
	for _, k := range keys {
		if strings.HasPrefix(k, store.DerivedDir+"/") && strings.HasSuffix(k, ".npy") {
			npy++
			if got, want := testutil.Must(b.ReadFile(ctx, k)), testutil.Must(os.ReadFile(filepath.Join(local, filepath.FromSlash(k)))); !bytes.Equal(got, want) {
				t.Errorf("the published %s differs from the local run's", k)
			}
		}
		if strings.HasPrefix(k, store.ShardsDir+"/derive-") {
			t.Errorf("the killed derive's manifest %s is in the bucket", k)
		}
	}
	if npy != 1 {
		t.Errorf("%d derived outputs published before the kill; want 1", npy)
	}
	if tmp := testutil.Must(srv.Keys(prefix + ".tmp/")); len(tmp) == 0 || !strings.HasPrefix(tmp[0], prefix+".tmp/derive-shard-1-of-2/") {
		t.Fatalf("the killed derive left temporary objects %v; want one under %s.tmp/derive-shard-1-of-2/", tmp, prefix)
	}
	if code, stderr := runCLI(t, append([]string{"merge", "--out", "s3://runs/k"}, shards...)...); code == exitOK || !strings.Contains(stderr, "derive") {
		t.Errorf("merge with the killed derive shard: exit %d, %q", code, stderr)

	} else {
		t.Logf("merge refused: %s", strings.TrimSpace(stderr))
	}
	if keys, _ := testutil.Must(store.OpenS3(ctx, "s3://runs/k")).List(ctx); len(keys) != 0 {
		t.Errorf("the refused merge wrote %v", keys)
	}
	err, out = runChild(t, dargs, nil)
	if err != nil {
		t.Fatalf("rerun of derive shard 1: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("derived %d samples: 0 outputs computed, %d already present", len(mine), 2*len(mine)); !strings.Contains(out, want) {
		t.Errorf("rerun of derive shard 1 printed %q; want %q", out, want)
	}
	if tmp := testutil.Must(srv.Keys(prefix + ".tmp/")); len(tmp) != 0 {
		t.Errorf("after the derive rerun, temporary objects remain: %v", tmp)
	}

	// (3) Merged with shard 0, the S3 run is the local run.
	if got := run(append([]string{"merge", "--out", "s3://runs/k"}, shards...)); got != exitOK {
		t.Fatalf("merge: exit %d", got)
	}
	back := filepath.Join(t.TempDir(), "back")
	if _, err := testutil.Must(store.OpenS3(ctx, "s3://runs/k")).PullRun(ctx, back); err != nil {
		t.Fatal(err)
	}
	if err := jobs.SameRun(local, back); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"k.shard-0/", "k.shard-1/", "k/"} {
		if tmp := testutil.Must(srv.Keys(p + ".tmp/")); len(tmp) != 0 {
			t.Errorf("temporary objects remain under %s.tmp/: %v", p, tmp)
		}
	}
}

// withoutSeconds re-encodes a sample.json without its "seconds" field.
func withoutSeconds(t *testing.T, b []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "seconds")
	return testutil.Must(json.Marshal(m))
}
