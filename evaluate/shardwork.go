package evaluate

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/internal/shard"
)

// A sharded evaluation keeps every batch it evaluated (<dataset>-bNNNNN.gob) in its
// work folder OUT/.shard-work (shard.Work, which records the batch finished). A shard
// killed mid-way keeps them, and its rerun evaluates only the batches missing; the
// folder is removed once the shard's results and manifest are written.

// ShardWork is the BatchStore of shard sh of an evaluation.
type ShardWork struct {
	w  *shard.Work
	sh shard.Shard
}

// OpenShardWork opens (or starts) the work folder of shard sh in out. key identifies
// what is evaluated (configuration, model, options): work started with another key
// is refused, so that no batch of another evaluation is taken.
func OpenShardWork(out string, sh shard.Shard, key string) (*ShardWork, error) {
	w, err := shard.OpenWork(filepath.Join(out, shard.WorkDir), sh, key, "evaluation (configuration, model or options)")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.RemoveTemps(out); err != nil { // of a report killed mid-write
		return nil, err
	}
	return &ShardWork{w: w, sh: sh}, nil
}

// Resumed is how many batches an earlier run evaluated.
func (w *ShardWork) Resumed() int { return w.w.Kept() }

// Evaluated is how many batches this run evaluated (and saved).
func (w *ShardWork) Evaluated() int { return w.w.Computed() }

func (w *ShardWork) path(id string) string {
	return filepath.Join(w.w.Dir(), strings.ReplaceAll(id, "/", "-")+".gob")
}

// Load returns the samples of batch b of dataset when the work holds it.
func (w *ShardWork) Load(dataset string, b, _ int) ([]PartSample, bool, error) {
	id := BatchID(dataset, b)
	if !w.w.Done(id) {
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

// Save stores batch b of dataset and records it finished.
func (w *ShardWork) Save(dataset string, b, _ int, parts []PartSample) error {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(parts); err != nil {
		return err
	}
	id := BatchID(dataset, b)
	if err := atomicfile.WriteFile(w.path(id), buf.Bytes()); err != nil {
		return err
	}
	return w.w.Finish(id)
}

// RemoveShardWork deletes the work folder of out (once the shard is finished).
func RemoveShardWork(out string) error { return os.RemoveAll(filepath.Join(out, shard.WorkDir)) }
