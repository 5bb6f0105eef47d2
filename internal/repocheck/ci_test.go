package repocheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the repository root, two folders above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// aptCall matches apt-get in command position (line start, after a pipe, &&, ;, or sudo).
var aptCall = regexp.MustCompile(`(^|[;&|(]\s*|\bsudo\s+)apt-get\s`)

// TestCIWaitsForDpkgLock checks that every apt-get call of .ci/run waits for the Debian
// package lock (another apt process, e.g. unattended-upgrades, holding it made CI fail)
// instead of failing at once.
func TestCIWaitsForDpkgLock(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	for i, line := range strings.Split(string(b), "\n") {
		code := strings.TrimSpace(line)
		if strings.HasPrefix(code, "#") || !aptCall.MatchString(code) {
			continue
		}
		calls++
		if !regexp.MustCompile(`-o\s+DPkg::Lock::Timeout=[1-9][0-9]*`).MatchString(code) {
			t.Errorf(".ci/run:%d: apt-get without -o DPkg::Lock::Timeout=SECONDS (it fails when another apt process holds the lock): %s", i+1, code)
		}
	}
	if calls == 0 {
		t.Fatal(".ci/run: no apt-get call found; this test is out of date")
	}
}
