// Package s3test serves an S3-compatible object store for tests: gofakes3 (an S3
// implementation in Go, in-memory backend) over real HTTP on a local port.
//
// gofakes3 checks no identity, so a small gate in front of it stands in for the
// server's access control: the access key of each request's SigV4 Authorization
// header must be Key (otherwise 403 InvalidAccessKeyId, as S3 answers) or ReadOnlyKey,
// which may only GET and HEAD (otherwise 403 AccessDenied). Signatures themselves are
// not verified. The server counts the response bytes it sends.
package s3test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Access keys the gate accepts.
const (
	Key         = "attnscope"
	ReadOnlyKey = "reader"
	Bucket      = "runs" // created at start
)

// Server is a running S3 server.
type Server struct {
	URL  string       // http://127.0.0.1:port
	Sent atomic.Int64 // response bytes sent
}

type counting struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c counting) Write(b []byte) (int, error) {
	c.n.Add(int64(len(b)))
	return c.ResponseWriter.Write(b)
}

// Start serves a new store holding the empty bucket Bucket until the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(Bucket); err != nil {
		tb.Fatal(err)
	}
	fake := gofakes3.New(backend).Server()
	s := &Server{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, cred, _ := strings.Cut(r.Header.Get("Authorization"), "Credential=")
		key, _, _ := strings.Cut(cred, "/")
		deny := func(code string) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>denied</Message><Resource>%s</Resource><RequestId>1</RequestId></Error>`, code, r.URL.Path)
		}
		switch {
		case key != Key && key != ReadOnlyKey:
			deny("InvalidAccessKeyId")
		case key == ReadOnlyKey && r.Method != http.MethodGet && r.Method != http.MethodHead:
			deny("AccessDenied")
		default:
			fake.ServeHTTP(counting{w, &s.Sent}, r)
		}
	}))
	tb.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Env points the standard AWS variables at endpoint with access key key (and makes
// the shared credentials file absent).
func Env(tb testing.TB, endpoint, key string) {
	tb.Setenv("AWS_ENDPOINT_URL", endpoint)
	tb.Setenv("AWS_ENDPOINT_URL_S3", "")
	tb.Setenv("AWS_ACCESS_KEY_ID", key)
	tb.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	tb.Setenv("AWS_SESSION_TOKEN", "")
	tb.Setenv("AWS_REGION", "us-east-1")
	tb.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/attnscope-test-credentials")
	tb.Setenv("ATTNSCOPE_CACHE", tb.TempDir())
}
