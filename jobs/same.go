package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/attnscope/attnscope/store"
)

// provenanceFields are run.json's fields that record how and when a run was made
// rather than what it holds; SameRun ignores them.
var provenanceFields = []string{"command", "start_time", "end_time", "compiled_graphs", "version"}

// SameRun reports (as an error naming the first difference) whether the run folders a
// and b hold the same run: every file byte-identical, except that sample.json's
// "seconds" (how long the model took) and run.json's provenance (command lines, start
// and end times, graphs compiled, tool version) may differ, and that the shard
// manifests (RUN/shards) of either are not compared. It is how a merged sharded run
// is checked against a single-machine one.
func SameRun(a, b string) error {
	fa, err := runFiles(a)
	if err != nil {
		return err
	}
	fb, err := runFiles(b)
	if err != nil {
		return err
	}
	if !slices.Equal(fa, fb) {
		return fmt.Errorf("%s and %s hold different files: %s", a, b, firstListDiff(fa, fb))
	}
	for _, rel := range fa {
		x, err := os.ReadFile(filepath.Join(a, rel))
		if err != nil {
			return err
		}
		y, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil {
			return err
		}
		switch {
		case rel == store.RunFile:
			x, y, err = dropFields(x, y, provenanceFields)
		case filepath.Base(rel) == store.SampleFile:
			x, y, err = dropFields(x, y, []string{"seconds"})
		}
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if !bytes.Equal(x, y) {
			return fmt.Errorf("%s differs between %s and %s", rel, a, b)
		}
	}
	return nil
}

func runFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			if rel == store.ShardsDir {
				return filepath.SkipDir
			}
			return nil
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	slices.Sort(out)
	return out, err
}

func firstListDiff(a, b []string) string {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return "only the first has " + x
		}
	}
	for _, y := range b {
		if !slices.Contains(a, y) {
			return "only the second has " + y
		}
	}
	return "?"
}

// dropFields re-encodes two JSON objects without the given top-level fields.
func dropFields(x, y []byte, fields []string) ([]byte, []byte, error) {
	strip := func(b []byte) ([]byte, error) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		for _, f := range fields {
			delete(m, f)
		}
		return json.Marshal(m)
	}
	sx, err := strip(x)
	if err != nil {
		return nil, nil, err
	}
	sy, err := strip(y)
	if err != nil {
		return nil, nil, err
	}
	return sx, sy, nil
}
