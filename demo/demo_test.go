package demo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// demo --out refuses a non-empty folder it did not create, before any work, and
// leaves it as it was; an empty folder or one a demo made is accepted.
func TestOutRefusesForeignFolder(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "thesis.tex")
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err := Run(context.Background(), Options{Out: dir, Figures: 1, Stdout: &out, Stderr: &errb})
	if err == nil || !strings.Contains(err.Error(), "not empty and was not made by attnscope demo") {
		t.Fatalf("err = %v, want a refusal", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || errb.Len() > 0 || out.Len() > 0 {
		t.Errorf("the refused folder was touched (%d entries) or work started: %q %q", len(ents), errb.String(), out.String())
	}
	empty := t.TempDir()
	if err := prepareOut(empty); err != nil {
		t.Errorf("empty folder refused: %v", err)
	}
	if err := os.WriteFile(filepath.Join(empty, "results.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := prepareOut(empty); err != nil {
		t.Errorf("a folder an earlier demo made was refused: %v", err)
	}
	if err := prepareOut(filepath.Join(dir, "new", "sub")); err != nil {
		t.Errorf("new folder: %v", err)
	}
}

func TestFormatP(t *testing.T) {
	for p, want := range map[float64]string{0: "p < 1e-300", 1e-310: "p < 1e-300", 3.6e-05: "p = 3.6e-05", 0.5: "p = 0.5"} {
		if got := FormatP(p); got != want {
			t.Errorf("FormatP(%g) = %q, want %q", p, got, want)
		}
	}
}

func TestUsualSum(t *testing.T) {
	for in, want := range map[string]string{"1410+3260+4150=8721": "141 + 623 + 514 = 1278", "01+2=21": "10 + 2 = 12", "hello": "hello", "00+0=0": "0 + 0 = 0"} {
		if got := UsualSum(in); got != want {
			t.Errorf("UsualSum(%q) = %q, want %q", in, got, want)
		}
	}
}
