// Package jobs runs attnscope's long commands beyond one machine: a command sharded
// with --shard i/n (package internal/shard) writes each shard's samples to its own
// run folder (or to one shared folder), Merge joins the shards' run folders, derived
// outputs, shard manifests and metrics tables into one run, and Slurm and Kubernetes
// job files run the shards as an array followed by the merge.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/attnscope/attnscope/store"
)

// MergeSummary counts what Merge did.
type MergeSummary struct {
	Samples, SamplesCopied int // samples in the merged run; copied by this merge
	Derived, DerivedCopied int // derived outputs in the merged run; copied by this merge
	MetricRows             int // rows of the merged metrics table (0: no derived outputs)
	Manifests              int // shard manifests in the merged run
}

// Merge joins the run folders srcs (the shards of one capture, possibly derived) into
// the run folder dst, created when missing. It is idempotent: a sample or derived
// output dst already has must be byte-identical to the shard's, and merging again
// copies nothing and rewrites identical files. Before anything is written it checks
// that the runs were captured from the same model with the same settings and that
// every shard named by a manifest finished its samples, so that an incomplete array
// (a failed shard not yet rerun) leaves dst untouched. run.json of dst gathers the
// shards' provenance: every command line (once), the earliest start and latest end.
func Merge(ctx context.Context, dst string, srcs []string) (*MergeSummary, error) {
	if len(srcs) == 0 {
		return nil, fmt.Errorf("merge: no shard run folders given")
	}
	runs := make([]*store.Run, len(srcs))
	for i, s := range srcs {
		r, err := store.Open(s)
		if err != nil {
			return nil, err
		}
		runs[i] = r
	}
	for i, r := range runs[1:] {
		if why := incompatible(runs[0].Meta, r.Meta); why != "" {
			return nil, fmt.Errorf("merge: %s and %s are not shards of one run: %s", srcs[0], srcs[i+1], why)
		}
	}
	manifests, err := checkShards(runs)
	if err != nil {
		return nil, err
	}
	passes, err := checkPasses(runs)
	if err != nil {
		return nil, err
	}
	out, err := openDest(dst, runs[0])
	if err != nil {
		return nil, err
	}
	sum := &MergeSummary{}
	for _, r := range runs {
		if err := adoptRun(ctx, out, r, passes, sum); err != nil {
			return sum, err
		}
	}
	for _, m := range manifests {
		if err := out.WriteShardManifest(m); err != nil {
			return sum, err
		}
	}
	sum.Manifests = len(manifests)
	ids, err := out.Samples()
	if err != nil {
		return sum, err
	}
	sum.Samples = len(ids)
	names := make([]string, 0, len(passes))
	for _, p := range passes {
		names = append(names, p.Name)
		outs, err := out.DerivedOutputs(p.Name)
		if err != nil {
			return sum, err
		}
		sum.Derived += len(outs)
	}
	// A run without samples (diagnose) has no metrics table.
	if len(passes) > 0 && len(ids) > 0 {
		if sum.MetricRows, err = out.GatherMetrics(ctx, names, ids); err != nil {
			return sum, err
		}
	}
	out.Meta = mergeMeta(out.Meta, runs)
	return sum, out.WriteMeta()
}

// incompatible says why two runs cannot be shards of one run ("" when they can).
func incompatible(a, b store.Meta) string {
	switch {
	case a.Kind != b.Kind:
		return fmt.Sprintf("kinds %q and %q", a.Kind, b.Kind)
	case (a.Model == nil) != (b.Model == nil) || a.Model != nil && !reflect.DeepEqual(a.Model.Files, b.Model.Files):
		return "their model files (sha256 in run.json) differ"
	case a.DType != b.DType:
		return fmt.Sprintf("dtypes %s and %s", a.DType, b.DType)
	case a.Hidden != b.Hidden || a.QKV != b.QKV:
		return "one stores hidden states or queries/keys/values, the other not"
	case !reflect.DeepEqual(a.Generation, b.Generation):
		return "their generation settings differ"
	case a.Truncate != b.Truncate:
		return fmt.Sprintf("truncation %q and %q", a.Truncate, b.Truncate)
	case a.Backend != b.Backend:
		return fmt.Sprintf("backends %q and %q", a.Backend, b.Backend)
	}
	return ""
}

// checkShards joins the manifests of every run by command and shard, and fails when a
// shard is incomplete or missing from a complete set of n.
func checkShards(runs []*store.Run) ([]store.ShardManifest, error) {
	byName := map[string]store.ShardManifest{}
	for _, r := range runs {
		ms, err := r.ShardManifests()
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			key := m.FileName()
			if old, ok := byName[key]; ok {
				if !slices.Equal(old.Assigned, m.Assigned) {
					return nil, fmt.Errorf("merge: two manifests of %s shard %d/%d (one in %s) assign different samples", m.Command, m.Index, m.Count, r.Dir())
				}
				m.Finished = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(old.Finished), m.Finished...))))
			}
			byName[key] = m
		}
	}
	var out []store.ShardManifest
	counts := map[string]int{} // command/n -> shards seen
	for _, m := range byName {
		if !m.Complete() {
			miss := m.Missing()
			more := ""
			if len(miss) > 3 {
				more = fmt.Sprintf(" and %d more", len(miss)-3)
				miss = miss[:3]
			}
			return nil, fmt.Errorf("merge: %s shard %d/%d has not finished samples %s%s: rerun that shard (it does only what is missing), then merge",
				m.Command, m.Index, m.Count, strings.Join(miss, ", "), more)
		}
		counts[fmt.Sprintf("%s/%d", m.Command, m.Count)]++
		out = append(out, m)
	}
	if len(out) > 0 {
		for k, seen := range counts {
			cmd, n, _ := strings.Cut(k, "/")
			if want := fmt.Sprint(seen); want != n {
				return nil, fmt.Errorf("merge: the shard folders hold %d of the %s shards of %s: merge them all (or rerun the missing ones)", seen, n, cmd)
			}
		}
	}
	slices.SortFunc(out, func(a, b store.ShardManifest) int { return strings.Compare(a.FileName(), b.FileName()) })
	return out, nil
}

// checkPasses returns the derived passes of the runs, failing when two runs derived a
// pass of one name with different settings.
func checkPasses(runs []*store.Run) ([]store.PassInfo, error) {
	var out []store.PassInfo
	for _, r := range runs {
		ps, err := r.DerivedPasses()
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			i := slices.IndexFunc(out, func(q store.PassInfo) bool { return q.Name == p.Name })
			if i < 0 {
				out = append(out, p)
			} else if !reflect.DeepEqual(out[i].PassSettings, p.PassSettings) {
				return nil, fmt.Errorf("merge: pass %q was derived with other settings in %s", p.Name, r.Dir())
			}
		}
	}
	slices.SortFunc(out, func(a, b store.PassInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// openDest opens dst, checking that it is compatible with first, or creates it.
func openDest(dst string, first *store.Run) (*store.Run, error) {
	out, err := store.Open(dst)
	if err == nil {
		if why := incompatible(first.Meta, out.Meta); why != "" {
			return nil, fmt.Errorf("merge: %s holds another run (%s); merge into a new folder", dst, why)
		}
		return out, nil
	}
	meta := first.Meta
	meta.Commands = nil
	meta.Command = nil
	return store.Create(dst, meta)
}

// adoptRun copies r's finished samples and derived outputs into out.
func adoptRun(ctx context.Context, out, r *store.Run, passes []store.PassInfo, sum *MergeSummary) error {
	same := sameDir(out.Dir(), r.Dir())
	ids, err := r.Samples()
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if same {
			continue
		}
		copied, err := out.AdoptSample(r, id)
		if err != nil {
			return fmt.Errorf("merge %s: %w", r.Dir(), err)
		}
		if copied {
			sum.SamplesCopied++
		}
	}
	if !same {
		if err := adoptRootFiles(out, r); err != nil {
			return err
		}
	}
	for _, p := range passes {
		if err := out.PreparePass(p.Name, p.PassSettings); err != nil {
			return fmt.Errorf("merge %s: %w", r.Dir(), err)
		}
		if same {
			continue
		}
		outs, err := r.DerivedOutputs(p.Name)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		for _, id := range outs {
			copied, err := out.AdoptDerived(r, p.Name, id)
			if err != nil {
				return fmt.Errorf("merge %s: %w", r.Dir(), err)
			}
			if copied {
				sum.DerivedCopied++
			}
		}
	}
	return nil
}

// adoptRootFiles copies r's top-level files (a diagnose run's token_table.npy) into out.
func adoptRootFiles(out, r *store.Run) error {
	names, err := r.RootFiles()
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, err := out.AdoptRootFile(r, n); err != nil {
			return fmt.Errorf("merge %s: %w", r.Dir(), err)
		}
	}
	return nil
}

func sameDir(a, b string) bool {
	x, err1 := filepath.Abs(a)
	y, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && filepath.Clean(x) == filepath.Clean(y)
}

// mergeMeta is dst's provenance joined with the shards': every command line once (in
// the order first seen), every input once (sorted), the earliest start, the latest
// end (none while a shard has none), the most graphs any shard compiled.
func mergeMeta(m store.Meta, runs []*store.Run) store.Meta {
	seen := map[string]bool{}
	var cmds store.CommandLines
	add := func(lines store.CommandLines) {
		for _, l := range lines {
			k := strings.Join(l, "\x00")
			if !seen[k] {
				seen[k] = true
				cmds = append(cmds, l)
			}
		}
	}
	add(m.Commands)
	inputs := slices.Clone(m.Inputs)
	var end *time.Time
	ended := true
	for _, r := range runs {
		add(r.Meta.Commands)
		inputs = append(inputs, r.Meta.Inputs...)
		if r.Meta.StartTime.Before(m.StartTime) || m.StartTime.IsZero() {
			m.StartTime = r.Meta.StartTime
		}
		if r.Meta.EndTime == nil {
			ended = false
		} else if end == nil || r.Meta.EndTime.After(*end) {
			e := *r.Meta.EndTime
			end = &e
		}
		m.CompiledGraphs = max(m.CompiledGraphs, r.Meta.CompiledGraphs)
	}
	if !ended {
		end = nil
	}
	m.Commands = cmds
	if n := len(cmds); n > 0 {
		m.Command = cmds[n-1]
	}
	m.Inputs = slices.Compact(slices.Sorted(slices.Values(inputs)))
	m.EndTime = end
	return m
}
