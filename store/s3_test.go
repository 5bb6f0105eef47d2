package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/attnscope/attnscope/store"
)

// s3Server is gofakes3 (an S3 implementation in Go) served over real HTTP on a local
// port, behind a small gate standing in for the server's identity checks, which
// gofakes3 lacks: the access key of each request's SigV4 Authorization header must
// be "attnscope" (otherwise 403 InvalidAccessKeyId, as S3 answers), and the key
// "reader" may only read (otherwise 403 AccessDenied). Signatures themselves are not
// verified. It counts the bytes it sends, to check ranged reads.
type s3Server struct {
	url  string
	sent atomic.Int64
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c countingWriter) Write(b []byte) (int, error) {
	c.n.Add(int64(len(b)))
	return c.ResponseWriter.Write(b)
}

func startS3(t *testing.T) *s3Server {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("runs"); err != nil {
		t.Fatal(err)
	}
	fake := gofakes3.New(backend).Server()
	s := &s3Server{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		_, cred, _ := strings.Cut(auth, "Credential=")
		key, _, _ := strings.Cut(cred, "/")
		deny := func(code string) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>denied</Message><Resource>%s</Resource><RequestId>1</RequestId></Error>`, code, r.URL.Path)
		}
		switch {
		case key != "attnscope" && key != "reader":
			deny("InvalidAccessKeyId")
		case key == "reader" && r.Method != http.MethodGet && r.Method != http.MethodHead:
			deny("AccessDenied")
		default:
			fake.ServeHTTP(countingWriter{w, &s.sent}, r)
		}
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func s3Env(t *testing.T, endpoint, key string) {
	t.Setenv("AWS_ENDPOINT_URL", endpoint)
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ACCESS_KEY_ID", key)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
}

// A captured run pushed to the server and pulled back is the same run; a layer is
// read with ranged requests (far fewer bytes than the sample); pushing again uploads
// nothing; no temporary object remains.
func TestS3RoundTrip(t *testing.T) {
	srv := startS3(t)
	s3Env(t, srv.url, "attnscope")
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
	before := srv.sent.Load()
	got, err := b.AttentionLayer(ctx, "s1", 2)
	if err != nil {
		t.Fatal(err)
	}
	read := srv.sent.Load() - before
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
	srv := startS3(t)
	s3Env(t, srv.url, "attnscope")
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
	srv := startS3(t)
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
		name, endpoint, key, url, want string
	}{
		{"unreachable", dead, "attnscope", "s3://runs/x", "cannot connect to the endpoint"},
		{"silent", "http://" + hang.Addr().String(), "attnscope", "s3://runs/x", "did not answer within"},
		{"wrong credentials", srv.url, "intruder", "s3://runs/x", "refused the credentials"},
		{"no bucket", srv.url, "attnscope", "s3://nope/x", `bucket "nope" does not exist`},
		{"no prefix", srv.url, "attnscope", "s3://runs", "non-empty prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s3Env(t, tc.endpoint, tc.key)
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
	s3Env(t, srv.url, "reader")
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
	s3Env(t, srv.url, "attnscope")
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
