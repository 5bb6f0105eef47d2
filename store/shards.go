package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/internal/shard"
)

// ShardsDir holds the manifests of sharded commands: RUN/shards/<command>-shard-<i>-of-<n>.json.
const ShardsDir = "shards"

// ShardManifest records what one shard of a sharded command (capture, derive) was
// given and what it finished, so that a rerun of a failed shard and a merge know
// what is missing. It is rewritten (atomically) after every sample.
type ShardManifest struct {
	Command  string   `json:"command"`  // "capture" or "derive"
	Index    int      `json:"index"`    // shard i
	Count    int      `json:"count"`    // of n
	Assigned []string `json:"assigned"` // sample ids of the shard, sorted
	Finished []string `json:"finished"` // those finished, sorted
}

// Complete reports whether every assigned sample is finished.
func (m *ShardManifest) Complete() bool {
	for _, id := range m.Assigned {
		if _, ok := slices.BinarySearch(m.Finished, id); !ok {
			return false
		}
	}
	return true
}

// Missing lists the assigned samples not finished.
func (m *ShardManifest) Missing() []string {
	var out []string
	for _, id := range m.Assigned {
		if _, ok := slices.BinarySearch(m.Finished, id); !ok {
			out = append(out, id)
		}
	}
	return out
}

// FileName is the manifest's name inside RUN/shards.
func (m *ShardManifest) FileName() string {
	return m.Command + "-" + shard.Shard{Index: m.Index, Count: m.Count}.Name() + ".json"
}

func (m *ShardManifest) normalize() {
	m.Assigned = slices.Compact(slices.Sorted(slices.Values(m.Assigned)))
	m.Finished = slices.Compact(slices.Sorted(slices.Values(m.Finished)))
	if m.Assigned == nil {
		m.Assigned = []string{}
	}
	if m.Finished == nil {
		m.Finished = []string{}
	}
}

// WriteShardManifest writes m to RUN/shards (atomically).
func (r *Run) WriteShardManifest(m ShardManifest) error {
	if m.Command == "" || strings.ContainsAny(m.Command, `/\.`) {
		return fmt.Errorf("shard manifest: command %q cannot name a file", m.Command)
	}
	if err := (shard.Shard{Index: m.Index, Count: m.Count}).Check(); err != nil || m.Count == 0 {
		return fmt.Errorf("shard manifest: shard %d/%d: 0 ≤ i < n expected", m.Index, m.Count)
	}
	m.normalize()
	dir := filepath.Join(r.dir, ShardsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write shard manifest: %w", err)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, m.FileName()), append(b, '\n'))
}

// ShardManifests reads every manifest of RUN/shards, sorted by command, count and index.
func (r *Run) ShardManifests() ([]ShardManifest, error) {
	dir := filepath.Join(r.dir, ShardsDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []ShardManifest
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		var m ShardManifest
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("read %s: a shard manifest (command, index, count, assigned, finished) expected: %w", path, err)
		}
		if m.FileName() != e.Name() {
			return nil, fmt.Errorf("read %s: it describes %s, not its own file name", path, m.FileName())
		}
		m.normalize()
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b ShardManifest) int {
		if c := strings.Compare(a.Command, b.Command); c != 0 {
			return c
		}
		if a.Count != b.Count {
			return a.Count - b.Count
		}
		return a.Index - b.Index
	})
	return out, nil
}

// sampleFiles are a sample's files in the order a copy writes them: sample.json,
// which marks the sample finished, last.
var sampleFiles = []string{AttentionFile, HiddenFile, QKVFile, SampleFile}

// AdoptSample copies finished sample id of src into r (tensor files first, sample.json
// last, each atomically), for merging shards. When r already has the sample finished,
// its files must be byte-identical to src's (nothing is copied: copied is false);
// otherwise an error names the first file that differs.
func (r *Run) AdoptSample(src *Run, id string) (copied bool, err error) {
	if err := CheckSampleID(id); err != nil {
		return false, err
	}
	if !src.Finished(id) {
		return false, fmt.Errorf("sample %s of %s is not finished", id, src.dir)
	}
	if r.Finished(id) {
		for _, f := range sampleFiles {
			if err := sameFile(filepath.Join(src.SampleDir(id), f), filepath.Join(r.SampleDir(id), f)); err != nil {
				return false, fmt.Errorf("sample %s: %w", id, err)
			}
		}
		return false, nil
	}
	if err := os.MkdirAll(r.SampleDir(id), 0o755); err != nil {
		return false, err
	}
	for _, f := range sampleFiles {
		from, to := filepath.Join(src.SampleDir(id), f), filepath.Join(r.SampleDir(id), f)
		if err := copyFile(from, to); errors.Is(err, fs.ErrNotExist) {
			os.Remove(to) // an optional file the sample lacks: no stale one may stay
			continue
		} else if err != nil {
			return false, err
		}
	}
	return true, nil
}

// AdoptDerived copies src's output of pass for sample (its metric rows first, the .npy
// last) into r, whose pass must be prepared with the same settings. As with
// AdoptSample, an output r already has must be byte-identical.
func (r *Run) AdoptDerived(src *Run, pass, sample string) (copied bool, err error) {
	if !src.HasDerived(pass, sample) {
		return false, fmt.Errorf("pass %q has no output for sample %s in %s", pass, sample, src.dir)
	}
	files := [][2]string{
		{src.derivedMetricsPath(pass, sample), r.derivedMetricsPath(pass, sample)},
		{src.DerivedPath(pass, sample), r.DerivedPath(pass, sample)},
	}
	if r.HasDerived(pass, sample) {
		for _, f := range files {
			if err := sameFile(f[0], f[1]); err != nil {
				return false, fmt.Errorf("pass %q, sample %s: %w", pass, sample, err)
			}
		}
		return false, nil
	}
	for _, f := range files {
		if err := copyFile(f[0], f[1]); errors.Is(err, fs.ErrNotExist) {
			os.Remove(f[1])
			continue
		} else if err != nil {
			return false, err
		}
	}
	return true, nil
}

// copyFile copies from to to atomically; an error wrapping fs.ErrNotExist when from
// does not exist.
func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	return atomicfile.WriteWith(to, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// sameFile reports an error unless a and b both miss or hold the same bytes.
func sameFile(a, b string) error {
	x, errA := os.ReadFile(a)
	y, errB := os.ReadFile(b)
	switch {
	case errors.Is(errA, fs.ErrNotExist) && errors.Is(errB, fs.ErrNotExist):
		return nil
	case errA != nil:
		return errA
	case errors.Is(errB, fs.ErrNotExist):
		return fmt.Errorf("%s exists but %s does not", a, b)
	case errB != nil:
		return errB
	case !bytes.Equal(x, y):
		return fmt.Errorf("%s and %s differ", a, b)
	}
	return nil
}

// DerivedOutputs lists the ids with an output of pass (RUN/derived/<pass>/<id>.npy),
// sorted: the samples of a capture run, or the examples and batches of a run without
// samples (a diagnose run).
func (r *Run) DerivedOutputs(pass string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(r.dir, DerivedDir, pass))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".npy")
		if ok && e.Type().IsRegular() && !strings.HasPrefix(id, ".") && CheckSampleID(id) == nil {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out, nil
}

// RootFiles lists the regular files at the top of the run folder other than run.json
// and the metrics table (for a diagnose run: token_table.npy), sorted.
func (r *Run) RootFiles() ([]string, error) {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && !strings.HasPrefix(n, ".") && n != RunFile && n != MetricsCSV && n != MetricsParquet {
			out = append(out, n)
		}
	}
	return out, nil
}

// AdoptRootFile copies the top-level file name of src into r (atomically); a file r
// already has must be byte-identical (copied is false).
func (r *Run) AdoptRootFile(src *Run, name string) (copied bool, err error) {
	if name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return false, fmt.Errorf("%s: not a top-level file name", name)
	}
	to := filepath.Join(r.dir, name)
	if _, err := os.Stat(to); err == nil {
		return false, sameFile(filepath.Join(src.dir, name), to)
	}
	return true, copyFile(filepath.Join(src.dir, name), to)
}
