package compare

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/internal/shard"
)

// A sharded compare compares its human sessions one at a time: the rows of each go to
// their own tables in the shard's work folder, OUT/shard-<i>-of-<n>/.shard-work/<session>/
// (shard.Work), which then records the session finished. A shard killed mid-way keeps
// the sessions it finished, and its rerun compares only the others; once all are there,
// the session tables are joined, in the human run's order, into the shard's tables, the
// shard manifest is written and the work folder removed.

// resumeShard compares the sessions of the shard not finished in out's work folder
// (sections writes the tables of the pairs e.mine keeps into a folder) and joins
// every session's tables into out.
func (e *engine) resumeShard(ctx context.Context, out string, sections func(dir string) error) error {
	m := newManifest(e.opt, e.human, e.cfg)
	if len(m.Assigned) == 0 {
		return sections(out) // the tables with their header only
	}
	work := filepath.Join(out, shard.WorkDir)
	key := fmt.Sprintf("%s\x00%q\x00%q", m.Config, m.Order, m.Assigned)
	const what = "configuration or other sessions"
	w, err := shard.OpenWork(work, e.opt.Shard, key, what)
	if stale := (*shard.StaleError)(nil); errors.As(err, &stale) {
		e.sum.Warnings = append(e.sum.Warnings, fmt.Sprintf("%s holds the work of another %s: started afresh", work, what))
		if err := os.RemoveAll(work); err != nil {
			return err
		}
		w, err = shard.OpenWork(work, e.opt.Shard, key, what)
	}
	if err != nil {
		return err
	}
	if err := atomicfile.RemoveTemps(out); err != nil { // of a join killed mid-way
		return err
	}
	e.sum.Kept = w.Kept()
	var sessions []string // the shard's, in the human run's order
	for _, st := range m.Order {
		if _, ok := slices.BinarySearch(m.Assigned, st); ok {
			sessions = append(sessions, st)
		}
	}
	for _, st := range sessions {
		if w.Done(st) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		dir := filepath.Join(work, st)
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		e.only = st
		if err := sections(dir); err != nil {
			return err
		}
		if err := w.Finish(st); err != nil {
			return err
		}
		e.sum.Sessions++
	}
	e.only = ""
	e.sum.Warnings = once(e.sum.Warnings) // a section's warnings repeat for each session
	return joinSessions(out, work, sessions, e.cfg, e.sum)
}

// joinSessions writes every table of out from the sessions' tables, in order.
func joinSessions(out, work string, sessions []string, cfg *Config, sum *Summary) error {
	sum.Outputs = nil
	for _, f := range tableFiles(out, cfg) {
		stem := strings.TrimSuffix(filepath.Base(f), ".csv")
		var joined *table
		for _, st := range sessions {
			t, err := readTable(filepath.Join(work, st), stem)
			if err != nil {
				return fmt.Errorf("join the sessions of %s: %w", out, err)
			}
			if joined == nil {
				joined = t
				continue
			}
			if !slices.Equal(t.cols, joined.cols) {
				return fmt.Errorf("join the sessions of %s: %s of session %s has other columns", out, stem, st)
			}
			joined.recs = append(joined.recs, t.recs...)
			joined.rows = append(joined.rows, t.rows...)
		}
		w, err := createTable(out, stem, joined.cols)
		if err != nil {
			return err
		}
		for i := range joined.recs {
			if err := w.writeRaw(joined.recs[i], joined.rows[i]); err != nil {
				w.abort()
				return err
			}
		}
		if err := w.commit(); err != nil {
			return err
		}
		sum.Outputs = append(sum.Outputs, f)
	}
	return nil
}

// once keeps the first of equal strings, in order.
func once(xs []string) []string {
	seen := map[string]bool{}
	out := xs[:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
