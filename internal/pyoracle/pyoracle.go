// Package pyoracle finds the Python interpreter that runs a test's independent oracle
// (NumPy, pandas, SciPy, OpenCV from Debian's packages). When it or a module is
// missing, the test is skipped with the reason, and fails under CI (CI set in the
// environment), where .ci/run installs them: an oracle never silently stops checking.
package pyoracle

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Interpreter is Debian's python3, the one whose packages .ci/apt-packages installs.
const Interpreter = "/usr/bin/python3"

// Python returns Interpreter when it imports every module (e.g. "numpy",
// "pandas"); otherwise it skips t, or fails it under CI.
func Python(t testing.TB, modules ...string) string {
	t.Helper()
	if err := check(modules); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("oracle unavailable under CI: %v", err)
		}
		t.Skipf("oracle unavailable: %v", err)
	}
	return Interpreter
}

// check reports why Interpreter cannot import modules, nil when it can.
func check(modules []string) error {
	if _, err := os.Stat(Interpreter); err != nil {
		return fmt.Errorf("%s is absent (Debian package python3)", Interpreter)
	}
	if len(modules) == 0 {
		return nil
	}
	out, err := exec.Command(Interpreter, "-c", "import "+strings.Join(modules, ", ")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s cannot import %s (install the Debian python3-* packages of .ci/apt-packages): %v %s", Interpreter, strings.Join(modules, ", "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
