package diagnose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/attnscope/attnscope/capture"
	"github.com/attnscope/attnscope/internal/buildinfo"
	"github.com/attnscope/attnscope/internal/shard"
	"github.com/attnscope/attnscope/store"
)

// A diagnostic writes its run into a folder beside opts.Out that commit renames to
// Out once every item is written, so Out never holds a half-written run. An unsharded
// run uses a fresh temporary folder, removed on failure. A sharded run uses a fixed
// work folder, .<Out>.shard-work (shard.Work), holding the run in its subfolder run/
// and recording every item (example, batch or gradient step) finished once its output
// is written: a shard killed mid-way leaves its finished items there and its rerun
// computes only the missing ones.

// pending is a run being written.
type pending struct {
	run     *store.Run
	tmp     string
	dest    string
	sharded bool
	m       store.ShardManifest // sharded: what is assigned
	work    *shard.Work         // sharded: what is finished
}

// workDir is the fixed work folder of a sharded run.
func workDir(out string) string {
	c := filepath.Clean(out)
	return filepath.Join(filepath.Dir(c), "."+filepath.Base(c)+".shard-work")
}

// runDir is where a sharded run is written before commit.
func runDir(out string) string { return filepath.Join(workDir(out), "run") }

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
	if o.Shard.Sharded() {
		m := store.ShardManifest{Command: command, Index: o.Shard.Index, Count: o.Shard.Count, Assigned: []string{}, Finished: []string{}}
		for i := range n {
			if id := fmt.Sprintf(format, i); o.Shard.Has(id) {
				m.Assigned = append(m.Assigned, id)
			}
		}
		slices.Sort(m.Assigned)
		return s.openShard(m, files)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(o.Out)), "."+filepath.Base(o.Out)+".partial-")
	if err == nil {
		err = os.Chmod(tmp, 0o755)
	}
	if err != nil {
		return nil, err
	}
	p := &pending{tmp: tmp, dest: o.Out}
	if err := s.start(p, files); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return p, nil
}

// start creates the run in p.tmp (run.json, the token table).
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
		return WriteTable(filepath.Join(p.tmp, "token_table.npy"), s.Map.Table)
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

// openShard opens the work folder of a sharded run (refused when an earlier attempt
// started it on another model, backend, token map or items: the work's key) and the
// run in it, started afresh unless an earlier attempt wrote its run.json; the
// settings of its passes are checked when they are prepared.
func (s *Setup) openShard(m store.ShardManifest, files []store.FileHash) (*pending, error) {
	key := fmt.Sprintf("%s\x00%q\x00%v\x00%q\x00%v", m.Command, m.Assigned, files, s.backend(), s.Map.Table)
	w, err := shard.OpenWork(workDir(s.opts.Out), s.opts.Shard, key, m.Command+" (model, backend, token table or items)")
	if err != nil {
		return nil, err
	}
	p := &pending{tmp: runDir(s.opts.Out), dest: s.opts.Out, sharded: true, m: m, work: w}
	if _, err := os.Stat(filepath.Join(p.tmp, store.RunFile)); errors.Is(err, fs.ErrNotExist) && w.Kept() == 0 {
		if err := os.RemoveAll(p.tmp); err != nil { // killed before its run.json was written: nothing to keep
			return nil, err
		}
		if err := s.start(p, files); err != nil {
			w.Remove()
			return nil, err
		}
		return p, nil
	}
	if p.run, err = store.Open(p.tmp); err != nil {
		return nil, err
	}
	passes, err := p.run.DerivedPasses()
	if err != nil {
		return nil, err
	}
	for _, id := range w.Finished() { // recorded after an item's files
		if !slices.ContainsFunc(passes, func(pass store.PassInfo) bool { return p.run.HasDerived(pass.Name, id) }) {
			return nil, fmt.Errorf("%s: item %s is recorded finished but has no output: delete the folder to start shard %s afresh", w.Dir(), id, s.opts.Shard)
		}
	}
	if s.opts.Log != nil {
		fmt.Fprintf(s.opts.Log, "resuming %s shard %d/%d from %s: %d of %d finished, computing %d\n",
			m.Command, m.Index, m.Count, w.Dir(), w.Kept(), len(m.Assigned), len(m.Assigned)-w.Kept())
	}
	p.run.Meta.Commands = append(p.run.Meta.Commands, s.opts.Command)
	return p, p.run.WriteMeta()
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
	return !sh.Has(id) || p.sharded && p.work.Done(id)
}

// todo is how many items are left to compute (total: the shard's).
func (p *pending) todo(total int) int {
	if !p.sharded {
		return total
	}
	return len(p.m.Assigned) - len(p.work.Finished())
}

// finish records item id finished (for a sharded run, in its work folder).
func (p *pending) finish(id string) error {
	if !p.sharded {
		return nil
	}
	return p.work.Finish(id)
}

// kept is how many items a sharded run keeps for its rerun.
func (p *pending) kept() int {
	if !p.sharded {
		return 0
	}
	return len(p.work.Finished())
}

// abort removes an unsharded run; a sharded one keeps what it finished for its rerun.
func (p *pending) abort() {
	switch {
	case !p.sharded:
		os.RemoveAll(p.tmp)
	case p.kept() == 0:
		p.work.Remove()
	}
}

// fail aborts p and returns err, saying for a sharded run that a rerun resumes.
func (p *pending) fail(err error) error {
	p.abort()
	if n := p.kept(); n > 0 {
		return fmt.Errorf("%w (the %d finished items are kept in %s: rerun the shard to resume)", err, n, p.work.Dir())
	}
	return err
}

// commitSummarized commits the run, an unsharded run with its run-level outputs
// (Summarize), a sharded one with its shard manifest (it gets them when merge joins
// the shards).
func (p *pending) commitSummarized() error {
	if !p.sharded {
		if err := Summarize(p.run); err != nil {
			return p.fail(err)
		}
		return p.commit()
	}
	p.m.Finished = p.work.Finished()
	if !p.m.Complete() {
		return p.fail(fmt.Errorf("shard %d/%d: %d items not computed", p.m.Index, p.m.Count, len(p.m.Missing())))
	}
	if err := p.run.WriteShardManifest(p.m); err != nil {
		return p.fail(err)
	}
	return p.commit()
}

// commit moves the finished run to its destination (and removes a shard's work folder).
func (p *pending) commit() error {
	now := time.Now().UTC()
	p.run.Meta.EndTime = &now
	if err := p.run.WriteMeta(); err != nil {
		return p.fail(err)
	}
	if err := os.Rename(p.tmp, p.dest); err != nil {
		return p.fail(fmt.Errorf("move the finished run to %s: %w", p.dest, err))
	}
	if p.sharded {
		return p.work.Remove()
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
			return true, os.RemoveAll(workDir(s.opts.Out)) // left by a kill after the commit's rename
		}
	}
	return false, nil
}
