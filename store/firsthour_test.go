package store

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
)

// TestImportFailureLeavesNothing: an import into a new folder that fails on a bad layer
// leaves neither run.json nor an empty sample folder behind.
func TestImportFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	a := causal(2, 1, 4)
	f64 := make([]float64, len(a))
	for i, v := range a {
		f64[i] = float64(v)
	}
	f64[len(f64)-1] = math.NaN() // layer 1 is not finite
	checkpoint.WriteNpyFile(filepath.Join(dir, "bad.npy"), []int{2, 4, 4}, f64)
	out := filepath.Join(t.TempDir(), "run")
	if _, err := Import(t.Context(), out, []string{filepath.Join(dir, "bad.npy")}, ImportOptions{Command: []string{"attnscope", "import"}}); err == nil {
		t.Fatal("import of a NaN tensor succeeded")
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		entries, _ := filepath.Glob(filepath.Join(out, "*", "*"))
		t.Fatalf("the failed import left %s behind (stat: %v; %v)", out, err, entries)
	}
}

// TestAbortRemovesNewSampleFolder: an aborted sample (Ctrl-C during capture, a failed
// import) leaves no empty samples/<id> folder; a folder that existed before is kept.
func TestAbortRemovesNewSampleFolder(t *testing.T) {
	r, err := Create(filepath.Join(t.TempDir(), "run"), Meta{Kind: "capture", DType: "float32"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.NewSample("s0", SampleOptions{Layers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Record(AttentionName(0), []int{1, 2, 2}, []float32{1, 0, 0.5, 0.5}); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if _, err := os.Stat(r.SampleDir("s0")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("aborted sample left %s (stat: %v)", r.SampleDir("s0"), err)
	}
	keep := r.SampleDir("s1")
	if err := os.MkdirAll(keep, 0o755); err != nil {
		t.Fatal(err)
	}
	w, err = r.NewSample("s1", SampleOptions{Layers: 1})
	if err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("Abort removed a folder it did not create: %v", err)
	}
}

// TestRunKeepsEveryCommand: appending to a run keeps every command line in run.json,
// and a run.json of the older layout (one command line) is still read.
func TestRunKeepsEveryCommand(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"one.npy", "two.npy"} {
		a := causal(1, 1, 3)
		f64 := make([]float64, len(a))
		for i, v := range a {
			f64[i] = float64(v)
		}
		checkpoint.WriteNpyFile(filepath.Join(dir, name), []int{1, 3, 3}, f64)
	}
	out := filepath.Join(t.TempDir(), "run")
	first := []string{"attnscope", "import", "--out=" + out, "one.npy"}
	second := []string{"attnscope", "import", "--out=" + out, "two.npy"}
	mustImport(t, out, []string{filepath.Join(dir, "one.npy")}, ImportOptions{Command: first})
	mustImport(t, out, []string{filepath.Join(dir, "two.npy")}, ImportOptions{Command: second})
	r, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := (CommandLines{first, second}); !reflect.DeepEqual(r.Meta.Commands, want) {
		t.Fatalf("commands %q, want %q", r.Meta.Commands, want)
	}
	if !reflect.DeepEqual(r.Meta.Command, second) {
		t.Errorf("Command %q, want the last line %q", r.Meta.Command, second)
	}

	// The older layout: "command" is one command line.
	old := `{"format": 1, "tool": "attnscope", "kind": "import", "dtype": "float32", "command": ["attnscope", "import", "x.npy"], "hidden": false, "start_time": "2026-01-01T00:00:00Z"}`
	oldDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(oldDir, RunFile), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err = Open(oldDir)
	if err != nil {
		t.Fatal(err)
	}
	if want := (CommandLines{{"attnscope", "import", "x.npy"}}); !reflect.DeepEqual(r.Meta.Commands, want) {
		t.Fatalf("old run.json: commands %q, want %q", r.Meta.Commands, want)
	}
	if err := os.WriteFile(filepath.Join(oldDir, RunFile), []byte(strings.Replace(old, `["attnscope", "import", "x.npy"]`, `"attnscope import"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(oldDir); err == nil || !strings.Contains(err.Error(), `"command"`) {
		t.Errorf("a string command: error %v, want one naming the field", err)
	}
}
