package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
)

func TestBenchCaptureSmoke(t *testing.T) {
	dir := refdata.Path(t, "models", "tiny-gpt2")
	var out bytes.Buffer
	if err := runBenchCapture(context.Background(), &out, dir, []int{16, 32}, []int{1}, 1, "/nonexistent/python3", "/nonexistent.py"); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"N      threads", "\n16     1 ", "\n32     1 ", "n/a", "graphs compiled"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if err := runBenchCapture(context.Background(), &out, dir, []int{1000}, []int{1}, 1, "", ""); err == nil || !strings.Contains(err.Error(), "context of 512") {
		t.Errorf("N beyond the context: %v", err)
	}
}
