package main

import (
	"bytes"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/attnscope/attnscope/internal/progress"
	"github.com/attnscope/attnscope/report"
)

// executeRoot runs the command tree with stdout and stderr captured.
func executeRoot(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCmd()
	var o, e bytes.Buffer
	root.SetOut(&o)
	root.SetErr(&e)
	root.SetArgs(args)
	err = root.Execute()
	return o.String(), e.String(), err
}

// plot and report list the kinds of the one figure registry, and plot refuses, for
// every kind, each flag the kind does not read (exit 2).
func TestPlotKindsFromRegistry(t *testing.T) {
	list, _, err := executeRoot(t, "plot", "list")
	if err != nil {
		t.Fatal(err)
	}
	help, _, err := executeRoot(t, "plot", "--help")
	if err != nil {
		t.Fatal(err)
	}
	rhelp, _, err := executeRoot(t, "report", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range report.Figures() {
		if !strings.Contains(list, k.Name+"\n  "+k.Help+"\n  reads: ") || !strings.Contains(help, "  "+k.Name+" ") {
			t.Errorf("plot list or plot --help lacks kind %s", k.Name)
		}
	}
	if want := "by name (" + strings.Join(report.ReportFigureNames(), ", ") + ")"; !strings.Contains(strings.Join(strings.Fields(rhelp), " "), want) {
		t.Errorf("report --help does not list the report's figure kinds %q", want)
	}
	runDir := referenceRun(t)
	out := filepath.Join(t.TempDir(), "x.png")
	var flags []*pflag.Flag
	newPlotCmd().Flags().VisitAll(func(f *pflag.Flag) { flags = append(flags, f) })
	for _, k := range report.Figures() {
		for _, f := range flags {
			if slices.Contains(k.Options, f.Name) || f.Name == "sample" || f.Name == "out" || f.Name == "dpi" {
				continue
			}
			arg := "--" + f.Name + "=1"
			if f.Value.Type() == "bool" {
				arg = "--" + f.Name
			}
			code, stderr := runCLI(t, "plot", k.Name, runDir, "--out", out, arg)
			if code != exitUsage || !strings.Contains(stderr, "plot "+k.Name+" does not use --"+f.Name) {
				t.Errorf("plot %s %s: exit %d, %q; want exit 2 refusing the flag", k.Name, arg, code, stderr)
			}
		}
	}
}

// TestReportProgressLines: with stderr not a terminal, report prints a progress line
// per sample section (count, sample, its time, elapsed, ETA), the last one "done".
func TestReportProgressLines(t *testing.T) {
	t.Setenv(progress.EnvEvery, "0")
	runDir := referenceRun(t)
	out := filepath.Join(t.TempDir(), "r.html")
	stdout, stderr, err := executeRoot(t, "report", runDir, "--out", out, "--dpi", "30", "--figures", "grid,entropy", "--max-samples", "3")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d progress lines, want 3 (one per sample section):\n%s", len(lines), stderr)
	}
	line := regexp.MustCompile(`^report: (\d)/3 samples \((case\d), [0-9.]+[mµn]?s\), elapsed [0-9.hmµns]+, (ETA [0-9.hmµns]+|done)$`)
	for k, l := range lines {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %d %q does not give the count, sample, time, elapsed time and ETA", k+1, l)
		}
		if m[1] != strconv.Itoa(k+1) || m[2] != "case"+strconv.Itoa(k) || (m[3] == "done") != (k == 2) {
			t.Errorf("line %d: %q", k+1, l)
		}
	}
	if !strings.HasPrefix(stdout, "wrote "+out) {
		t.Errorf("stdout %q", stdout)
	}
}
