package shard

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/atomicfile"
)

var sh02 = Shard{Index: 0, Count: 2}

// A work folder dropped mid-way (every Finish is on disk, as after a SIGKILL), with a
// killed writer's temporary files in it (of an item and of the record itself), is
// reopened with what was finished: the finished items are done, their files kept,
// the temporary files removed, and the rerun's items are counted apart.
func TestWorkResumesAfterKill(t *testing.T) {
	dir := filepath.Join(t.TempDir(), WorkDir)
	w, err := OpenWork(dir, sh02, "config A", "evaluation")
	if err != nil {
		t.Fatal(err)
	}
	if w.Kept() != 0 || len(w.Finished()) != 0 || w.Done("b1") {
		t.Fatalf("a new work folder: kept %d, finished %v", w.Kept(), w.Finished())
	}
	for _, id := range []string{"b3", "b1"} {
		if err := os.WriteFile(filepath.Join(dir, id+".out"), []byte(id), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := w.Finish(id); err != nil {
			t.Fatal(err)
		}
	}
	// The kill: an item's output and a rewrite of the record half-written.
	os.MkdirAll(filepath.Join(dir, "b5"), 0o755)
	for _, p := range []string{filepath.Join(dir, "b5", "t.csv"), filepath.Join(dir, ProgressFile)} {
		f, err := atomicfile.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(`{"shard": "0/2", "finished": [`))
		// neither Commit nor Abort: the temporary file stays, as a killed process leaves it
	}
	if done, err := ReadProgress(dir); err != nil || !slices.Equal(done, []string{"b1", "b3"}) {
		t.Fatalf("the record after the kill: %v (%v); want [b1 b3]", done, err)
	}

	w, err = OpenWork(dir, sh02, "config A", "evaluation")
	if err != nil {
		t.Fatal(err)
	}
	if w.Kept() != 2 || w.Computed() != 0 || !w.Done("b1") || !w.Done("b3") || w.Done("b5") {
		t.Fatalf("reopened: kept %d, computed %d, finished %v; want b1 and b3 kept", w.Kept(), w.Computed(), w.Finished())
	}
	for _, id := range []string{"b1", "b3"} {
		if b, err := os.ReadFile(filepath.Join(dir, id+".out")); err != nil || string(b) != id {
			t.Errorf("the output of finished item %s is lost: %q %v", id, b, err)
		}
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp-") {
			t.Errorf("the killed writer's temporary file %s is left", p)
		}
		return err
	})
	if err := w.Finish("b5"); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish("b5"); err != nil { // again: recorded once
		t.Fatal(err)
	}
	if w.Kept() != 2 || w.Computed() != 1 || !slices.Equal(w.Finished(), []string{"b1", "b3", "b5"}) {
		t.Errorf("after the rerun's item: kept %d, computed %d, finished %v", w.Kept(), w.Computed(), w.Finished())
	}
	if done, err := ReadProgress(dir); err != nil || !slices.Equal(done, []string{"b1", "b3", "b5"}) {
		t.Errorf("the record on disk: %v (%v)", done, err)
	}
}

// Work of another key, of another shard, or with a record that cannot be read is
// refused with a *StaleError naming the folder, the reason and the way out; the
// folder is left as it was.
func TestWorkRefusesOtherWork(t *testing.T) {
	dir := filepath.Join(t.TempDir(), WorkDir)
	w, err := OpenWork(dir, sh02, "config A", "evaluation (configuration, model or options)")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Finish("b1"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		sh   Shard
		key  string
		want string
	}{
		{"other key", sh02, "config B", dir + " holds the unfinished work of another evaluation (configuration, model or options): delete it to start shard 0/2 afresh"},
		{"other shard", Shard{Index: 1, Count: 2}, "config A", dir + " holds the unfinished work of shard 0/2: delete it to start shard 1/2 afresh"},
		{"other count", Shard{Index: 0, Count: 3}, "config A", dir + " holds the unfinished work of shard 0/2: delete it to start shard 0/3 afresh"},
	} {
		_, err := OpenWork(dir, c.sh, c.key, "evaluation (configuration, model or options)")
		var stale *StaleError
		if !errors.As(err, &stale) || err.Error() != c.want {
			t.Errorf("%s: %v; want a StaleError %q", c.name, err, c.want)
		}
	}
	if done, err := ReadProgress(dir); err != nil || !slices.Equal(done, []string{"b1"}) {
		t.Errorf("the refused opens changed the record: %v (%v)", done, err)
	}
	if err := os.WriteFile(filepath.Join(dir, ProgressFile), []byte(`{"shard": "0/2", "finished": ["b1"], "extra": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = OpenWork(dir, sh02, "config A", "evaluation")
	var stale *StaleError
	if !errors.As(err, &stale) || !strings.Contains(err.Error(), "a progress record that cannot be read") {
		t.Errorf("an unreadable record: %v; want a StaleError", err)
	}
}

// Remove deletes the folder (the shard is complete); a folder without a record (a
// shard killed before its record was written) is emptied when opened.
func TestWorkRemoveAndFolderWithoutRecord(t *testing.T) {
	dir := filepath.Join(t.TempDir(), WorkDir)
	w, err := OpenWork(dir, sh02, "k", "x")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Finish("a"); err != nil {
		t.Fatal(err)
	}
	if err := w.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the completed shard's work folder is left (%v)", err)
	}
	if _, err := ReadProgress(dir); err == nil {
		t.Error("ReadProgress read a removed folder")
	}
	os.MkdirAll(dir, 0o755)
	stray := filepath.Join(dir, "a.out")
	os.WriteFile(stray, []byte("x"), 0o644)
	if w, err = OpenWork(dir, sh02, "k", "x"); err != nil || w.Kept() != 0 || w.Done("a") {
		t.Fatalf("a folder without a record: %v, kept %d", err, w.Kept())
	}
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Errorf("the folder without a record kept %s (%v)", stray, err)
	}
	if done, err := ReadProgress(dir); err != nil || len(done) != 0 {
		t.Errorf("the new record: %v (%v)", done, err)
	}
}
