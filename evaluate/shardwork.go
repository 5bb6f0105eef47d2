package evaluate

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/internal/shard"
	"github.com/attnscope/attnscope/store"
)

// ShardWorkDir is the folder, inside a shard's output folder, where a sharded
// evaluation keeps every batch it evaluated (<dataset>-bNNNNN.gob) and, rewritten
// (atomically) after each, its progress (ShardProgressFile, a shard manifest). A shard
// killed mid-way keeps them, and its rerun evaluates only the batches missing; the
// folder is removed once the shard's results and manifest are written.
const (
	ShardWorkDir      = ".shard-work"
	ShardProgressFile = "progress.json"
	shardKeyFile      = "key"
)

// ShardWork is the BatchStore of shard sh of an evaluation.
type ShardWork struct {
	dir   string
	sh    shard.Shard
	m     store.ShardManifest
	saved int // batches evaluated by this run
}

// OpenShardWork opens (or starts) the work folder of shard sh in out. key identifies
// what is evaluated (configuration, model, options): work started with another key
// is refused, so that no batch of another evaluation is taken.
func OpenShardWork(out string, sh shard.Shard, key string) (*ShardWork, error) {
	w := &ShardWork{dir: filepath.Join(out, ShardWorkDir), sh: sh,
		m: store.ShardManifest{Command: "evaluate", Index: sh.Index, Count: sh.Count, Assigned: []string{}, Finished: []string{}}}
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		return nil, err
	}
	if err := atomicfile.RemoveTemps(out); err != nil {
		return nil, err
	}
	again := func(why string) error {
		return fmt.Errorf("%s holds the unfinished work of %s: delete it to start shard %s afresh", w.dir, why, sh)
	}
	old, err := os.ReadFile(filepath.Join(w.dir, shardKeyFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		os.Remove(filepath.Join(w.dir, ShardProgressFile)) // killed before the key was written
		return w, atomicfile.WriteFile(filepath.Join(w.dir, shardKeyFile), []byte(key+"\n"))
	case err != nil:
		return nil, err
	case strings.TrimSpace(string(old)) != key:
		return nil, again("another evaluation (configuration, model or options)")
	}
	b, err := os.ReadFile(filepath.Join(w.dir, ShardProgressFile))
	if errors.Is(err, fs.ErrNotExist) {
		return w, nil
	}
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w.m); err != nil || w.m.Command != "evaluate" || w.m.Index != sh.Index || w.m.Count != sh.Count {
		return nil, again("another shard")
	}
	return w, nil
}

// Resumed is how many batches an earlier run evaluated.
func (w *ShardWork) Resumed() int { return len(w.m.Finished) - w.saved }

// Evaluated is how many batches this run evaluated (and saved).
func (w *ShardWork) Evaluated() int { return w.saved }

func (w *ShardWork) path(id string) string {
	return filepath.Join(w.dir, strings.ReplaceAll(id, "/", "-")+".gob")
}

// Load returns the samples of batch b of dataset when the work holds it.
func (w *ShardWork) Load(dataset string, b, _ int) ([]PartSample, bool, error) {
	id := BatchID(dataset, b)
	if _, ok := slices.BinarySearch(w.m.Finished, id); !ok {
		return nil, false, nil
	}
	data, err := os.ReadFile(w.path(id))
	if err != nil {
		return nil, false, fmt.Errorf("resume shard %s: batch %s is marked finished: %w", w.sh, id, err)
	}
	var parts []PartSample
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&parts); err != nil {
		return nil, false, fmt.Errorf("resume shard %s: read %s: %w", w.sh, w.path(id), err)
	}
	for i := range parts { // gob leaves empty lists nil; the report writes them as []
		if parts[i].Result.Piecewise == nil {
			parts[i].Result.Piecewise = []int{}
		}
		if parts[i].Result.RefShare == nil {
			parts[i].Result.RefShare = []float64{}
		}
	}
	return parts, true, nil
}

// Save stores batch b of dataset (of batches) and records it finished.
func (w *ShardWork) Save(dataset string, b, batches int, parts []PartSample) error {
	for k := range batches {
		if id := BatchID(dataset, k); w.sh.Has(id) {
			if i, ok := slices.BinarySearch(w.m.Assigned, id); !ok {
				w.m.Assigned = slices.Insert(w.m.Assigned, i, id)
			}
		}
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(parts); err != nil {
		return err
	}
	id := BatchID(dataset, b)
	if err := atomicfile.WriteFile(w.path(id), buf.Bytes()); err != nil {
		return err
	}
	if i, ok := slices.BinarySearch(w.m.Finished, id); !ok {
		w.m.Finished = slices.Insert(w.m.Finished, i, id)
		w.saved++
	}
	m, err := json.MarshalIndent(w.m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(w.dir, ShardProgressFile), append(m, '\n'))
}

// RemoveShardWork deletes the work folder of out (once the shard is finished).
func RemoveShardWork(out string) error { return os.RemoveAll(filepath.Join(out, ShardWorkDir)) }
