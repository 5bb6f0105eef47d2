package main

import (
	"strings"
	"testing"
)

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"version", []string{"version"}, exitOK},
		{"help", []string{"--help"}, exitOK},
		{"unknown flag", []string{"--no-such-flag"}, exitUsage},
		{"unknown command", []string{"no-such-command"}, exitUsage},
		{"extra argument", []string{"version", "extra"}, exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(tt.args); got != tt.want {
				t.Errorf("run(%q) = %d, want %d", strings.Join(tt.args, " "), got, tt.want)
			}
		})
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	root := newRootCmd()
	for _, c := range root.Commands() {
		if c.Short == "" {
			t.Errorf("command %q has no short help", c.Name())
		}
		if got := run([]string{c.Name(), "--help"}); got != exitOK {
			t.Errorf("%s --help exited %d", c.Name(), got)
		}
	}
}
