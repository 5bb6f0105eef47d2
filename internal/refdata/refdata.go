// Package refdata locates the shared reference data (../shared/reference: tokenizers
// with golden encodings, checkpoints with reference attentions) for tests.
package refdata

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// EnvVar overrides the location of the reference folder.
const EnvVar = "ATTNSCOPE_REFERENCE"

// Dir returns the reference folder: $ATTNSCOPE_REFERENCE if set, else ../shared/reference
// beside the repository root. ok is false when the folder does not exist.
func Dir() (dir string, ok bool) {
	if d := os.Getenv(EnvVar); d != "" {
		return d, isDir(d)
	}
	_, file, _, _ := runtime.Caller(0)
	// file = <repo>/internal/refdata/refdata.go
	repo := filepath.Dir(filepath.Dir(filepath.Dir(file)))
	d := filepath.Join(filepath.Dir(repo), "shared", "reference")
	return d, isDir(d)
}

// Path returns a path inside the reference folder, skipping the test with a clear
// message when the folder is absent (and failing under CI, where it must be present).
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	d, ok := Dir()
	if !ok && os.Getenv("CI") != "" {
		t.Fatalf("reference data not found at %s under CI (set %s to its location)", d, EnvVar)
	}
	if !ok {
		t.Skipf("reference data not found at %s (set %s to its location)", d, EnvVar)
	}
	return filepath.Join(append([]string{d}, elem...)...)
}

// RepoRoot returns the repository root (for tests that need committed testdata or scripts).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
