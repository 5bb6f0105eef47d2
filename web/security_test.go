package web

import (
	"bufio"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const secret = "SECRET-OUTSIDE-THE-RUN"

// hostileRun writes a run "run" with a sample "s" (2 layers, 2 heads, 20 tokens),
// a secret file next to it, and symlinks inside it that lead out: a sample folder,
// an attention file and a derived output.
func hostileRun(t testing.TB) (root, dir string) {
	t.Helper()
	root = t.TempDir()
	dir = filepath.Join(root, "run")
	r := newRun(t, dir)
	writeSample(t, r, "s", fixture{layers: 2, heads: 2, n: 20}, 5)
	outside := filepath.Join(root, "outside")
	o := newRun(t, outside)
	writeSample(t, o, "o", fixture{layers: 1, heads: 1, n: 4}, 6)
	for _, f := range []string{filepath.Join(root, "secret.txt"), filepath.Join(outside, "samples", "o", "secret.npy")} {
		if err := os.WriteFile(f, []byte(secret), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	// A sample folder that is a symlink out of the run.
	must(os.Symlink(filepath.Join(outside, "samples", "o"), filepath.Join(dir, "samples", "linked")))
	// A sample whose attention file is a symlink out of the run.
	must(os.MkdirAll(filepath.Join(dir, "samples", "evil"), 0o755))
	must(os.Symlink(filepath.Join(outside, "samples", "o", "attention.safetensors"), filepath.Join(dir, "samples", "evil", "attention.safetensors")))
	b, err := os.ReadFile(filepath.Join(outside, "samples", "o", "sample.json"))
	must(err)
	must(os.WriteFile(filepath.Join(dir, "samples", "evil", "sample.json"), []byte(strings.Replace(string(b), `"id":"o"`, `"id":"evil"`, 1)), 0o644))
	// A derived output that is a symlink to the secret.
	must(os.MkdirAll(filepath.Join(dir, "derived", "p"), 0o755))
	must(os.Symlink(filepath.Join(root, "secret.txt"), filepath.Join(dir, "derived", "p", "s.npy")))
	return root, dir
}

// TestBadRequests sends malformed and hostile requests over a real connection:
// each must get a 4xx with a JSON error message, none a 5xx, and no answer may
// hold the secret that lies outside the run.
func TestBadRequests(t *testing.T) {
	_, dir := hostileRun(t)
	base, _ := startServer(t, dir)
	cases := []struct {
		path string
		code int
	}{
		{"/api/runs/nope/samples/s", 404},
		{"/api/runs/run/samples/nope", 404},
		{"/api/runs/run/samples/s/tile/9/0/max/0/0/0", 404},
		{"/api/runs/run/samples/s/tile/0/9/max/0/0/0", 404},
		{"/api/runs/run/samples/s/tile/0/0/max/5/0/0", 404},
		{"/api/runs/run/samples/s/tile/0/0/max/0/1/0", 404},
		{"/api/runs/run/samples/s/tile/0/0/max/0/0/-1", 400},
		{"/api/runs/run/samples/s/tile/0/0/max/0/0/1e3", 400},
		{"/api/runs/run/samples/s/tile/0/0/max/0/0/01", 400},
		{"/api/runs/run/samples/s/tile/0/0/max/0/0/+1", 400},
		{"/api/runs/run/samples/s/tile/0/0/max/0/0/99999999999999999999", 400},
		{"/api/runs/run/samples/s/tile/0/0/median/0/0/0", 400},
		{"/api/runs/run/samples/s/tile/0/0/max/0/0", 400},
		{"/api/runs/run/samples/s/tile/0/0/max/0/0/0/0", 400},
		{"/api/runs/run/samples/s/tile/x/0/max/0/0/0", 400},
		{"/api/runs/run/samples/s/layer/7", 404},
		{"/api/runs/run/samples/s/neuron/0/0/3", 404}, // no qkv captured
		{"/api/runs/run/samples/s/neuron/0/0/99", 404},
		{"/api/runs/run/samples/s/code/0", 404}, // no text
		{"/api/runs/run/samples/s/thumbs/0/avg", 400},
		{"/api/runs/run/samples/s/nothing", 404},
		{"/api/runs/run/samples/..", 400},
		{"/api/runs/run/samples/%2e%2e", 400},
		{"/api/runs/run/samples/%2E%2E/%2E%2E/secret.txt", 400},
		{"/api/runs/run/samples/..%2f..%2fsecret.txt", 400},
		{"/api/runs/run/samples/..%5c..%5csecret.txt", 400},
		{"/api/runs/run/samples/%252e%252e", 400},
		{"/api/runs/run/samples/s%00", 400},
		{"/api/runs/run/samples/.hidden", 400},
		{"/api/runs/run/samples//etc/passwd", 400},
		{"/api/runs/run/derived/p/..%2f..%2fsecret", 400},
		{"/api/runs/run/derived/..%2F..%2F/s", 400},
		{"/api/runs/run/derived/p/s", 403}, // symlink to the secret
		{"/api/runs/run/samples/linked", 404},
		{"/api/runs/run/samples/linked/tile/0/0/max/0/0/0", 404},
		{"/api/runs/run/samples/evil/tile/0/0/max/0/0/0", 403},
		{"/api/runs/run/metrics", 404},
		{"/api/runs/run/samples/s/dtile/p/0/max/0/0/0", 403}, // symlink to the secret
		{"/api/runs/run/samples/s/dpyramid/p/0", 403},
		{"/api/runs/run/samples/s/dtile/nope/0/max/0/0/0", 404},
		{"/api/runs/run/samples/s/dtile/p/x/max/0/0/0", 400},
		{"/api/runs/run/samples/s/dtile/p/0/max/0/0", 400},
		{"/api/runs/run/samples/s/dpyramid/..%2f..%2fsecret/0", 400},
		{"/api/runs/run/samples/s/dpyramid/.x/0", 400},
		{"/static/../../secret.txt", 400},
		{"/static/%2e%2e%2fsecret.txt", 400},
		{"/static/app.js/x", 404},
		{"/static/nope.js", 404},
		{"/etc/passwd", 404},
		{"/api/runs/run/samples/s?" + strings.Repeat("x", 600), 400},
		{"/api/" + strings.Repeat("a/", 20), 400},
	}
	for _, c := range cases {
		resp, body := rawGet(t, base, "GET", c.path)
		if resp.StatusCode != c.code {
			t.Errorf("GET %s: %d %s, want %d", c.path, resp.StatusCode, body, c.code)
		}
		checkRefusal(t, c.path, resp, body)
	}
	// DNS rebinding: a Host that is not the server's address.
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "GET /api/runs HTTP/1.1\r\nHost: evil.example:8080\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	conn.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("Host evil.example: %d %s, want 421", resp.StatusCode, b)
	}
	checkRefusal(t, "Host evil.example", resp, string(b))
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		resp, body := rawGet(t, base, m, "/api/runs")
		if resp.StatusCode != 405 {
			t.Errorf("%s /api/runs: %d, want 405", m, resp.StatusCode)
		}
		checkRefusal(t, m, resp, body)
	}
	// The good requests still work.
	for _, p := range []string{"/", "/static/app.js", "/api/runs", "/api/runs/run/samples/s", "/api/runs/run/samples/s/tile/0/1/mean/0/0/0"} {
		resp, body := rawGet(t, base, "GET", p)
		if resp.StatusCode != 200 || strings.Contains(body, secret) {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("GET %s: CSP %q", p, csp)
		}
	}
	// The run lists no sample that leads outside it.
	resp, b = rawGet2(t, base, "/api/runs")
	if strings.Contains(string(b), `"linked"`) || resp.StatusCode != 200 {
		t.Errorf("/api/runs lists the symlinked sample: %s", b)
	}
}

func rawGet2(t testing.TB, base, path string) (*http.Response, []byte) {
	resp, body := rawGet(t, base, "GET", path)
	return resp, []byte(body)
}

// rawGet sends the request line as written (no client-side cleaning of the path).
func rawGet(t testing.TB, base, method, path string) (*http.Response, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(conn, method+" "+path+" HTTP/1.1\r\nHost: "+strings.TrimPrefix(base, "http://")+"\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func checkRefusal(t testing.TB, what string, resp *http.Response, body string) {
	t.Helper()
	if resp.StatusCode >= 500 {
		t.Errorf("%s: server error %d %s", what, resp.StatusCode, body)
	}
	if strings.Contains(body, secret) {
		t.Errorf("%s: answer holds the file outside the run", what)
	}
	if resp.StatusCode >= 400 {
		var e struct{ Error string }
		if err := json.Unmarshal([]byte(body), &e); err != nil || len(e.Error) < 10 {
			t.Errorf("%s: %d without a clear message: %q", what, resp.StatusCode, body)
		}
	}
}

// FuzzRouter sends arbitrary paths and queries to the router: no answer may be a
// 5xx or hold the secret outside the run, and nothing may panic.
func FuzzRouter(f *testing.F) {
	for _, s := range []string{"/", "/api/runs", "/api/runs/run/samples/s/tile/0/0/max/0/0/0", "/api/runs/run/samples/%2e%2e/x",
		"/static/app.js", "/api/runs/run/derived/p/s", "/api/runs/run/samples/s/code/0?from=3&head=1", "/api/runs/run/samples/evil/layer/0",
		"/api/runs/run/samples/s/neuron/1/1/1", "/api/runs/run/samples/linked/thumbs/0/max", "/api/runs/run/samples/s/pyramid/1/1",
		"/api/runs/run/samples/s/dtile/p/0/mean/0/0/0", "/api/runs/run/samples/evil/dpyramid/p/0"} {
		f.Add(s)
	}
	_, dir := hostileRun(f)
	s, err := New([]string{dir}, Options{Log: log.New(io.Discard, "", 0)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || len(target) > 4096 {
			return
		}
		req := &http.Request{Method: "GET", URL: u, RequestURI: target, Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Host: "127.0.0.1:8080"}
		req = req.WithContext(t.Context())
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("GET %q: %d %s", target, w.Code, w.Body.String())
		}
		if strings.Contains(w.Body.String(), secret) {
			t.Fatalf("GET %q: answer holds the file outside the run", target)
		}
	})
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "localhost:1": true, "[::1]:80": true,
		"0.0.0.0:8080": false, ":8080": false, "192.168.1.2:80": false, "nonsense": false} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
}

// TestCacheNotWrittenThroughSymlink: when RUN/cache is a symlink out of the run,
// tiles are still served (from memory) and nothing is written outside.
func TestCacheNotWrittenThroughSymlink(t *testing.T) {
	root, dir := hostileRun(t)
	elsewhere := filepath.Join(root, "elsewhere")
	if err := os.Mkdir(elsewhere, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(dir, "cache")); err != nil {
		t.Fatal(err)
	}
	base, _ := startServer(t, dir)
	resp, body := rawGet(t, base, "GET", "/api/runs/run/samples/s/tile/1/1/mean/0/0/0")
	if resp.StatusCode != 200 {
		t.Fatalf("tile: %d %s", resp.StatusCode, body)
	}
	if got := snapshot(t, elsewhere); len(got) != 0 {
		t.Errorf("cache written through the symlink: %v", got)
	}
}
