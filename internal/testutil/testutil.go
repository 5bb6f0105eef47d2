// Package testutil holds the small helpers that tests of several packages share.
package testutil

import (
	"io"
	"net/http"
	"testing"
)

// Must returns v, and panics when err is not nil: for test setup steps that only
// fail when the test itself is broken.
func Must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Get fetches url and returns its body; anything but 200 OK fails the test.
func Get(t testing.TB, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s %v", url, resp.StatusCode, b, err)
	}
	return b
}
