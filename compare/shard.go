package compare

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/parquet-go/parquet-go"

	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/internal/shard"
	"github.com/attnscope/attnscope/store"
)

// A sharded compare (Options.Shard i/n) compares the pairs of the human sessions whose
// id hashes to shard i (internal/shard), writes its tables to OUT/shard-<i>-of-<n>/ and,
// once they are all written, the shard manifest OUT/shard-<i>-of-<n>/shard.json. The
// tables of a shard are published together (atomically), so a shard killed mid-way
// leaves no table and no manifest; its rerun compares only the human sessions its work
// folder does not hold (resume.go); the rerun of a finished shard (manifest present,
// same configuration and sessions) computes nothing.
// MergeShards joins the n shards' tables into the tables the unsharded run writes.

// ShardManifestFile is the manifest of a sharded compare's output folder.
const ShardManifestFile = "shard.json"

// ShardManifest records what one shard of a compare was given and finished, and what
// a merge needs to put its rows back in the unsharded order.
type ShardManifest struct {
	store.ShardManifest
	// Order is every human session of the human run in the order of the unsharded
	// tables (rows are grouped by human session, in this order).
	Order []string `json:"order"`
	// Keys names, for every table stem, the column holding a row's human session.
	Keys map[string]string `json:"keys"`
	// Config is the SHA-256 of the comparator configuration.
	Config string `json:"config"`
}

// mine keeps the pairs whose (first) human session belongs to the shard.
func (e *engine) mine(pairs []pairIdx) []pairIdx {
	if !e.opt.Shard.Sharded() {
		return pairs
	}
	out := pairs[:0:0]
	for _, p := range pairs {
		if st := e.human.metas[p.h].Stem; e.opt.Shard.Has(st) && (e.only == "" || st == e.only) {
			out = append(out, p)
		}
	}
	return out
}

// tableKeys maps every output stem of cfg to the column naming its rows' human session.
func tableKeys(cfg *Config) map[string]string {
	keys := map[string]string{}
	for _, c := range cfg.Comparisons {
		for _, s := range c.Machine {
			keys[c.Output(s)] = "input_human_filestem"
		}
		if c.humanPairs() {
			keys[c.Name+c.Human.Suffix] = "human_a"
		}
	}
	return keys
}

func tableFiles(dir string, cfg *Config) []string {
	var out []string
	for stem := range tableKeys(cfg) {
		out = append(out, filepath.Join(dir, stem+".csv"))
	}
	slices.Sort(out)
	return out
}

func newManifest(opt Options, human *side, cfg *Config) ShardManifest {
	m := ShardManifest{Keys: tableKeys(cfg), Config: opt.ConfigSum}
	m.Command, m.Index, m.Count = "compare", opt.Shard.Index, opt.Shard.Count
	m.Assigned, m.Order = []string{}, []string{}
	for _, h := range human.metas {
		m.Order = append(m.Order, h.Stem)
		if opt.Shard.Has(h.Stem) {
			m.Assigned = append(m.Assigned, h.Stem)
		}
	}
	slices.Sort(m.Assigned)
	return m
}

func writeShardManifest(dir string, opt Options, human *side, cfg *Config) error {
	m := newManifest(opt, human, cfg)
	m.Finished = m.Assigned
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, ShardManifestFile), append(b, '\n'))
}

// ReadShardManifest reads dir/shard.json.
func ReadShardManifest(dir string) (*ShardManifest, error) {
	path := filepath.Join(dir, ShardManifestFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m ShardManifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil || m.Command != "compare" || (shard.Shard{Index: m.Index, Count: m.Count}).Check() != nil || m.Count == 0 {
		return nil, fmt.Errorf("read %s: a compare shard manifest (command \"compare\", index, count, assigned, finished, order, keys, config) expected", path)
	}
	return &m, nil
}

// IsShardOutput reports whether dir is the output folder of a sharded compare.
func IsShardOutput(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ShardManifestFile))
	return err == nil
}

// shardFinished reports whether dir holds this shard finished with the same
// configuration and sessions.
func shardFinished(dir string, opt Options, human *side, cfg *Config) (bool, error) {
	old, err := ReadShardManifest(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	now := newManifest(opt, human, cfg)
	if old.Config != now.Config || !slices.Equal(old.Order, now.Order) || !slices.Equal(old.Assigned, now.Assigned) || !old.Complete() {
		return false, nil
	}
	for _, f := range tableFiles(dir, cfg) {
		if _, err := os.Stat(f); err != nil {
			return false, nil
		}
	}
	return true, nil
}

// table is one shard's table: its CSV header and records, its Parquet rows.
type table struct {
	header []string
	recs   [][]string
	rows   []parquet.Row
	cols   []column
}

func readTable(dir, stem string) (*table, error) {
	csvPath, pqPath := filepath.Join(dir, stem+".csv"), filepath.Join(dir, stem+".parquet")
	b, err := os.ReadFile(csvPath)
	if err != nil {
		return nil, err
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(recs) == 0 {
		return nil, fmt.Errorf("read %s: a CSV table with a header expected (%v)", csvPath, err)
	}
	t := &table{header: recs[0], recs: recs[1:]}
	f, err := os.Open(pqPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", pqPath, err)
	}
	fields := map[string]bool{}
	for _, fl := range pf.Schema().Fields() {
		fields[fl.Name()] = fl.Type().Kind() == parquet.Double
	}
	for _, h := range t.header {
		float, ok := fields[h]
		if !ok {
			return nil, fmt.Errorf("read %s: column %q of %s is missing", pqPath, h, csvPath)
		}
		t.cols = append(t.cols, column{h, float})
	}
	r := parquet.NewReader(pf)
	defer r.Close()
	t.rows = make([]parquet.Row, r.NumRows())
	for n := 0; n < len(t.rows); {
		k, err := r.ReadRows(t.rows[n:])
		n += k
		if err == io.EOF && n == len(t.rows) {
			break
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read %s: %w", pqPath, err)
		}
		if k == 0 {
			return nil, fmt.Errorf("read %s: %d of %d rows read", pqPath, n, len(t.rows))
		}
	}
	if len(t.rows) != len(t.recs) {
		return nil, fmt.Errorf("%s holds %d rows and %s %d", csvPath, len(t.recs), pqPath, len(t.rows))
	}
	return t, nil
}

// MergeShards joins the tables of the sharded compare outputs dirs (shard-<i>-of-<n>
// folders, all n of one run) into out: every table's rows, grouped by human session
// in the order of the unsharded run, written as CSV and Parquet exactly as the
// unsharded run writes them. Everything is read and checked first (one configuration,
// all n shards, each finished, every row in the shard of its session, the same
// columns), so a failed check writes nothing; merging again rewrites the same bytes.
// It returns the tables written and their rows.
func MergeShards(out string, dirs []string) (tables []string, rows int, err error) {
	ms, err := checkShardSet(dirs)
	if err != nil {
		return nil, 0, err
	}
	stems := make([]string, 0, len(ms[0].Keys))
	for s := range ms[0].Keys {
		stems = append(stems, s)
	}
	slices.Sort(stems)
	merged := make([]*table, len(stems))
	for k, stem := range stems {
		if merged[k], err = mergeTable(stem, ms[0].Keys[stem], ms, dirs); err != nil {
			return nil, 0, err
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, 0, err
	}
	for k, stem := range stems {
		w, err := createTable(out, stem, merged[k].cols)
		if err != nil {
			return tables, rows, err
		}
		for i := range merged[k].recs {
			if err := w.writeRaw(merged[k].recs[i], merged[k].rows[i]); err != nil {
				w.abort()
				return tables, rows, err
			}
		}
		if err := w.commit(); err != nil {
			return tables, rows, err
		}
		tables = append(tables, filepath.Join(out, stem+".csv"))
		rows += len(merged[k].recs)
	}
	return tables, rows, nil
}

// checkShardSet reads the manifests of dirs, indexed by shard, checking that they are
// the n finished shards of one compare.
func checkShardSet(dirs []string) ([]*ShardManifest, error) {
	if len(dirs) == 0 {
		return nil, errors.New("merge: no compare shard folders given")
	}
	var ms []*ShardManifest
	for _, d := range dirs {
		m, err := ReadShardManifest(d)
		if err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
		if !m.Complete() {
			return nil, fmt.Errorf("merge: compare shard %d/%d in %s has not finished: rerun it, then merge", m.Index, m.Count, d)
		}
		if len(ms) > 0 {
			a := ms[0]
			if m.Count != a.Count || m.Config != a.Config || !slices.Equal(m.Order, a.Order) || fmt.Sprint(m.Keys) != fmt.Sprint(a.Keys) {
				return nil, fmt.Errorf("merge: %s and %s are not shards of one compare (their configuration, human sessions or shard counts differ)", dirs[0], d)
			}
		}
		ms = append(ms, m)
	}
	n := ms[0].Count
	byIndex := make([]*ShardManifest, n)
	for i, m := range ms {
		if byIndex[m.Index] != nil {
			return nil, fmt.Errorf("merge: shard %d/%d is given twice (%s)", m.Index, n, dirs[i])
		}
		byIndex[m.Index] = m
	}
	if len(ms) != n {
		return nil, fmt.Errorf("merge: %d of the %d compare shards given: merge them all (or run the missing ones)", len(ms), n)
	}
	return ms, nil
}

// mergeTable reads stem from every shard and orders its rows by the position of their
// human session (column key) in the unsharded order.
func mergeTable(stem, key string, ms []*ShardManifest, dirs []string) (*table, error) {
	pos := map[string]int{}
	for i, id := range ms[0].Order {
		pos[id] = i
	}
	type ref struct {
		t      *table
		i, pos int
	}
	var refs []ref
	var first *table
	for k, d := range dirs {
		t, err := readTable(d, stem)
		if err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
		if first == nil {
			first = t
		} else if !slices.Equal(t.cols, first.cols) {
			return nil, fmt.Errorf("merge: %s has other columns in %s than in %s", stem+".csv", d, dirs[0])
		}
		col := slices.Index(t.header, key)
		if col < 0 {
			return nil, fmt.Errorf("merge: %s in %s has no column %s", stem+".csv", d, key)
		}
		for i, rec := range t.recs {
			p, ok := pos[rec[col]]
			if _, mine := slices.BinarySearch(ms[k].Assigned, rec[col]); !ok || !mine {
				return nil, fmt.Errorf("merge: %s in %s holds a row of human session %q, which is not one of shard %d/%d", stem+".csv", d, rec[col], ms[k].Index, ms[k].Count)
			}
			refs = append(refs, ref{t, i, p})
		}
	}
	slices.SortStableFunc(refs, func(a, b ref) int { return a.pos - b.pos })
	out := &table{header: first.header, cols: first.cols}
	for _, r := range refs {
		out.recs = append(out.recs, r.t.recs[r.i])
		out.rows = append(out.rows, r.t.rows[r.i])
	}
	return out, nil
}
