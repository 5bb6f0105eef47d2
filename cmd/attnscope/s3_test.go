package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/attnscope/attnscope/internal/s3test"
	"github.com/attnscope/attnscope/jobs"
	"github.com/attnscope/attnscope/store"
)

func sumPrompts(t testing.TB, n int) string {
	dir := filepath.Join(t.TempDir(), "sums")
	os.MkdirAll(dir, 0o755)
	for i := range n {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("s%03d.txt", i)), []byte(fmt.Sprintf("%d+%d=", 7*i, 13*i+5)), 0o644)
	}
	return dir
}

// capture, derive and merge write run folders at s3://bucket/prefix on a real S3
// server (internal/s3test): a 2-shard capture + derive merged in the bucket is the
// local single-machine run; report reads the merged run from the bucket.
func TestS3CaptureDeriveMerge(t *testing.T) {
	if testing.Short() {
		t.Skip("captures runs")
	}
	srv := s3test.Start(t)
	s3test.Env(t, srv.URL, s3test.Key)
	model := filepath.Join("..", "..", "models", "default")
	prompts := sumPrompts(t, 8)
	cfg := writeFile(t, filepath.Join(t.TempDir(), "d.yaml"), "passes:\n  - name: entropy\n    input: attention\n    function: attention_entropy\n  - name: rollout\n    input: attention\n    function: compute_attention_rollout\n")
	local := filepath.Join(t.TempDir(), "local")
	for _, args := range [][]string{
		{"capture", "--model", model, "--prompts", prompts, "--out", local},
		{"derive", "--config", cfg, local},
	} {
		if got := run(args); got != exitOK {
			t.Fatalf("%v: exit %d", args, got)
		}
	}
	var shards []string
	for i := range 2 {
		u := fmt.Sprintf("s3://runs/sums.shard-%d", i)
		sh := fmt.Sprintf("%d/2", i)
		for _, args := range [][]string{
			{"capture", "--model", model, "--prompts", prompts, "--out", u, "--shard", sh},
			{"derive", "--config", cfg, u, "--shard", sh},
		} {
			if got := run(args); got != exitOK {
				t.Fatalf("%v: exit %d", args, got)
			}
		}
		shards = append(shards, u)
	}
	for range 2 { // idempotent
		if got := run(append([]string{"merge", "--out", "s3://runs/sums"}, shards...)); got != exitOK {
			t.Fatalf("merge: exit %d", got)
		}
	}
	b, err := store.OpenS3(context.Background(), "s3://runs/sums")
	if err != nil {
		t.Fatal(err)
	}
	back := filepath.Join(t.TempDir(), "back")
	if _, err := b.PullRun(context.Background(), back); err != nil {
		t.Fatal(err)
	}
	if err := jobs.SameRun(local, back); err != nil {
		t.Fatal(err)
	}
	html := filepath.Join(t.TempDir(), "r.html")
	if got := run([]string{"report", "s3://runs/sums", "--out", html}); got != exitOK {
		t.Fatalf("report from S3: exit %d", got)
	}
	if got := run([]string{"report", "s3://runs/sums"}); got != exitUsage {
		t.Errorf("report from S3 without --out: exit %d", got)
	}
	// A read-only key cannot capture: refused before anything is written.
	s3test.Env(t, srv.URL, s3test.ReadOnlyKey)
	if got := run([]string{"capture", "--model", model, "--prompts", prompts, "--out", "s3://runs/ro"}); got != exitError {
		t.Errorf("capture with a read-only key: exit %d", got)
	}
	s3test.Env(t, srv.URL, s3test.Key)
	ro, _ := store.OpenS3(context.Background(), "s3://runs/ro")
	if keys, _ := ro.List(context.Background()); len(keys) != 0 {
		t.Errorf("a refused capture wrote %v", keys)
	}
}

// Capture + derive of 100 samples of the default model into a local folder and into
// the local S3 server (not a test: go test ./cmd/attnscope -run '^$' -bench CaptureDerive100 -benchtime 3x).
func BenchmarkCaptureDerive100(b *testing.B) {
	srv := s3test.Start(b)
	s3test.Env(b, srv.URL, s3test.Key)
	model := filepath.Join("..", "..", "models", "default")
	prompts := sumPrompts(b, 100)
	cfg := writeFile(b, filepath.Join(b.TempDir(), "d.yaml"), "passes:\n  - name: entropy\n    input: attention\n    function: attention_entropy\n  - name: rollout\n    input: attention\n    function: compute_attention_rollout\n")
	round := 0
	for _, where := range []string{"local", "s3"} {
		b.Run(where, func(b *testing.B) {
			for range b.N {
				round++
				out := filepath.Join(b.TempDir(), "run")
				if where == "s3" {
					out = fmt.Sprintf("s3://runs/bench-%d", round)
					b.Setenv("ATTNSCOPE_CACHE", b.TempDir())
				}
				if run([]string{"capture", "--model", model, "--prompts", prompts, "--out", out}) != exitOK ||
					run([]string{"derive", "--config", cfg, "--workers", "1", out}) != exitOK {
					b.Fatal("capture or derive failed")
				}
			}
			b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
