package main

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/store"

	"github.com/spf13/cobra"
)

// TestVersionFlag: attnscope --version prints the same line as attnscope version.
func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if out.String() != versionLine() {
			t.Errorf("%v printed %q, want %q", args, out.String(), versionLine())
		}
	}
	if got := run([]string{"--version"}); got != exitOK {
		t.Errorf("--version exited %d", got)
	}
}

// TestHelpStatesDefaultsOnce checks every flag of every command: its help line names
// its default at most once (a usage text saying "(default: ...)" got pflag's own
// "(default -1)" appended).
func TestHelpStatesDefaultsOnce(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, line := range strings.Split(c.LocalFlags().FlagUsages(), "\n") {
			if strings.Count(line, "(default") > 1 {
				t.Errorf("%s: %s", c.CommandPath(), strings.TrimSpace(line))
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
}

// TestDeriveEmptyRun: derive on a run without samples fails (exit 1) and says so.
func TestDeriveEmptyRun(t *testing.T) {
	tmp := t.TempDir()
	cfg := writeFile(t, filepath.Join(tmp, "ok.yaml"), deriveTestConfig)
	dir := filepath.Join(tmp, "run")
	if _, err := store.Create(dir, store.Meta{Kind: "import", DType: "float32"}); err != nil {
		t.Fatal(err)
	}
	if got := run([]string{"derive", "--config", cfg, dir}); got != exitError {
		t.Fatalf("derive on an empty run exited %d, want %d", got, exitError)
	}
	root := newRootCmd()
	root.SetArgs([]string{"derive", "--config", cfg, dir})
	root.SetErr(io.Discard)
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), "no samples") {
		t.Fatalf("error %v, want one saying the run holds no samples", err)
	}
}
