// Package derivetest holds test helpers for derive's outputs: snapshots of the files under
// a folder and their byte-for-byte comparison (resumed, rerun or imported runs must give
// identical files).
package derivetest

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Files returns the files under dir for which keep(rel) is true (every file when keep is
// nil), by name relative to dir, with their contents.
func Files(tb testing.TB, dir string, keep func(rel string) bool) map[string][]byte {
	tb.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || keep != nil && !keep(rel) {
			return err
		}
		b, err := os.ReadFile(p)
		out[rel] = b
		return err
	})
	if err != nil {
		tb.Fatalf("snapshot of %s: %v", dir, err)
	}
	return out
}

// Derived keeps derive's outputs, the derived/ folder and the metrics table, leaving out
// temporary files of interrupted atomic writes (their names hold ".tmp-").
func Derived(rel string) bool {
	if strings.Contains(filepath.Base(rel), ".tmp-") {
		return false
	}
	return strings.HasPrefix(rel, "derived"+string(filepath.Separator)) || strings.HasPrefix(rel, "metrics.")
}

// Same reports every file of want that is missing from got or differs, and every file
// of got that want lacks; it fails at once when want is empty (nothing would be compared).
func Same(tb testing.TB, got, want map[string][]byte) {
	tb.Helper()
	if len(want) == 0 {
		tb.Fatal("no files to compare")
	}
	names := make([]string, 0, len(want))
	for k := range want {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if g, ok := got[k]; !ok {
			tb.Errorf("missing %s", k)
		} else if !bytes.Equal(g, want[k]) {
			tb.Errorf("%s differs (%d vs %d bytes)", k, len(g), len(want[k]))
		}
	}
	extra := []string{}
	for k := range got {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		tb.Errorf("extra file %s", k)
	}
}
