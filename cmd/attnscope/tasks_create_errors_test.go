package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
)

// TestTasksCreateErrors checks that tasks create parses the experiment file as run
// does (experiment.LoadCreation): --set placeholders, errors naming file and line, and
// a file without prompt_creation_strategy refused.
func TestTasksCreateErrors(t *testing.T) {
	exp := filepath.Join(refdata.RepoRoot(), "configs", "followup", "exp_v10.yaml")
	tmp := t.TempDir()
	bad := writeFile(t, filepath.Join(tmp, "bad.yaml"), strings.ReplaceAll(creatorTestConfig, "DIR", tmp)+"colour: red\n")
	placeholders := writeFile(t, filepath.Join(tmp, "set.yaml"), strings.ReplaceAll(creatorTestConfig, "DIR", "{{dir}}"))
	sets := []string{"--set", "model_huggingface_name=code-gpt2-mini", "--set", "model_short_name=x"}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{append([]string{"tasks", "create", "--config", exp}, sets...), exitError, "exp_v10.yaml: prompt_creation_strategy: required"},
		{[]string{"tasks", "create", "--config", exp}, exitError, "exp_v10.yaml:16: placeholder {{model_huggingface_name}} has no value"},
		{[]string{"tasks", "create", "--config", placeholders, "--set", "dir"}, exitUsage, "NAME=VALUE"},
		{[]string{"tasks", "create", "--config", bad}, exitError, "bad.yaml:18: unknown field \"colour\""},
		{[]string{"tasks", "create", "--config", placeholders, "--set", "dir=" + tmp}, exitOK, ""},
	} {
		code, stderr := runCLI(t, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("attnscope %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tt.args, " "), code, stderr, tt.code, tt.want)
		}
	}
	if _, err := os.Stat(filepath.Join(tmp, "truth", "prompt_2_assignment_chain.json")); err != nil {
		t.Errorf("--set dir: %v", err)
	}
}
