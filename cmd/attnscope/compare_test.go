package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestCompareCommandErrors(t *testing.T) {
	tmp := t.TempDir()
	bad := writeFile(t, filepath.Join(tmp, "bad.yaml"), "human_att_folder: h\noutput_comparison_folder: o\ncomparisons:\n  - name: a\n    comparison_function: nope\n")
	noRun := writeFile(t, filepath.Join(tmp, "norun.yaml"), "human_att_folder: h\nmachine_att_folder: m\noutput_comparison_folder: o\ncomparisons:\n  - name: a\n    comparison_function: mse\n    human: {subfolder: x}\n    machine: {subfolder: y}\n")
	for _, tt := range []struct {
		name string
		args []string
		want int
	}{
		{"list", []string{"compare", "--list"}, exitOK},
		{"no config", []string{"compare"}, exitUsage},
		{"extra argument", []string{"compare", "--config", bad, "x"}, exitUsage},
		{"unknown function", []string{"compare", "--config", bad}, exitError},
		{"not a run", []string{"compare", "--config", noRun}, exitError},
		{"missing config", []string{"compare", "--config", filepath.Join(tmp, "nope.yaml")}, exitError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(tt.args); got != tt.want {
				t.Errorf("run(%q) = %d, want %d", strings.Join(tt.args, " "), got, tt.want)
			}
		})
	}
}
