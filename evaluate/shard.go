package evaluate

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/internal/shard"
	"github.com/attnscope/attnscope/store"
)

// A sharded evaluation (--shard i/n) evaluates the batches of each dataset whose id
// (dataset1/b00000, …) hashes to shard i, in the unsharded run's batches, so every
// sample is evaluated exactly as there. Its folder holds the shard's report, the
// evaluated samples with what the aggregates need (ShardDataFile, gob: exact floats,
// NaN kept) and, written last, the shard manifest (ShardManifestFile). MergeShards
// recomputes the unsharded report from the n shards' samples.

// Files of a shard's folder.
const (
	ShardManifestFile = "shard.json"
	ShardDataFile     = "shard-samples.gob"
)

// PartSample is one evaluated sample with what the dataset's aggregates need.
type PartSample struct {
	Result SampleResult
	Scored bool      // its reference-attention shares count (labels and attention)
	Right  []float64 // shares of its scored tokens predicted right
	Wrong  []float64 // and wrong
}

// ReportPart is a shard's evaluated samples of both datasets.
type ReportPart struct {
	Name                string
	ID, OOD             []PartSample
	IDBatch, OODBatches int // batches of each dataset (all shards)
}

// BatchID names batch b of dataset key.
func BatchID(key string, b int) string { return fmt.Sprintf("%s/b%05d", key, b) }

// WriteShard writes rep's samples and the manifest of shard sh into dir (the report
// itself is written by the caller).
func WriteShard(dir string, sh shard.Shard, rep *Report) error {
	part := ReportPart{Name: rep.Name, ID: rep.ID.parts, OOD: rep.OOD.parts, IDBatch: rep.ID.batches, OODBatches: rep.OOD.batches}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(part); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ShardDataFile), buf.Bytes()); err != nil {
		return err
	}
	m := store.ShardManifest{Command: "evaluate", Index: sh.Index, Count: sh.Count, Assigned: []string{}}
	for _, d := range []struct {
		key string
		n   int
	}{{"dataset1", rep.ID.batches}, {"dataset2", rep.OOD.batches}} {
		for b := range d.n {
			if id := BatchID(d.key, b); sh.Has(id) {
				m.Assigned = append(m.Assigned, id)
			}
		}
	}
	m.Finished = m.Assigned
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, ShardManifestFile), append(b, '\n'))
}

// ReadShardManifest reads dir/shard.json.
func ReadShardManifest(dir string) (*store.ShardManifest, error) {
	path := filepath.Join(dir, ShardManifestFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m store.ShardManifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil || m.Command != "evaluate" || m.Count < 1 || m.Index < 0 || m.Index >= m.Count {
		return nil, fmt.Errorf("read %s: an evaluate shard manifest (command \"evaluate\", index, count, assigned, finished) expected", path)
	}
	return &m, nil
}

// IsShardOutput reports whether dir holds an evaluate shard's manifest.
func IsShardOutput(dir string) bool {
	m, err := ReadShardManifest(dir)
	return err == nil && m.Command == "evaluate"
}

// ShardFinished reports whether dir holds shard sh finished (its rerun does nothing).
func ShardFinished(dir string, sh shard.Shard) (bool, error) {
	m, err := ReadShardManifest(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := os.Stat(filepath.Join(dir, ShardDataFile)); err != nil {
		return false, nil
	}
	return m.Index == sh.Index && m.Count == sh.Count && slices.Equal(m.Assigned, m.Finished), nil
}

// MergeShards reads the n shard folders dirs of one evaluation and returns the
// report the unsharded run writes: the samples of every shard in their order, the
// aggregates recomputed from them. It checks that the n shards are all there,
// finished, and that together they evaluated every batch exactly once.
func MergeShards(dirs []string) (*Report, error) {
	var parts []ReportPart
	seen := map[int]string{}
	count := 0
	for _, d := range dirs {
		m, err := ReadShardManifest(d)
		if err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
		if !slices.Equal(m.Assigned, m.Finished) {
			return nil, fmt.Errorf("merge: evaluate shard %d/%d in %s has not finished: rerun it, then merge", m.Index, m.Count, d)
		}
		if count != 0 && m.Count != count {
			return nil, fmt.Errorf("merge: %s and %s are shards of different splits (%d and %d shards)", dirs[0], d, count, m.Count)
		}
		count = m.Count
		if prev, ok := seen[m.Index]; ok {
			return nil, fmt.Errorf("merge: %s and %s are both shard %d/%d", prev, d, m.Index, m.Count)
		}
		seen[m.Index] = d
		f, err := os.Open(filepath.Join(d, ShardDataFile))
		if err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
		var p ReportPart
		err = gob.NewDecoder(io.LimitReader(f, 1<<34)).Decode(&p)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("merge: read %s: %w", filepath.Join(d, ShardDataFile), err)
		}
		if len(parts) > 0 && (p.Name != parts[0].Name || p.IDBatch != parts[0].IDBatch || p.OODBatches != parts[0].OODBatches) {
			return nil, fmt.Errorf("merge: %s and %s are not shards of one evaluation (their names or datasets differ)", dirs[0], d)
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 || len(parts) != count {
		return nil, fmt.Errorf("merge: %d of the %d evaluate shards given: merge them all (or run the missing ones)", len(parts), count)
	}
	rep := &Report{Name: parts[0].Name, ID: &DatasetResult{Name: "dataset1"}, OOD: &DatasetResult{Name: "dataset2"}}
	for _, d := range []struct {
		res *DatasetResult
		get func(ReportPart) []PartSample
	}{{rep.ID, func(p ReportPart) []PartSample { return p.ID }}, {rep.OOD, func(p ReportPart) []PartSample { return p.OOD }}} {
		var all []PartSample
		for _, p := range parts {
			all = append(all, d.get(p)...)
		}
		for i := range all { // gob leaves empty lists nil; the report writes them as []
			if all[i].Result.Piecewise == nil {
				all[i].Result.Piecewise = []int{}
			}
			if all[i].Result.RefShare == nil {
				all[i].Result.RefShare = []float64{}
			}
		}
		slices.SortFunc(all, func(a, b PartSample) int { return a.Result.Index - b.Result.Index })
		for i := 1; i < len(all); i++ {
			if all[i].Result.Index == all[i-1].Result.Index {
				return nil, fmt.Errorf("merge: two shards evaluated sample %d of %s", all[i].Result.Index, d.res.Name)
			}
		}
		d.res.finish(all)
	}
	rep.Compare()
	return rep, nil
}
