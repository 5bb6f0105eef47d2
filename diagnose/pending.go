package diagnose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"time"

	"github.com/attnscope/attnscope/capture"
	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/internal/buildinfo"
	"github.com/attnscope/attnscope/internal/shard"
	"github.com/attnscope/attnscope/store"
)

// A diagnostic writes its run into a folder beside opts.Out that commit renames to
// Out once every item is written, so Out never holds a half-written run. An unsharded
// run uses a fresh temporary folder, removed on failure. A sharded run uses a fixed
// one, .<Out>.shard-work, with the shard manifest rewritten (atomically) after every
// item (example, batch or gradient step): a shard killed mid-way leaves its finished
// items there and its rerun computes only the missing ones.

// pending is a run being written.
type pending struct {
	run     *store.Run
	tmp     string
	dest    string
	sharded bool
	m       store.ShardManifest // sharded: what is assigned and finished
}

// workDir is the fixed folder a sharded run is written into before commit.
func workDir(out string) string {
	c := filepath.Clean(out)
	return filepath.Join(filepath.Dir(c), "."+filepath.Base(c)+".shard-work")
}

// create starts the run of command, whose items are the n ids format(0) …
// format(n-1); a sharded run resumes its work folder when one is there.
func (s *Setup) create(ctx context.Context, command string, n int, format string) (*pending, error) {
	o := s.opts
	if o.Out == "" {
		return nil, errors.New("--out is required (the run folder to write)")
	}
	if _, err := os.Stat(o.Out); err == nil {
		return nil, fmt.Errorf("output folder %s already exists (choose a new --out)", o.Out)
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(o.Out)), 0o755); err != nil {
		return nil, err
	}
	files, err := capture.HashModel(ctx, o.ModelDir)
	if err != nil {
		return nil, err
	}
	var m store.ShardManifest
	if o.Shard.Sharded() {
		m = store.ShardManifest{Command: command, Index: o.Shard.Index, Count: o.Shard.Count, Assigned: []string{}, Finished: []string{}}
		for i := range n {
			if id := fmt.Sprintf(format, i); o.Shard.Has(id) {
				m.Assigned = append(m.Assigned, id)
			}
		}
		slices.Sort(m.Assigned)
		if p, err := s.resume(m, files); p != nil || err != nil {
			return p, err
		}
	}
	var tmp string
	if o.Shard.Sharded() {
		tmp = workDir(o.Out)
		err = os.Mkdir(tmp, 0o755)
	} else if tmp, err = os.MkdirTemp(filepath.Dir(filepath.Clean(o.Out)), "."+filepath.Base(o.Out)+".partial-"); err == nil {
		err = os.Chmod(tmp, 0o755)
	}
	if err != nil {
		return nil, err
	}
	p := &pending{tmp: tmp, dest: o.Out, sharded: o.Shard.Sharded(), m: m}
	if err := s.start(p, files); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return p, nil
}

// start creates the run in p.tmp (run.json, the token table, the shard manifest).
func (s *Setup) start(p *pending, files []store.FileHash) error {
	o := s.opts
	cfg, _ := json.Marshal(s.Net.Cfg.Raw)
	meta := store.Meta{
		Version: buildinfo.Version(), Command: o.Command, Kind: "diagnose",
		Model: &store.ModelInfo{Dir: o.ModelDir, ModelType: s.Net.Cfg.ModelType, Files: files, Config: cfg},
		DType: "float64", ComputeDType: "float32", Backend: s.backend(),
		Inputs:    nonEmpty(o.GLUE, o.Text, o.Generator),
		StartTime: time.Now().UTC(),
	}
	var err error
	if p.run, err = store.Create(p.tmp, meta); err != nil {
		return err
	}
	if s.Map.Table != nil {
		if err := WriteTable(filepath.Join(p.tmp, "token_table.npy"), s.Map.Table); err != nil {
			return err
		}
	}
	if p.sharded {
		return p.run.WriteShardManifest(p.m)
	}
	return nil
}

func (s *Setup) backend() string {
	if b := s.opts.Backend; b != "" {
		return b
	}
	if b := os.Getenv("GOMLX_BACKEND"); b != "" {
		return b
	}
	return "go"
}

// resume opens the work folder of a sharded run left by an earlier attempt (nil when
// there is none), checking that it was started on the same model, backend, token map
// and items; the settings of its passes are checked when they are prepared.
func (s *Setup) resume(m store.ShardManifest, files []store.FileHash) (*pending, error) {
	dir := workDir(s.opts.Out)
	if _, err := os.Stat(filepath.Join(dir, store.RunFile)); errors.Is(err, fs.ErrNotExist) {
		os.RemoveAll(dir) // killed before its run.json was written: nothing to keep
		return nil, nil
	}
	r, err := store.Open(dir)
	if err != nil {
		return nil, err
	}
	again := func(why string) error {
		return fmt.Errorf("%s holds an unfinished %s shard %d/%d started with %s: delete it to start the shard afresh", dir, m.Command, m.Index, m.Count, why)
	}
	if r.Meta.Model == nil || !reflect.DeepEqual(r.Meta.Model.Files, files) || r.Meta.Backend != s.backend() {
		return nil, again("another model or backend")
	}
	old, err := r.ShardManifests()
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(old, func(o store.ShardManifest) bool { return o.FileName() == m.FileName() })
	if len(old) != 1 || i != 0 || !slices.Equal(old[0].Assigned, m.Assigned) {
		return nil, again("other inputs or another diagnostic")
	}
	if s.Map.Table != nil {
		t, err := ReadTable(filepath.Join(dir, "token_table.npy"), len(s.Map.Table))
		if err != nil || !slices.Equal(t, s.Map.Table) {
			return nil, again("another token table")
		}
	}
	if err := atomicfile.RemoveTemps(dir); err != nil {
		return nil, err
	}
	p := &pending{run: r, tmp: dir, dest: s.opts.Out, sharded: true, m: old[0]}
	passes, err := r.DerivedPasses()
	if err != nil {
		return nil, err
	}
	for _, id := range p.m.Finished { // the manifest is written after an item's files
		if !slices.ContainsFunc(passes, func(pass store.PassInfo) bool { return r.HasDerived(pass.Name, id) }) {
			return nil, again(fmt.Sprintf("item %s marked finished but without its output", id))
		}
	}
	if s.opts.Log != nil {
		fmt.Fprintf(s.opts.Log, "resuming %s shard %d/%d from %s: %d of %d finished, computing %d\n",
			m.Command, m.Index, m.Count, dir, len(p.m.Finished), len(p.m.Assigned), len(p.m.Assigned)-len(p.m.Finished))
	}
	r.Meta.Commands = append(r.Meta.Commands, s.opts.Command)
	return p, r.WriteMeta()
}

func nonEmpty(xs ...string) []string {
	var out []string
	for _, x := range xs {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

// done reports whether item id is computed already or belongs to another shard.
func (p *pending) done(sh shard.Shard, id string) bool {
	if !sh.Has(id) {
		return true
	}
	_, ok := slices.BinarySearch(p.m.Finished, id)
	return p.sharded && ok
}

// todo is how many items are left to compute (total: the shard's).
func (p *pending) todo(total int) int {
	if !p.sharded {
		return total
	}
	return len(p.m.Assigned) - len(p.m.Finished)
}

// finish records item id finished (for a sharded run, in its manifest).
func (p *pending) finish(id string) error {
	if !p.sharded {
		return nil
	}
	if i, ok := slices.BinarySearch(p.m.Finished, id); !ok {
		p.m.Finished = slices.Insert(p.m.Finished, i, id)
	}
	return p.run.WriteShardManifest(p.m)
}

// abort removes an unsharded run; a sharded one keeps what it finished for its rerun.
func (p *pending) abort() {
	if !p.sharded || len(p.m.Finished) == 0 {
		os.RemoveAll(p.tmp)
	}
}

// fail aborts p and returns err, saying for a sharded run that a rerun resumes.
func (p *pending) fail(err error) error {
	p.abort()
	if p.sharded && len(p.m.Finished) > 0 {
		return fmt.Errorf("%w (the %d finished items are kept in %s: rerun the shard to resume)", err, len(p.m.Finished), p.tmp)
	}
	return err
}

// commitSummarized commits the run, an unsharded run with its run-level outputs
// (Summarize; a sharded run gets them when merge joins the shards).
func (p *pending) commitSummarized() error {
	if !p.sharded {
		if err := Summarize(p.run); err != nil {
			return p.fail(err)
		}
	} else if !p.m.Complete() {
		return p.fail(fmt.Errorf("shard %d/%d: %d items not computed", p.m.Index, p.m.Count, len(p.m.Missing())))
	}
	return p.commit()
}

func (p *pending) commit() error {
	now := time.Now().UTC()
	p.run.Meta.EndTime = &now
	if err := p.run.WriteMeta(); err != nil {
		return p.fail(err)
	}
	if err := os.Rename(p.tmp, p.dest); err != nil {
		return p.fail(fmt.Errorf("move the finished run to %s: %w", p.dest, err))
	}
	return nil
}

// shardFinished reports whether Out holds this shard of command finished (a rerun of a
// finished shard does nothing); Out existing otherwise is left to create to refuse.
func (s *Setup) shardFinished(command string) (bool, error) {
	if !s.opts.Shard.Sharded() {
		return false, nil
	}
	r, err := store.Open(s.opts.Out)
	if err != nil {
		return false, nil
	}
	ms, err := r.ShardManifests()
	if err != nil {
		return false, err
	}
	for _, m := range ms {
		if m.Command == command && m.Index == s.opts.Shard.Index && m.Count == s.opts.Shard.Count && m.Complete() {
			return true, nil
		}
	}
	return false, nil
}
