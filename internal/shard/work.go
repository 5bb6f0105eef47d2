package shard

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/attnscope/attnscope/internal/atomicfile"
)

// A sharded command that computes its items (human sessions, batches, examples) one
// at a time keeps them in a work folder with a progress record, ProgressFile, that it
// rewrites (atomically) after every item: a shard killed mid-way keeps the items it
// finished, and its rerun computes only the others. The record names the shard and
// what it computes (the SHA-256 of a key: its inputs and settings), so that no item
// of other work is taken. The folder is removed once the shard's outputs are written.
const (
	WorkDir      = ".shard-work" // the work folder's usual name, inside a shard's output folder
	ProgressFile = "progress.json"
)

// Work is the work folder of one shard.
type Work struct {
	dir  string
	rec  progress
	kept int
}

// progress is the record of ProgressFile.
type progress struct {
	Shard    string   `json:"shard"`    // i/n
	Key      string   `json:"key"`      // SHA-256 of the key, hex
	Finished []string `json:"finished"` // ids of the finished items, sorted
}

// StaleError is a work folder that holds the work of another shard, of another key, or
// a progress record that cannot be read.
type StaleError struct {
	Dir, Why string
	Shard    Shard
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("%s holds the unfinished work of %s: delete it to start shard %s afresh", e.Dir, e.Why, e.Shard)
}

// OpenWork opens the work folder dir of shard sh, or creates it with an empty record.
// key identifies what the shard computes and what says, for the error, what the key
// covers ("evaluation (configuration, model or options)"): a folder whose record
// names another shard or key is refused with a *StaleError. A folder without a record
// (killed before it was written) is emptied. Temporary files a killed writer left in
// dir (atomicfile) are removed.
func OpenWork(dir string, sh Shard, key, what string) (*Work, error) {
	sum := sha256.Sum256([]byte(key))
	w := &Work{dir: dir, rec: progress{Shard: sh.String(), Key: hex.EncodeToString(sum[:]), Finished: []string{}}}
	b, err := os.ReadFile(w.path())
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		return w, w.save()
	case err != nil:
		return nil, err
	}
	var old progress
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	switch {
	case dec.Decode(&old) != nil:
		return nil, &StaleError{Dir: dir, Shard: sh, Why: "a progress record that cannot be read (" + ProgressFile + ")"}
	case old.Shard != w.rec.Shard:
		return nil, &StaleError{Dir: dir, Shard: sh, Why: "shard " + old.Shard}
	case old.Key != w.rec.Key:
		return nil, &StaleError{Dir: dir, Shard: sh, Why: "another " + what}
	}
	if err := atomicfile.RemoveTemps(dir); err != nil {
		return nil, err
	}
	w.rec.Finished = slices.Compact(slices.Sorted(slices.Values(old.Finished)))
	if w.rec.Finished == nil {
		w.rec.Finished = []string{}
	}
	w.kept = len(w.rec.Finished)
	return w, nil
}

func (w *Work) path() string { return filepath.Join(w.dir, ProgressFile) }

func (w *Work) save() error {
	b, err := json.MarshalIndent(w.rec, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(w.path(), append(b, '\n'))
}

// Dir is the work folder, where the shard keeps its items' outputs.
func (w *Work) Dir() string { return w.dir }

// Done reports whether item id is finished.
func (w *Work) Done(id string) bool {
	_, ok := slices.BinarySearch(w.rec.Finished, id)
	return ok
}

// Finished lists the finished items, sorted (the caller does not change it).
func (w *Work) Finished() []string { return w.rec.Finished }

// Kept is how many items were finished when the folder was opened (by earlier runs).
func (w *Work) Kept() int { return w.kept }

// Computed is how many items were finished since the folder was opened.
func (w *Work) Computed() int { return len(w.rec.Finished) - w.kept }

// Finish records item id finished (its outputs written), rewriting the record
// atomically.
func (w *Work) Finish(id string) error {
	if i, ok := slices.BinarySearch(w.rec.Finished, id); !ok {
		w.rec.Finished = slices.Insert(w.rec.Finished, i, id)
	}
	return w.save()
}

// Remove deletes the work folder, once the shard's outputs are written.
func (w *Work) Remove() error { return os.RemoveAll(w.dir) }

// ReadProgress returns the items finished in the work folder dir, reading its record
// without opening the folder (to watch a shard's progress).
func ReadProgress(dir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, ProgressFile))
	if err != nil {
		return nil, err
	}
	var p progress
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, ProgressFile), err)
	}
	return p.Finished, nil
}
