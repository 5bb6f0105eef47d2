package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/atomicfile"
)

// writeAlignmentInputs writes a rows × cols attention .npy (rows summing to 1), the
// source tokens as lines and the target tokens as a JSON list.
func writeAlignmentInputs(t *testing.T, dir string, rows, cols int) (att, src, trg string) {
	t.Helper()
	data := make([]float64, rows*cols)
	for i := range rows {
		for j := range cols {
			data[i*cols+j] = 1 / float64(cols)
		}
		data[i*cols+i%cols] += 0.5
		for j := range cols {
			data[i*cols+j] /= 1.5
		}
	}
	att = filepath.Join(dir, "att.npy")
	if err := atomicfile.WriteWith(att, func(w io.Writer) error { return checkpoint.WriteNpy(w, []int{rows, cols}, data) }); err != nil {
		t.Fatal(err)
	}
	var s, tg []string
	for j := range cols {
		s = append(s, "src"+strings.Repeat("x", j%3))
	}
	for i := range rows {
		tg = append(tg, `"tok `+strings.Repeat("y", i%4)+`"`)
	}
	src = filepath.Join(dir, "src.txt")
	trg = filepath.Join(dir, "trg.json")
	if err := os.WriteFile(src, []byte(strings.Join(s, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(trg, []byte("["+strings.Join(tg, ", ")+"]"), 0o644); err != nil {
		t.Fatal(err)
	}
	return att, src, trg
}

func TestPlotAlignmentFromFiles(t *testing.T) {
	dir := t.TempDir()
	att, src, trg := writeAlignmentInputs(t, dir, 12, 9)
	for _, name := range []string{"a.png", "a.svg", "a.pdf"} {
		out := filepath.Join(dir, name)
		if code, stderr := runCLI(t, "plot", "alignment", "--attention", att, "--source-tokens", src, "--target-tokens", trg, "--out", out, "--dpi", "72"); code != exitOK {
			t.Fatalf("%s: exit %d: %s", name, code, stderr)
		}
		checkFigureFile(t, out)
	}
	out := filepath.Join(dir, "entropy.png")
	if code, stderr := runCLI(t, "plot", "alignment-entropy", "--attention", att, "--attention", att, "--out", out, "--dpi", "72"); code != exitOK {
		t.Fatalf("alignment-entropy: exit %d: %s", code, stderr)
	}
	checkFigureFile(t, out)
}

func TestPlotAlignmentFromRun(t *testing.T) {
	runDir := referenceRun(t)
	out := filepath.Join(t.TempDir(), "a.png")
	// The reference run holds forward passes, not generations: a plain error.
	code, stderr := runCLI(t, "plot", "alignment", runDir, "--out", out)
	if code != exitError || !strings.Contains(stderr, "not a generation") {
		t.Errorf("forward-pass run: exit %d, stderr %q; want exit %d naming it not a generation", code, stderr, exitError)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("an output was written")
	}
}

func TestPlotAlignmentBadInput(t *testing.T) {
	dir := t.TempDir()
	att, src, trg := writeAlignmentInputs(t, dir, 12, 9)
	_, src8, trg5 := writeAlignmentInputs(t, t.TempDir(), 5, 8)
	bad1d := filepath.Join(dir, "v.npy")
	if err := atomicfile.WriteWith(bad1d, func(w io.Writer) error { return checkpoint.WriteNpy(w, []int{3}, []float64{1, 2, 3}) }); err != nil {
		t.Fatal(err)
	}
	badJSON := filepath.Join(dir, "bad.json")
	os.WriteFile(badJSON, []byte(`["a", 3]`), 0o644)
	out := filepath.Join(dir, "out.png")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"source count", []string{"--attention", att, "--source-tokens", src8, "--target-tokens", trg}, exitError, "8 source tokens for the 9 columns"},
		{"target count", []string{"--attention", att, "--source-tokens", src, "--target-tokens", trg5}, exitError, "5 target tokens for the 12 rows"},
		{"1-D attention", []string{"--attention", bad1d, "--source-tokens", src, "--target-tokens", trg}, exitError, "2-D array"},
		{"bad JSON", []string{"--attention", att, "--source-tokens", badJSON, "--target-tokens", trg}, exitError, "JSON list of token strings"},
		{"no tokens", []string{"--attention", att}, exitUsage, "--source-tokens"},
		{"two attentions", []string{"--attention", att, "--attention", att, "--source-tokens", src, "--target-tokens", trg}, exitUsage, "one --attention"},
	} {
		args := append([]string{"plot", "alignment", "--out", out}, tc.args...)
		code, stderr := runCLI(t, args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", tc.name, code, stderr, tc.code, tc.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%s: an output was written", tc.name)
		}
	}
	// --crop accepts the mismatch, drawing min(tokens, rows/columns, 30) as the original.
	if code, stderr := runCLI(t, "plot", "alignment", "--out", out, "--crop", "--attention", att, "--source-tokens", src8, "--target-tokens", trg5); code != exitOK {
		t.Fatalf("--crop: exit %d: %s", code, stderr)
	}
	if code, stderr := runCLI(t, "plot", "alignment-entropy", "--out", out, "--attention", bad1d); code != exitError || !strings.Contains(stderr, "2-D array") {
		t.Errorf("alignment-entropy of a 1-D array: exit %d, stderr %q", code, stderr)
	}
}
