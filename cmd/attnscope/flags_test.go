package main

import (
	"bytes"
	"strings"
	"testing"

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
