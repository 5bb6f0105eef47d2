package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attnscope/attnscope/internal/s3test"
	"github.com/attnscope/attnscope/internal/testutil"
	"github.com/attnscope/attnscope/jobs"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/web"
)

func sumPrompts(t testing.TB, n int) string {
	dir := filepath.Join(t.TempDir(), "sums")
	os.MkdirAll(dir, 0o755)
	for i := range n {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("s%03d.txt", i)), []byte(fmt.Sprintf("%d+%d=", 7*i, 13*i+5)), 0o644)
	}
	return dir
}

// defaultModel is the bundled model the S3 tests capture.
var defaultModel = filepath.Join("..", "..", "models", "default")

// entropyRollout and entropyOnly are derive configurations of the S3 tests.
const (
	entropyRollout = "passes:\n  - name: entropy\n    input: attention\n    function: attention_entropy\n  - name: rollout\n    input: attention\n    function: compute_attention_rollout\n"
	entropyOnly    = "passes:\n  - name: entropy\n    input: attention\n    function: attention_entropy\n"
)

// localRun captures prompts with the default model (and the capture flags extra) into
// a local run folder named name and derives the configuration passes (YAML) there; it
// returns the folder and the configuration's file: the single-machine run an S3 test
// compares with.
func localRun(t *testing.T, name, prompts, passes string, extra ...string) (local, cfg string) {
	t.Helper()
	local = filepath.Join(t.TempDir(), name)
	cfg = writeFile(t, filepath.Join(t.TempDir(), "d.yaml"), passes)
	for _, args := range [][]string{
		append([]string{"capture", "--model", defaultModel, "--prompts", prompts, "--out", local}, extra...),
		{"derive", "--config", cfg, local},
	} {
		if got := run(args); got != exitOK {
			t.Fatalf("%v: exit %d", args, got)
		}
	}
	return local, cfg
}

// capture, derive and merge write run folders at s3://bucket/prefix on a real S3
// server (internal/s3test): a 2-shard capture + derive merged in the bucket is the
// local single-machine run; report reads the merged run from the bucket.
func TestS3CaptureDeriveMerge(t *testing.T) {
	if testing.Short() {
		t.Skip("captures runs")
	}
	srv := s3test.StartEnv(t)
	model := defaultModel
	prompts := sumPrompts(t, 8)
	local, cfg := localRun(t, "local", prompts, entropyRollout)
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
	// A wrong secret key (the server verifies SigV4 signatures): refused within 10 s,
	// nothing written.
	s3test.EnvSecret(t, srv.URL, s3test.Key, "not-the-secret")
	start := time.Now()
	if got := run([]string{"capture", "--model", model, "--prompts", prompts, "--out", "s3://runs/badsecret"}); got != exitError {
		t.Errorf("capture with a wrong secret key: exit %d", got)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("capture with a wrong secret key took %v", d)
	}
	s3test.Env(t, srv.URL, s3test.Key)
	for _, p := range []string{"s3://runs/ro", "s3://runs/badsecret"} {
		b, _ := store.OpenS3(context.Background(), p)
		if keys, _ := b.List(context.Background()); len(keys) != 0 {
			t.Errorf("a refused capture wrote %v into %s", keys, p)
		}
	}
}

// Capture + derive of 100 samples of the default model into a local folder and into
// the local S3 server (not a test: go test ./cmd/attnscope -run '^$' -bench CaptureDerive100 -benchtime 3x).
func BenchmarkCaptureDerive100(b *testing.B) {
	s3test.StartEnv(b)
	model := defaultModel
	prompts := sumPrompts(b, 100)
	cfg := writeFile(b, filepath.Join(b.TempDir(), "d.yaml"), entropyRollout)
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

// serve on an S3 run stages it without its attention files and reads a tile's layer
// with ranged requests: the tile equals the local run's, and the server sends the
// safetensors header and one layer's bytes for it, not the sample.
func TestS3ServeRangedTiles(t *testing.T) {
	srv := s3test.StartEnv(t)
	ctx := context.Background()
	prompts := filepath.Join(t.TempDir(), "p")
	os.MkdirAll(prompts, 0o755)
	for i, p := range []string{"1234567+7654321=8888888; 2222+3333=5555; 12+34=", "98+76=174; 5+5=10; 123+456=579; 11+22="} {
		os.WriteFile(filepath.Join(prompts, fmt.Sprintf("p%d.txt", i)), []byte(p), 0o644)
	}
	local, _ := localRun(t, "sums", prompts, entropyOnly)
	b, err := store.OpenS3(ctx, "s3://runs/sums")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.PushRun(ctx, local); err != nil {
		t.Fatal(err)
	}
	rrun, err := store.OpenRead(ctx, "s3://runs/sums")
	if err != nil {
		t.Fatal(err)
	}
	dir := rrun.Dir()
	for _, f := range []string{filepath.Join("samples", "p0.txt", store.AttentionFile), filepath.Join("derived", "entropy", "p0.txt.npy")} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Fatalf("the staged run holds %s (%v)", f, err)
		}
	}
	servers := map[string]*httptest.Server{}
	for name, r := range map[string]*store.Run{"local": testutil.Must(store.Open(local)), "s3": rrun} {
		w, err := web.NewRuns([]*store.Run{r}, web.Options{})
		if err != nil {
			t.Fatal(err)
		}
		servers[name] = httptest.NewServer(w)
		defer w.Close() // after the HTTP server (deferred next): waits for the tile cache writes
		defer servers[name].Close()
	}
	att, _ := os.ReadFile(filepath.Join(local, "samples", "p0.txt", store.AttentionFile))
	hlen := int64(binary.LittleEndian.Uint64(att[:8]))
	r := testutil.Must(store.Open(local))
	sample := testutil.Must(r.Sample("p0.txt"))
	n := len(sample.Tokens)
	layerBytes := int64(4 * 4 * n * n) // 4 heads of float32
	for _, url := range []string{"/api/runs/sums/samples/p0.txt/tile/1/2/max/0/0/0", "/api/runs/sums/samples/p0.txt/tile/1/3/mean/0/0/0"} {
		want := testutil.Get(t, servers["local"].URL+url)
		before := srv.Sent.Load()
		got := testutil.Get(t, servers["s3"].URL+url)
		sent := srv.Sent.Load() - before
		if !bytes.Equal(got, want) {
			t.Fatalf("GET %s: the S3 run's tile differs from the local run's", url)
		}
		if limit := 8 + hlen + layerBytes; sent > limit || sent >= int64(len(att)) {
			t.Errorf("GET %s: the S3 server sent %d bytes; the header and one layer are %d, the file %d", url, sent, limit, len(att))
		}
		t.Logf("GET %s: %d bytes from S3 (attention file %d bytes)", url, sent, len(att))
	}
	// Derived outputs are fetched when asked: the sample's, not the other sample's.
	for _, url := range []string{"/api/runs/sums/samples/p0.txt", "/api/runs/sums/derived/entropy/p0.txt"} {
		if got, want := testutil.Get(t, servers["s3"].URL+url), testutil.Get(t, servers["local"].URL+url); !bytes.Equal(got, want) {
			t.Errorf("GET %s: the S3 run's answer differs from the local run's", url)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "derived", "entropy", "p0.txt.npy")); err != nil {
		t.Errorf("the asked derived output was not fetched: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "derived", "entropy", "p1.txt.npy")); !os.IsNotExist(err) {
		t.Errorf("a derived output nobody asked for was fetched (%v)", err)
	}
}

// objectBytes sums the sizes of the files of the local run folder dir whose
// run-relative slash path keep accepts.
func objectBytes(t *testing.T, dir string, keep func(rel string) bool) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if keep(filepath.ToSlash(rel)) {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// report on an S3 run reads only what its figures draw: the run's small files, then
// of the samples drawn their attention layers, hidden states and derived outputs,
// with ranged requests. The report equals the local run's (the run's name aside),
// and the S3 server sends no more than those bytes: with --max-samples 1 one
// sample's tensors of eight, with --figures heatmap one layer of that sample.
func TestS3ReportReadsWhatItDraws(t *testing.T) {
	srv := s3test.StartEnv(t)
	ctx := context.Background()
	prompts := filepath.Join(t.TempDir(), "p")
	os.MkdirAll(prompts, 0o755)
	for i := range 8 {
		os.WriteFile(filepath.Join(prompts, fmt.Sprintf("p%d.txt", i)), []byte(fmt.Sprintf("%d+%d=%d; 123+456=579; 98+76=174; 5+5=10; 11+22=", 100*i+7, 13*i+5, 113*i+12)), 0o644)
	}
	local, _ := localRun(t, "sums", prompts, entropyOnly, "--hidden")
	if _, err := testutil.Must(store.OpenS3(ctx, "s3://runs/sums")).PushRun(ctx, local); err != nil {
		t.Fatal(err)
	}
	// What opening the run costs (listing, small files), in a cache of its own.
	t.Setenv("ATTNSCOPE_CACHE", t.TempDir())
	before := srv.Sent.Load()
	testutil.Must(store.OpenRead(ctx, "s3://runs/sums"))
	staged := srv.Sent.Load() - before
	runBytes := objectBytes(t, local, func(string) bool { return true })
	first := "p0.txt"
	sample0 := objectBytes(t, local, func(rel string) bool {
		return rel == "samples/"+first+"/"+store.AttentionFile || rel == "samples/"+first+"/"+store.HiddenFile || rel == "derived/entropy/"+first+".npy"
	})
	att, _ := os.ReadFile(filepath.Join(local, "samples", first, store.AttentionFile))
	n := len(testutil.Must(testutil.Must(store.Open(local)).Sample(first)).Tokens)
	layer := int64(4 * 4 * n * n) // 4 heads of float32
	for _, c := range []struct {
		name  string
		args  []string
		limit int64 // bytes past opening the run
	}{
		{"one sample", []string{"--max-samples", "1"}, sample0},
		{"heatmap", []string{"--max-samples", "1", "--figures", "heatmap"}, 8 + int64(binary.LittleEndian.Uint64(att[:8])) + layer},
	} {
		t.Run(c.name, func(t *testing.T) {
			want, got := filepath.Join(t.TempDir(), "local.html"), filepath.Join(t.TempDir(), "s3.html")
			if code := run(append([]string{"report", local, "--out", want}, c.args...)); code != exitOK {
				t.Fatalf("report of the local run: exit %d", code)
			}
			t.Setenv("ATTNSCOPE_CACHE", t.TempDir())
			before := srv.Sent.Load()
			if code := run(append([]string{"report", "s3://runs/sums", "--out", got}, c.args...)); code != exitOK {
				t.Fatalf("report of the S3 run: exit %d", code)
			}
			sent := srv.Sent.Load() - before
			w, g := testutil.Must(os.ReadFile(want)), testutil.Must(os.ReadFile(got))
			// The report names the run: its folder, or its s3:// address.
			if !bytes.Equal(bytes.ReplaceAll(g, []byte("s3://runs/sums"), []byte(local)), w) {
				t.Fatalf("the S3 run's report (%d bytes) differs from the local run's (%d bytes)", len(g), len(w))
			}
			if sent-staged > c.limit || sent >= runBytes/2 {
				t.Errorf("the S3 server sent %d bytes: %d to open the run, %d more where the figures draw %d; the run is %d", sent, staged, sent-staged, c.limit, runBytes)
			}
			t.Logf("report %v: %d bytes from S3 (%d to open the run, %d for the figures); the run is %d bytes", c.args, sent, staged, sent-staged, runBytes)
		})
	}
}

// report of an S3 run that cannot be read (an endpoint that refuses connections,
// a prefix without a run) says so in one sentence within 10 s and writes nothing.
func TestS3ReportBadInput(t *testing.T) {
	srv := s3test.Start(t)
	t.Setenv("ATTNSCOPE_CACHE", t.TempDir())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	for _, c := range []struct{ name, endpoint, url, want string }{
		{"unreachable", dead, "s3://runs/sums", "attnscope: s3://runs/sums: cannot connect to the endpoint " + strings.TrimPrefix(dead, "http://")},
		{"no run", srv.URL, "s3://runs/none", "attnscope: s3://runs/none: no run.json: not a run folder"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s3test.Env(t, c.endpoint, s3test.Key)
			out := filepath.Join(t.TempDir(), "r.html")
			start := time.Now()
			code, stderr := runCLI(t, "report", c.url, "--out", out)
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code == exitOK || len(lines) != 1 || !strings.HasPrefix(lines[0], c.want) {
				t.Fatalf("exit %d, stderr %q; want one line starting %q", code, stderr, c.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("%s was written (%v)", out, err)
			}
		})
	}
}
