package grading

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/goccy/go-yaml"
)

// TestSpec lists the tasks that ship tests (a YAML file).
//
//	tasks:
//	  - source: add.py                 # samples whose source file has this base name
//	    program: add.py                # the sample's text is written as this file (default: source)
//	    files: {test_add.py: "..."}    # more files written beside it
//	    copy: [tests/test_add.py]      # files copied beside it (relative to the spec)
//	    command: [python3, test_add.py]
//	    timeout: 10s                   # default 10s
//	    memory_mb: 512                 # address-space limit, default 512
type TestSpec struct {
	Tasks []TaskTests `yaml:"tasks"`
	dir   string
}

// TaskTests is the test of one task.
type TaskTests struct {
	Source   string            `yaml:"source"`
	Program  string            `yaml:"program"`
	Files    map[string]string `yaml:"files"`
	Copy     []string          `yaml:"copy"`
	Command  []string          `yaml:"command"`
	Timeout  string            `yaml:"timeout"`
	MemoryMB int               `yaml:"memory_mb"`

	timeout time.Duration
}

// LoadTestSpec reads a test spec strictly; errors name the file and the task.
func LoadTestSpec(path string) (*TestSpec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s TestSpec
	if err := yaml.UnmarshalWithOptions(b, &s, yaml.Strict()); err != nil {
		return nil, fmt.Errorf("%s: %s", path, strings.TrimSpace(yaml.FormatError(err, false, false)))
	}
	s.dir = filepath.Dir(path)
	for i := range s.Tasks {
		t := &s.Tasks[i]
		if t.Source == "" || len(t.Command) == 0 {
			return nil, fmt.Errorf("%s: task %d: source and command are required", path, i+1)
		}
		if err := t.check(); err != nil {
			return nil, fmt.Errorf("%s: task %d (%s): %w", path, i+1, t.Source, err)
		}
	}
	return &s, nil
}

func (t *TaskTests) check() error {
	t.timeout = 10 * time.Second
	if t.Timeout != "" {
		d, err := time.ParseDuration(t.Timeout)
		if err != nil || d <= 0 {
			return fmt.Errorf("timeout %q: a positive duration such as 10s expected", t.Timeout)
		}
		t.timeout = d
	}
	if t.MemoryMB == 0 {
		t.MemoryMB = 512
	}
	if t.MemoryMB < 0 {
		return fmt.Errorf("memory_mb must be positive, got %d", t.MemoryMB)
	}
	if t.Program == "" {
		t.Program = filepath.Base(t.Source)
	}
	for _, n := range append([]string{t.Program}, keys(t.Files)...) {
		if n != filepath.Base(n) || n == "." || n == ".." {
			return fmt.Errorf("file name %q must be a plain name (no folders)", n)
		}
	}
	return nil
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Task returns the tests of a sample's source file, or nil.
func (s *TestSpec) Task(source string) *TaskTests {
	if s == nil {
		return nil
	}
	for i := range s.Tasks {
		if filepath.Base(s.Tasks[i].Source) == filepath.Base(source) {
			return &s.Tasks[i]
		}
	}
	return nil
}

// TestResult is the outcome of a task's tests on a program.
type TestResult struct {
	Status string // "pass", "fail" or "timeout"
	// Detail is the exit status and the end of the output.
	Detail string
	Time   time.Duration
}

// RunTests writes program and the task's files into a new temporary folder (never the
// working tree), runs the command there in its own process group with the address
// space limited to memory_mb (ulimit -v) and the wall time to timeout (the whole
// group is killed), and removes the folder. Exit status 0 is "pass".
func (s *TestSpec) RunTests(ctx context.Context, t *TaskTests, program []byte) (TestResult, error) {
	dir, err := os.MkdirTemp("", "attnscope-tests-")
	if err != nil {
		return TestResult{}, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, t.Program), program, 0o644); err != nil {
		return TestResult{}, err
	}
	for n, c := range t.Files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			return TestResult{}, err
		}
	}
	for _, c := range t.Copy {
		b, err := os.ReadFile(filepath.Join(s.dir, c))
		if err != nil {
			return TestResult{}, fmt.Errorf("task %s: copy: %w", t.Source, err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(c)), b, 0o644); err != nil {
			return TestResult{}, err
		}
	}
	args := append([]string{"-c", `ulimit -v "$0" && exec "$@"`, strconv.Itoa(t.MemoryMB * 1024)}, t.Command...)
	cmd := exec.Command("/bin/sh", args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir, "LANG=C.UTF-8"}
	var out limitedBuffer
	out.max = 16 << 10
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return TestResult{}, fmt.Errorf("task %s: start %s: %w", t.Source, strings.Join(t.Command, " "), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(t.timeout)
	defer timer.Stop()
	var werr error
	status := ""
	select {
	case werr = <-done:
	case <-timer.C:
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		werr = <-done
		status = "timeout"
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return TestResult{}, ctx.Err()
	}
	// children left in the group (a test that forked) go too
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	r := TestResult{Time: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case status == "timeout":
		r.Status, r.Detail = "timeout", fmt.Sprintf("killed after %s", t.timeout)
	case werr == nil:
		r.Status, r.Detail = "pass", "exit 0"
	case errors.As(werr, &ee):
		r.Status, r.Detail = "fail", ee.ProcessState.String()
	default:
		return TestResult{}, werr
	}
	if tail := strings.TrimSpace(out.String()); tail != "" {
		r.Detail += ": " + lastLines(tail, 5)
	}
	return r, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// limitedBuffer keeps the last max bytes written.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	b.Buffer.Write(p)
	if over := b.Len() - b.max; over > 0 {
		b.Next(over)
	}
	return n, nil
}
