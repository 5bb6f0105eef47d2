package capturebench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Torch runs the PyTorch eager baseline script (MODEL_DIR N THREADS REPEATS [BATCH],
// which prints the median milliseconds).
type Torch struct {
	Python, Script string
	Timeout        time.Duration // per run; 0 means 10 minutes
}

// Available reports whether the script exists and Python imports torch and numpy.
func (t Torch) Available() bool { return t.Missing() == "" }

// Missing says why the baseline cannot run ("" when it can).
func (t Torch) Missing() string {
	if t.Script == "" {
		return "no baseline script given"
	}
	if _, err := os.Stat(t.Script); err != nil {
		return fmt.Sprintf("script %s not found", t.Script)
	}
	if exec.Command(t.Python, "-c", "import torch, numpy").Run() != nil {
		return fmt.Sprintf("%s cannot import torch and numpy (Debian: apt-get install python3-torch)", t.Python)
	}
	return ""
}

// Env returns the environment of the baseline: the current one with OpenBLAS and
// OpenMP pinned to the same thread count (Debian's torch calls OpenBLAS, whose pool
// ignores torch.set_num_threads) and OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed
// (some machines set them, which forces OpenBLAS's slower Haswell kernel).
func Env(environ []string, threads int) []string {
	env := make([]string, 0, len(environ)+2)
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS":
			continue
		}
		env = append(env, kv)
	}
	th := strconv.Itoa(threads)
	return append(env, "OPENBLAS_NUM_THREADS="+th, "OMP_NUM_THREADS="+th)
}

// Run times the baseline on the model folder dir and returns its median milliseconds.
func (t Torch) Run(ctx context.Context, dir string, n, threads, repeats, batch int) (float64, error) {
	timeout := t.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := []string{t.Script, dir, strconv.Itoa(n), strconv.Itoa(threads), strconv.Itoa(repeats)}
	if batch > 1 {
		args = append(args, strconv.Itoa(batch))
	}
	c := exec.CommandContext(ctx, t.Python, args...)
	c.Env = Env(os.Environ(), threads)
	var stderr strings.Builder
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w: %s", t.Python, strings.Join(args, " "), err, lastLine(stderr.String()))
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return 0, fmt.Errorf("%s printed nothing, expected the median milliseconds", t.Script)
	}
	ms, err := strconv.ParseFloat(f[len(f)-1], 64)
	if err != nil {
		return 0, fmt.Errorf("%s: last output %q is not the median milliseconds", t.Script, f[len(f)-1])
	}
	return ms, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
