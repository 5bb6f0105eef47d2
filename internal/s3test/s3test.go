// Package s3test serves an S3-compatible object store for tests: gofakes3 (an S3
// implementation in Go, in-memory backend) over real HTTP on a local port.
//
// gofakes3 checks no identity, so a gate in front of it does what S3 does: it verifies
// each request's AWS Signature Version 4 (the Authorization header) by signing the
// request again with the key's secret using the AWS SDK for Go v2's signer
// (github.com/aws/aws-sdk-go-v2/aws/signer/v4, an implementation independent of the
// minio-go client that attnscope uses) and comparing the signatures. An unknown access
// key is answered 403 InvalidAccessKeyId, a wrong signature (a wrong secret key) 403
// SignatureDoesNotMatch, as S3 answers. The key ReadOnlyKey may only GET and HEAD
// (otherwise 403 AccessDenied). The seed signature of streaming uploads
// (aws-chunked) is verified; the chunk signatures are not. The server counts the
// requests it serves and the response bytes it sends.
package s3test

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Access keys the gate accepts, their secret, and the bucket created at start.
const (
	Key         = "attnscope"
	ReadOnlyKey = "reader"
	Secret      = "secret" // the secret key of both access keys
	Bucket      = "runs"
)

// Server is a running S3 server.
type Server struct {
	URL      string       // http://127.0.0.1:port
	Sent     atomic.Int64 // response bytes sent (bodies of answered requests)
	Requests atomic.Int64 // requests passed to the store
	backend  *s3mem.Backend
	hook     atomic.Pointer[func(*http.Request) bool]
}

// OnRequest calls f with each request that passed the signature check before the
// store serves it; when f returns true the request is not served (503 SlowDown).
// A test can stop a client process at an exact request this way.
func (s *Server) OnRequest(f func(r *http.Request) (refuse bool)) { s.hook.Store(&f) }

// Keys lists the keys of bucket Bucket under prefix, the temporary ones included.
func (s *Server) Keys(prefix string) ([]string, error) {
	p := gofakes3.NewPrefix(&prefix, nil)
	l, err := s.backend.ListBucket(Bucket, &p, gofakes3.ListBucketPage{})
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(l.Contents))
	for _, c := range l.Contents {
		keys = append(keys, c.Key)
	}
	return keys, nil
}

// Delete removes the object key of bucket Bucket behind the clients' backs (an
// object deleted by someone else while a run is read).
func (s *Server) Delete(key string) error {
	_, err := s.backend.DeleteObject(Bucket, key)
	return err
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
	s := &Server{backend: backend}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deny := func(code string) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>denied</Message><Resource>%s</Resource><RequestId>1</RequestId></Error>`, code, r.URL.Path)
		}
		key, code := Verify(r, map[string]string{Key: Secret, ReadOnlyKey: Secret})
		switch {
		case code != "":
			deny(code)
		case key == ReadOnlyKey && r.Method != http.MethodGet && r.Method != http.MethodHead:
			deny("AccessDenied")
		case s.refuse(r):
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>refused by the test</Message><Resource>%s</Resource><RequestId>1</RequestId></Error>`, r.URL.Path)
		default:
			s.Requests.Add(1)
			fake.ServeHTTP(counting{w, &s.Sent}, r)
		}
	}))
	tb.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// StartEnv is the usual setup of a test: Start, then Env with the read-write key Key
// (the AWS variables point at the new server; the run cache is a fresh folder).
func StartEnv(tb testing.TB) *Server {
	tb.Helper()
	s := Start(tb)
	Env(tb, s.URL, Key)
	return s
}

func (s *Server) refuse(r *http.Request) bool {
	f := s.hook.Load()
	return f != nil && *f != nil && (*f)(r)
}

// Verify checks the SigV4 Authorization header of r against the secrets of the
// access keys in secrets. It returns the access key, and "" when the signature is
// right or the S3 error code (InvalidAccessKeyId, SignatureDoesNotMatch,
// AccessDenied for an unsigned or malformed request) when it is not.
func Verify(r *http.Request, secrets map[string]string) (key, code string) {
	const algo = "AWS4-HMAC-SHA256 "
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, algo) {
		return "", "AccessDenied"
	}
	fields := map[string]string{}
	for _, f := range strings.Split(strings.TrimPrefix(auth, algo), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/") // key/date/region/service/aws4_request
	if len(scope) != 5 || fields["Signature"] == "" || fields["SignedHeaders"] == "" {
		return "", "AccessDenied"
	}
	key = scope[0]
	secret, ok := secrets[key]
	if !ok {
		return key, "InvalidAccessKeyId"
	}
	t, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || t.Format("20060102") != scope[1] {
		return key, "AccessDenied"
	}
	// The request as the client signed it: its method, path and query, and only the
	// headers it names as signed.
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	re, err := http.NewRequest(r.Method, u.String(), nil)
	if err != nil {
		return key, "AccessDenied"
	}
	re.Host = r.Host
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		switch h {
		case "host":
		case "content-length":
			re.ContentLength = r.ContentLength
		default:
			re.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	creds := aws.Credentials{AccessKeyID: key, SecretAccessKey: secret, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	err = v4.NewSigner().SignHTTP(context.Background(), creds, re, r.Header.Get("X-Amz-Content-Sha256"), scope[3], scope[2], t,
		func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err != nil {
		return key, "AccessDenied"
	}
	_, want, _ := strings.Cut(re.Header.Get("Authorization"), "Signature=")
	if subtle.ConstantTimeCompare([]byte(want), []byte(fields["Signature"])) != 1 {
		return key, "SignatureDoesNotMatch"
	}
	return key, ""
}

// Env points the standard AWS variables at endpoint with access key key and the
// right secret (and makes the shared credentials file absent).
func Env(tb testing.TB, endpoint, key string) { EnvSecret(tb, endpoint, key, Secret) }

// EnvSecret is Env with the secret key secret.
func EnvSecret(tb testing.TB, endpoint, key, secret string) {
	tb.Setenv("AWS_ENDPOINT_URL", endpoint)
	tb.Setenv("AWS_ENDPOINT_URL_S3", "")
	tb.Setenv("AWS_ACCESS_KEY_ID", key)
	tb.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	tb.Setenv("AWS_SESSION_TOKEN", "")
	tb.Setenv("AWS_REGION", "us-east-1")
	tb.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/attnscope-test-credentials")
	tb.Setenv("ATTNSCOPE_CACHE", tb.TempDir())
}
