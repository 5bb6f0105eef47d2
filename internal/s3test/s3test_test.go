package s3test

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

// Verify accepts a request signed (by minio-go's signer) with the right secret, and
// refuses it with a wrong secret, an unknown key, or once a signed part of the request
// (path, query, a signed header) was changed after signing.
func TestVerify(t *testing.T) {
	secrets := map[string]string{Key: Secret}
	sign := func(key, secret string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:9000/runs/a/run.json?versionId=1", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		r.Header.Set("Range", "bytes=0-7")
		return signer.SignV4(*r, key, secret, "", "us-east-1")
	}
	if key, code := Verify(sign(Key, Secret), secrets); key != Key || code != "" {
		t.Fatalf("a rightly signed request: key %q, code %q", key, code)
	}
	for name, tc := range map[string]struct {
		r    *http.Request
		want string
	}{
		"wrong secret": {sign(Key, "wrong"), "SignatureDoesNotMatch"},
		"unknown key":  {sign("intruder", Secret), "InvalidAccessKeyId"},
		"unsigned":     {func() *http.Request { r := sign(Key, Secret); r.Header.Del("Authorization"); return r }(), "AccessDenied"},
		"other path":   {func() *http.Request { r := sign(Key, Secret); r.URL.Path = "/runs/b/run.json"; return r }(), "SignatureDoesNotMatch"},
		"other query":  {func() *http.Request { r := sign(Key, Secret); r.URL.RawQuery = "versionId=2"; return r }(), "SignatureDoesNotMatch"},
		"other range":  {func() *http.Request { r := sign(Key, Secret); r.Header.Set("Range", "bytes=0-99"); return r }(), "SignatureDoesNotMatch"},
		"other date": {func() *http.Request {
			r := sign(Key, Secret)
			r.Header.Set("X-Amz-Date", time.Now().UTC().Add(time.Second).Format("20060102T150405Z"))
			return r
		}(), "SignatureDoesNotMatch"},
	} {
		if _, code := Verify(tc.r, secrets); code != tc.want {
			t.Errorf("%s: code %q, want %q", name, code, tc.want)
		}
	}
	if !strings.Contains(sign(Key, Secret).Header.Get("Authorization"), "SignedHeaders=") {
		t.Fatal("the signer set no SigV4 header")
	}
}

// StartEnv points the AWS variables at its server with the read-write key and a fresh
// run cache; the server answers requests signed with that key.
func TestStartEnv(t *testing.T) {
	srv := StartEnv(t)
	for name, want := range map[string]string{"AWS_ENDPOINT_URL": srv.URL, "AWS_ACCESS_KEY_ID": Key, "AWS_SECRET_ACCESS_KEY": Secret} {
		if got := os.Getenv(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if fi, err := os.Stat(os.Getenv("ATTNSCOPE_CACHE")); err != nil || !fi.IsDir() {
		t.Errorf("ATTNSCOPE_CACHE %q is not a folder (%v)", os.Getenv("ATTNSCOPE_CACHE"), err)
	}
	r, err := http.NewRequest(http.MethodGet, srv.URL+"/"+Bucket+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	resp, err := http.DefaultClient.Do(signer.SignV4(*r, os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), "", "us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || srv.Requests.Load() != 1 {
		t.Errorf("listing the bucket with the environment's key: %s, %d requests served", resp.Status, srv.Requests.Load())
	}
}
