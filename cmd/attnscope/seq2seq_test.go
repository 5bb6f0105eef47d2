package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writePyTree writes n documented functions over a few files, plus one file that
// does not parse.
func writePyTree(t *testing.T, n int) string {
	dir := t.TempDir()
	ops := []string{"+", "-", "*"}
	words := []string{"sum", "difference", "product"}
	var b strings.Builder
	for i := range n {
		k := i % 3
		fmt.Fprintf(&b, "def f%d(a, b):\n    \"\"\"Return the %s of a and b.\"\"\"\n    return a %s b\n\n", i, words[k], ops[k])
		if i%10 == 9 {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("m%d.py", i/10)), []byte(b.String()), 0o644)
			b.Reset()
		}
	}
	os.WriteFile(filepath.Join(dir, "broken.py"), []byte("def broken(:\n"), 0o644)
	return dir
}

func TestSeq2seqCorpusAndErrors(t *testing.T) {
	dir := writePyTree(t, 20)
	out := filepath.Join(t.TempDir(), "c.jsonl")
	code, stdout, stderr := runCapture(t, "seq2seq", "corpus", "--from", dir, "--out", out)
	if code != exitOK || !strings.Contains(stdout, "wrote 20 pairs") || !strings.Contains(stderr, "1 skipped as unparsable") {
		t.Fatalf("corpus: exit %d\n%s\n%s", code, stdout, stderr)
	}
	empty := filepath.Join(t.TempDir(), "empty.jsonl")
	os.WriteFile(empty, nil, 0o644)
	code, _, stderr = runCapture(t, "seq2seq", "run", "--corpus", empty, "--out", t.TempDir())
	if code != exitError || !strings.Contains(stderr, empty) || !strings.Contains(stderr, "no rows") {
		t.Fatalf("empty corpus: exit %d: %s", code, stderr)
	}
	code, _, _ = runCapture(t, "seq2seq", "run", "--out", t.TempDir())
	if code != exitUsage {
		t.Fatalf("run without --corpus: exit %d", code)
	}
}

// TestDemoSeq2seqTiny runs "demo seq2seq" end to end with a tiny configuration.
func TestDemoSeq2seqTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two tiny models")
	}
	dir := writePyTree(t, 60)
	out := t.TempDir()
	code, stdout, stderr := runCapture(t, "demo", "seq2seq", "--from", dir, "--out", out, "--train", "40", "--val", "10", "--test", "10",
		"--epochs", "1", "--batch", "16", "--embed", "8", "--hidden", "8", "--layers", "1", "--max-src", "8", "--max-trg", "8", "--max-decode", "9", "--min-freq", "1", "--align-samples", "11")
	if code != exitOK {
		t.Fatalf("demo seq2seq: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, f := range []string{"corpus.jsonl", "results.json", "report.md", "figures/attention_entropy_analysis.png", "run/samples/test-0009/sample.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(stdout, "lstm_attention") || !strings.Contains(stdout, "lstm ") {
		t.Fatalf("summary: %s", stdout)
	}
	// The stored alignments work with plot alignment.
	png := filepath.Join(t.TempDir(), "a.png")
	if code, _, stderr := runCapture(t, "plot", "alignment", filepath.Join(out, "run"), "--sample", "test-0000", "--out", png); code != exitOK {
		t.Fatalf("plot alignment: exit %d: %s", code, stderr)
	}
	// ... and plot alignment-entropy over every sample of the run folder.
	hist := filepath.Join(t.TempDir(), "entropy.png")
	if code, stdout, stderr := runCapture(t, "plot", "alignment-entropy", filepath.Join(out, "run"), "--out", hist); code != exitOK || !strings.Contains(stdout, "wrote") {
		t.Fatalf("plot alignment-entropy RUN: exit %d: %s %s", code, stdout, stderr)
	}
	checkFigureFile(t, hist)
}
