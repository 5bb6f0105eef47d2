package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
)

// attnscope human generate, then every step, then grade answers/check and import.
func TestHumanAndGradeCommands(t *testing.T) {
	data := refdata.Path(t, "..", "datasets", "followup-attention")
	tok := refdata.Path(t, "models", "code-gpt2-mini")
	out := filepath.Join(t.TempDir(), "study")
	if got := run([]string{"human", "generate", "--questions", filepath.Join(data, "human_attention_tasks"), "--files", "sensemaking/tree_Q*.py",
		"--participants", "2", "--tokenizer", tok, "--out", out}); got != exitOK {
		t.Fatalf("human generate: exit %d", got)
	}
	cfg := filepath.Join(out, "eye.yaml")
	for _, step := range []string{"getweights", "derivetokenweights", "getfollowup", "derivefollowupline", "getanswers", "getanswersdataset"} {
		if got := run([]string{"human", "--config", cfg, step}); got != exitOK {
			t.Fatalf("human %s: exit %d", step, got)
		}
	}
	if got := run([]string{"human", "--config", cfg, "getwieghts"}); got != exitError {
		t.Fatalf("unknown step: exit %d, want %d", got, exitError)
	}
	if got := run([]string{"human", "getweights"}); got != exitUsage {
		t.Fatalf("no --config: exit %d, want %d", got, exitUsage)
	}
	runDir := filepath.Join(out, "run")
	if got := run([]string{"grade", "check", runDir}); got != exitOK {
		t.Fatalf("grade check: exit %d", got)
	}
	if _, err := os.Stat(filepath.Join(runDir, "checks.csv")); err != nil {
		t.Fatal(err)
	}
	if got := run([]string{"grade", "answers", runDir}); got != exitOK {
		t.Fatalf("grade answers: exit %d", got)
	}
	grades := filepath.Join(t.TempDir(), "grades.csv")
	if got := run([]string{"grade", "import", "--out", grades, filepath.Join(data, "annotations")}); got != exitOK {
		t.Fatalf("grade import: exit %d", got)
	}
}
