package main

import (
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
)

// TestBenchCaptureCommand: the command runs on a small model without PyTorch and refuses
// a missing --model (the measurements are tested in bench/capturebench).
func TestBenchCaptureCommand(t *testing.T) {
	dir := refdata.Path(t, "models", "tiny-gpt2")
	if code, stderr := runCLI(t, "bench", "capture", "--model", dir, "--n", "16", "--threads", "1", "--repeats", "1",
		"--ceiling-size", "64", "--python", "/nonexistent/python3"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if code, stderr := runCLI(t, "bench", "capture"); code == 0 {
		t.Fatalf("without --model: exit 0, stderr %q", stderr)
	}
	if code, stderr := runCLI(t, "bench", "capture", "--model", dir, "--warmup", "0"); code != exitUsage || !strings.Contains(stderr, "--warmup must be at least 1") {
		t.Fatalf("--warmup 0: exit %d, stderr %q", code, stderr)
	}
}

// TestBenchInterveneCommand: the command runs on a small model and refuses a
// missing --model (the tables are tested in bench/intervenebench).
func TestBenchInterveneCommand(t *testing.T) {
	dir := refdata.Path(t, "models", "tiny-gpt2")
	if code, stderr := runCLI(t, "bench", "intervene", "--model", dir, "--capture-tokens", "16", "--repeats", "1",
		"--prompts", "2", "--tokens", "8", "--heads", "2"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if code, stderr := runCLI(t, "bench", "intervene"); code == 0 {
		t.Fatalf("without --model: exit 0, stderr %q", stderr)
	}
}
