package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
)

// TestRunCommandErrors checks attnscope run's answers to mistakes: usage errors exit
// with 2, mistakes in the experiment file with 1 and a message naming file and line,
// and nothing is written.
func TestRunCommandErrors(t *testing.T) {
	exp := filepath.Join(refdata.RepoRoot(), "configs", "followup", "exp_v10.yaml")
	tmp := t.TempDir()
	b, err := os.ReadFile(exp)
	if err != nil {
		t.Fatal(err)
	}
	unknownKey := writeFile(t, filepath.Join(tmp, "unknown.yaml"), strings.Replace(string(b), "extract_attention: true", "extract_attention: true\nsave_attention: true", 1))
	unknownPass := writeFile(t, filepath.Join(tmp, "pass.yaml"), strings.Replace(string(b), "function_name: make_symmetric", "function_name: make_symetric", 1))
	sets := []string{"--set", "model_huggingface_name=code-gpt2-mini", "--set", "model_short_name=errors-test"}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no config", []string{"run", "all"}, exitUsage, "--config"},
		{"unknown step", append([]string{"run", "--config", exp, "queryall"}, sets...), exitUsage, "queryall"},
		{"bad layout", append([]string{"run", "--config", exp, "--layout", "original"}, sets...), exitUsage, "--layout"},
		{"bad set", []string{"run", "--config", exp, "--set", "model_short_name"}, exitUsage, "NAME=VALUE"},
		{"missing placeholder", []string{"run", "--config", exp, "--set", "model_short_name=x", "deriveall"}, exitError, "exp_v10.yaml:16: placeholder {{model_huggingface_name}} has no value"},
		{"unknown key", append([]string{"run", "--config", unknownKey, "deriveall"}, sets...), exitError, "unknown.yaml:28: unknown field \"save_attention\""},
		{"unknown pass", append([]string{"run", "--config", unknownPass, "deriveall"}, sets...), exitError, "unknown function_name \"make_symetric\""},
		{"no run yet", append([]string{"run", "--config", exp, "deriveall"}, sets...), exitError, "run the queryextract step first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stderr := runCLI(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("attnscope %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tt.args, " "), code, stderr, tt.code, tt.want)
			}
		})
	}
	// The shipped file writes under runs/ of the working folder: nothing may be there.
	if _, err := os.Stat(filepath.Join("runs", "followup", "exp_v10", "errors-test")); err == nil {
		t.Errorf("a failed run wrote runs/followup/exp_v10/errors-test")
	}
}
