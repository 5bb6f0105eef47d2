package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to read while the command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeCommand starts attnscope serve on a free loopback port, reads the
// printed address, fetches the page and a sample, and stops it by cancelling
// its context; a non-loopback --addr warns.
func TestServeCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	syntheticRun(t, dir, 1)
	for _, tc := range []struct {
		addr string
		warn bool
	}{{"127.0.0.1:0", false}, {"0.0.0.0:0", true}} {
		ctx, cancel := context.WithCancel(context.Background())
		root := newRootCmd()
		var out, errb syncBuffer
		root.SetOut(&out)
		root.SetErr(&errb)
		root.SetArgs([]string{"serve", dir, "--addr", tc.addr})
		done := make(chan error, 1)
		go func() { done <- root.ExecuteContext(ctx) }()
		re := regexp.MustCompile(`http://(\S+)/ `)
		var base string
		for deadline := time.Now().Add(20 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if m := re.FindStringSubmatch(out.String()); m != nil {
				_, port, err := net.SplitHostPort(m[1])
				if err != nil {
					t.Fatal(err)
				}
				base = "http://127.0.0.1:" + port
			}
		}
		if base == "" {
			cancel()
			t.Fatalf("serve printed no address in 20 s: %q %q", out.String(), errb.String())
		}
		cl := &http.Client{Timeout: 10 * time.Second}
		for _, p := range []string{"/", "/api/runs/run/samples/s000"} {
			resp, err := cl.Get(base + p)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || len(b) == 0 {
				t.Errorf("GET %s: %d", p, resp.StatusCode)
			}
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve returned %v after cancel", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("serve did not stop within 10 s of cancel")
		}
		if got := strings.Contains(errb.String(), "warning"); got != tc.warn {
			t.Errorf("--addr %s: warning printed %v, want %v (%q)", tc.addr, got, tc.warn, errb.String())
		}
	}
	if got := run([]string{"serve", dir, "--addr", "nonsense"}); got != exitUsage {
		t.Errorf("serve --addr nonsense exited %d, want %d", got, exitUsage)
	}
	if got := run([]string{"serve", filepath.Join(dir, "missing")}); got != exitError {
		t.Errorf("serve of a missing run exited %d, want %d", got, exitError)
	}
}
