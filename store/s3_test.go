package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attnscope/attnscope/internal/s3test"
	"github.com/attnscope/attnscope/store"
)

// A captured run pushed to the server and pulled back is the same run; a layer is
// read with ranged requests (far fewer bytes than the sample); pushing again uploads
// nothing; no temporary object remains.
func TestS3RoundTrip(t *testing.T) {
	srv := s3test.StartEnv(t)
	ctx := context.Background()
	local := writeRun(t, t.TempDir(), 3, 6, 40)
	b, err := store.OpenS3(ctx, "s3://runs/exp/one")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CheckWritable(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := b.PushRun(ctx, local)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("nothing pushed")
	}
	if again, err := b.PushRun(ctx, local); err != nil || again != 0 {
		t.Fatalf("second push uploaded %d files (%v)", again, err)
	}
	back := filepath.Join(t.TempDir(), "back")
	if _, err := b.PullRun(ctx, back); err != nil {
		t.Fatal(err)
	}
	assertSameTree(t, local, back)
	r, _ := store.Open(local)
	want, err := r.AttentionLayer("s1", 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ATTNSCOPE_CACHE", t.TempDir())
	rr, err := store.OpenRead(ctx, "s3://runs/exp/one")
	if err != nil {
		t.Fatal(err)
	}
	before := srv.Sent.Load()
	got, err := rr.AttentionLayer("s1", 2)
	if err != nil {
		t.Fatal(err)
	}
	read := srv.Sent.Load() - before
	if fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) || !equalFloats(got.Data, want.Data) {
		t.Fatalf("layer 2 read from S3 differs from the local one")
	}
	st, _ := os.Stat(r.AttentionPath("s1"))
	layerBytes := int64(len(want.Data) * 4)
	if read > layerBytes+4096 || read >= st.Size()/2 {
		t.Errorf("reading one layer (%d bytes) of a %d-byte sample fetched %d bytes", layerBytes, st.Size(), read)
	}
	all, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range all {
		if strings.Contains(k, ".tmp") {
			t.Errorf("temporary object left: %s", k)
		}
	}
}

// A tensor file above the multipart size goes up in parts and comes back whole.
func TestS3MultipartPut(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 40 MB")
	}
	s3test.StartEnv(t)
	ctx := context.Background()
	b, err := store.OpenS3(ctx, "s3://runs/big")
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 40<<20+123)
	rand.Read(data)
	if err := b.PutAtomic(ctx, "samples/x/attention.safetensors", bytes.NewReader(data), int64(len(data)), nil); err != nil {
		t.Fatal(err)
	}
	whole, err := b.ReadFile(ctx, "samples/x/attention.safetensors")
	if err != nil || !bytes.Equal(whole, data) {
		t.Fatalf("whole read: %d bytes of %d, %v", len(whole), len(data), err)
	}
	got, err := b.ReadRange(ctx, "samples/x/attention.safetensors", 17<<20, 1000)
	if err != nil || !bytes.Equal(got, data[17<<20:17<<20+1000]) {
		t.Fatalf("ranged read across parts: %d bytes, %v", len(got), err)
	}
}

// Bad endpoints and credentials fail in one sentence within 10 s and write nothing.
func TestS3Errors(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + l.Addr().String()
	l.Close()
	// A port that accepts connections and never answers.
	hang, _ := net.Listen("tcp", "127.0.0.1:0")
	defer hang.Close()
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	for _, tc := range []struct {
		name, endpoint, key, secret, url, want string
	}{
		{"unreachable", dead, "attnscope", s3test.Secret, "s3://runs/x", "cannot connect to the endpoint"},
		{"silent", "http://" + hang.Addr().String(), "attnscope", s3test.Secret, "s3://runs/x", "did not answer within"},
		{"unknown access key", srv.URL, "intruder", s3test.Secret, "s3://runs/x", "refused the credentials"},
		// The server verifies the SigV4 signature: a known key with a wrong secret.
		{"wrong secret key", srv.URL, s3test.Key, "not-the-secret", "s3://runs/x", "refused the credentials"},
		{"no bucket", srv.URL, "attnscope", s3test.Secret, "s3://nope/x", `bucket "nope" does not exist`},
		{"no prefix", srv.URL, "attnscope", s3test.Secret, "s3://runs", "non-empty prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s3test.EnvSecret(t, tc.endpoint, tc.key, tc.secret)
			start := time.Now()
			_, err := store.OpenS3(ctx, tc.url)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("not one sentence: %q", err)
			}
		})
	}
	// Read-only credentials: the bucket opens, the write probe is refused, nothing is written.
	s3test.Env(t, srv.URL, s3test.ReadOnlyKey)
	b, err := store.OpenS3(ctx, "s3://runs/ro")
	if err != nil {
		t.Fatal(err)
	}
	err = b.CheckWritable(ctx)
	if err == nil || !strings.Contains(err.Error(), "access denied: the credentials may not write objects in bucket \"runs\"") {
		t.Fatalf("read-only write probe: %v", err)
	}
	if _, err := b.PushRun(ctx, writeRun(t, t.TempDir(), 1, 2, 5)); err == nil {
		t.Fatal("a push with read-only credentials succeeded")
	}
	s3test.Env(t, srv.URL, s3test.Key)
	b, _ = store.OpenS3(ctx, "s3://runs/ro")
	if keys, err := b.List(ctx); err != nil || len(keys) != 0 {
		t.Errorf("the refused push left %v (%v)", keys, err)
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func assertSameTree(t *testing.T, a, b string) {
	t.Helper()
	filepath.WalkDir(a, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		x, _ := os.ReadFile(p)
		y, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs after the round trip (%v)", rel, err)
		}
		return nil
	})
}

// writeRun writes a run of samples s0.. with layers attention layers of 4 heads over n
// tokens (rows of a random row-stochastic matrix) into dir/run.
func writeRun(t *testing.T, dir string, samples, layers, n int) string {
	t.Helper()
	p := filepath.Join(dir, "run")
	r, err := store.Create(p, store.Meta{Kind: "capture", DType: "float32", StartTime: time.Unix(0, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	for s := range samples {
		id := fmt.Sprintf("s%d", s)
		w, err := r.NewSample(id, store.SampleOptions{Layers: layers})
		if err != nil {
			t.Fatal(err)
		}
		for l := range layers {
			data := make([]float32, 4*n*n)
			for row := range 4 * n {
				for k := range n {
					data[row*n+k] = 1 / float32(n) * float32(1+(row+k+l+s)%3) / 2
				}
				var sum float32
				for k := range n {
					sum += data[row*n+k]
				}
				for k := range n {
					data[row*n+k] /= sum
				}
			}
			if err := w.Record(store.AttentionName(l), []int{4, n, n}, data); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Commit(&store.Sample{ID: id, Text: id}); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// An object deleted after the run was opened (OpenRead) is an error naming it, in
// one sentence; the other samples still read.
func TestS3ObjectGone(t *testing.T) {
	srv := s3test.StartEnv(t)
	ctx := context.Background()
	local := writeRun(t, t.TempDir(), 2, 2, 8)
	b, err := store.OpenS3(ctx, "s3://runs/gone")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.PushRun(ctx, local); err != nil {
		t.Fatal(err)
	}
	rr, err := store.OpenRead(ctx, "s3://runs/gone")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Delete("gone/samples/s1/attention.safetensors"); err != nil {
		t.Fatal(err)
	}
	_, err = rr.AttentionLayer("s1", 1)
	want := "read s3://runs/gone/samples/s1/attention.safetensors: the object no longer exists (deleted since the run was opened)"
	if err == nil || err.Error() != want {
		t.Fatalf("reading a deleted object: %v, want %q", err, want)
	}
	if _, err := rr.AttentionLayer("s0", 1); err != nil {
		t.Fatalf("the other sample: %v", err)
	}
}

// A writer killed between uploading an object to its temporary key and publishing it
// leaves the temporary object under prefix/.tmp/<writer>/; a later Claim of that
// writer name deletes it and no other writer's. Readers (OpenRead) see the run as
// published: a file in their cache that the bucket does not hold is removed.
func TestS3ClaimAndReadCache(t *testing.T) {
	srv := s3test.StartEnv(t)
	ctx := context.Background()
	// Killed writers: the server refuses their copies and deletes.
	srv.OnRequest(func(r *http.Request) bool {
		return r.Method == http.MethodDelete || r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != ""
	})
	for _, w := range []string{"capture-shard-0-of-2", "capture-shard-1-of-2"} {
		b, err := store.OpenS3(ctx, "s3://runs/k")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Claim(ctx, w); err != nil {
			t.Fatal(err)
		}
		if err := b.PutAtomic(ctx, "samples/a/sample.json", strings.NewReader("{}"), 2, nil); err == nil {
			t.Fatalf("%s: the refused copy succeeded", w)
		}
	}
	srv.OnRequest(nil)
	keys, err := srv.Keys("k/")
	if err != nil || len(keys) != 2 || !strings.HasPrefix(keys[0], "k/.tmp/capture-shard-0-of-2/") || !strings.HasPrefix(keys[1], "k/.tmp/capture-shard-1-of-2/") {
		t.Fatalf("keys after the killed writes: %v (%v); want one temporary object per writer", keys, err)
	}
	b, err := store.OpenS3(ctx, "s3://runs/k")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := b.Claim(ctx, "capture-shard-1-of-2"); n != 1 || err != nil {
		t.Fatalf("Claim deleted %d objects (%v); want 1", n, err)
	}
	if keys, _ := srv.Keys("k/"); len(keys) != 1 || !strings.HasPrefix(keys[0], "k/.tmp/capture-shard-0-of-2/") {
		t.Fatalf("after claiming shard 1: %v; want shard 0's temporary object only", keys)
	}
	if _, err := b.Claim(ctx, "a/b"); err == nil {
		t.Error("Claim accepted a writer name with a slash")
	}

	local := writeRun(t, t.TempDir(), 2, 6, 40)
	if _, err := b.PushRun(ctx, local); err != nil {
		t.Fatal(err)
	}
	r, err := store.OpenRead(ctx, "s3://runs/k")
	if err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(r.Dir(), store.SamplesDir, "zz", store.SampleFile)
	os.MkdirAll(filepath.Dir(stray), 0o755)
	if err := os.WriteFile(stray, []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err = store.OpenRead(ctx, "s3://runs/k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Errorf("the reader's cache keeps a sample the bucket does not hold (%v)", err)
	}
	ids, err := r.Samples()
	if err != nil || len(ids) != 2 {
		t.Errorf("samples read: %v (%v); want the 2 published", ids, err)
	}
}
