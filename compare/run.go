package compare

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/attnscope/attnscope/internal/shard"
	"github.com/attnscope/attnscope/store"
)

// Options configure Run.
type Options struct {
	// Progress, when set, is called after every compared pair.
	Progress func(done, total int)
	// Now gives the time stamped on each row (time.Now when nil).
	Now func() time.Time
	// Workers is how many pairs are computed at once (GOMAXPROCS when 0); rows are
	// written in the same order whatever the number.
	Workers int
	// Shard, when set, compares only the pairs whose human session (the human_a
	// session of human pairs) belongs to it, writing OUT/shard-<i>-of-<n>/ with a
	// shard manifest; MergeShards joins the shards' tables.
	Shard shard.Shard
	// ConfigSum identifies the configuration in the shard manifest (a rerun of a
	// finished shard with another configuration computes it again).
	ConfigSum string
}

// Summary says what Run wrote.
type Summary struct {
	Outputs  []string // CSV files written (each with a Parquet copy beside it)
	Pairs    int      // pairs compared
	Rows     int      // rows written
	Warnings []string // items skipped and why
	Resumed  bool     // a finished shard: its manifest says so, nothing was computed
	// Of a shard: its human sessions compared by this run and those kept from an
	// earlier, interrupted run (shard.Work).
	Sessions, Kept int
}

// side is a run folder with the metadata of its samples.
type side struct {
	run   *store.Run
	dir   string
	metas []*Meta
}

func openSide(dir string) (*side, error) {
	r, err := store.Open(dir)
	if err != nil {
		return nil, err
	}
	ids, err := r.Samples()
	if err != nil {
		return nil, err
	}
	s := &side{run: r, dir: dir}
	for _, id := range ids {
		sm, err := r.Sample(id)
		if err != nil {
			return nil, err
		}
		s.metas = append(s.metas, MetaFromSample(sm))
	}
	return s, nil
}

// load reads RUN/derived/<pass>/<stem>.npy; nil without error when it does not exist.
func (s *side) load(pass, stem string) (*Array, error) {
	return loadNpy(s.run.DerivedPath(pass, stem))
}

// Run performs every comparison of cfg, pair by pair, streaming the rows into
// OUT/<name><suffix>.csv and .parquet. Only one pair of arrays is in memory at a
// time. Nothing is published unless every comparison succeeds.
func Run(ctx context.Context, cfg *Config, opt Options) (*Summary, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	path := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(cfg.dir, p)
	}
	human, err := openSide(path(cfg.HumanAttFolder))
	if err != nil {
		return nil, err
	}
	machines := map[string]*side{}
	for _, c := range cfg.Comparisons {
		for _, s := range c.Machine {
			dir := path(firstNonEmpty(s.Folder, cfg.MachineAttFolder))
			if machines[dir] == nil {
				if machines[dir], err = openSide(dir); err != nil {
					return nil, err
				}
			}
		}
	}
	out := path(cfg.OutputFolder)
	if opt.Shard.Sharded() {
		out = filepath.Join(out, opt.Shard.Name())
		if done, err := shardFinished(out, opt, human, cfg); done || err != nil {
			return &Summary{Resumed: done, Outputs: tableFiles(out, cfg)}, err
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	e := &engine{cfg: cfg, opt: opt, human: human, sum: &Summary{}, bases: &baseCache{}}
	for _, c := range cfg.Comparisons {
		for _, s := range c.Machine {
			e.total += len(e.mine(pairsOf(human.metas, machines[path(firstNonEmpty(s.Folder, cfg.MachineAttFolder))].metas)))
		}
		if c.humanPairs() {
			e.total += len(e.mine(humanPairs(human.metas)))
		}
	}
	defer func() {
		for _, w := range e.writers {
			w.abort()
		}
	}()
	sections := func(dir string) error {
		for i := range cfg.Comparisons {
			c := &cfg.Comparisons[i]
			for _, s := range c.Machine {
				m := machines[path(firstNonEmpty(s.Folder, cfg.MachineAttFolder))]
				if err := e.machineSection(ctx, c, s, m, dir); err != nil {
					return err
				}
			}
			if c.humanPairs() {
				if err := e.humanSection(ctx, c, dir); err != nil {
					return err
				}
			}
		}
		for _, w := range e.writers {
			if err := w.commit(); err != nil {
				return err
			}
			e.sum.Outputs = append(e.sum.Outputs, w.csvFile.Name())
		}
		e.writers = nil
		return nil
	}
	if !opt.Shard.Sharded() {
		return e.sum, sections(out)
	}
	if err := e.resumeShard(ctx, out, sections); err != nil {
		return nil, err
	}
	if err := writeShardManifest(out, opt, human, cfg); err != nil {
		return nil, err
	}
	return e.sum, os.RemoveAll(filepath.Join(out, shard.WorkDir)) // the work folder (shard.Work)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

type engine struct {
	cfg     *Config
	opt     Options
	human   *side
	sum     *Summary
	bases   *baseCache
	writers []*tableWriter
	done    int
	total   int
	only    string // a sharded run compares the pairs of this human session only
}

type pairIdx struct{ h, m int }

// pairsOf lists (human, machine) index pairs: every human item with every machine
// item of the same source file.
func pairsOf(h, m []*Meta) []pairIdx {
	var out []pairIdx
	for i, hm := range h {
		for j, mm := range m {
			if pairs(hm, mm) {
				out = append(out, pairIdx{i, j})
			}
		}
	}
	return out
}

// humanPairs lists every ordered pair of different human items on the same file.
func humanPairs(h []*Meta) []pairIdx {
	var out []pairIdx
	for i, a := range h {
		for j, b := range h {
			if i != j && a.Source != "" && a.Source == b.Source {
				out = append(out, pairIdx{i, j})
			}
		}
	}
	return out
}

// outcome is one computed pair: its result, or why it was skipped.
type outcome struct {
	res  Result
	typ  string
	warn string
	id   []Value
}

// ordered computes n pairs with up to Workers goroutines, in batches, and hands
// the outcomes to emit in pair order; memory holds one batch of pairs.
func (e *engine) ordered(ctx context.Context, n int, compute func(i int) (outcome, error), emit func(o outcome) error) error {
	w := max(e.opt.Workers, 1)
	outs := make([]outcome, w)
	errs := make([]error, w)
	for start := 0; start < n; start += w {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := min(start+w, n)
		var wg sync.WaitGroup
		for i := start; i < end; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				outs[i-start], errs[i-start] = compute(i)
			}(i)
		}
		wg.Wait()
		for i := start; i < end; i++ {
			if errs[i-start] != nil {
				return errs[i-start]
			}
			if err := emit(outs[i-start]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e *engine) machineSection(ctx context.Context, c *Comparison, s MachineSide, m *side, out string) error {
	prov := provenance(c, &s)
	lay := layout(c, c.Transformations, false, prov)
	w, err := createTable(out, c.Output(s), lay.cols)
	if err != nil {
		return err
	}
	e.writers = append(e.writers, w)
	all := pairsOf(e.human.metas, m.metas)
	pairs := e.mine(all)
	if len(all) == 0 {
		e.sum.Warnings = append(e.sum.Warnings, fmt.Sprintf("comparison %s: no machine sample of %s shares a source file with a human session of %s", c.Output(s), m.dir, e.human.dir))
	}
	compute := func(i int) (outcome, error) {
		hm, mm := e.human.metas[pairs[i].h], m.metas[pairs[i].m]
		hp, mp := e.human.run.DerivedPath(c.Human.Subfolder, hm.Stem), m.run.DerivedPath(s.Subfolder, mm.Stem)
		h, err := e.human.load(c.Human.Subfolder, hm.Stem)
		if err != nil || h == nil {
			return outcome{warn: fmt.Sprintf("comparison %s: human session %s has no %s", c.Output(s), hm.Stem, hp)}, err
		}
		ma, err := m.load(s.Subfolder, mm.Stem)
		if err != nil || ma == nil {
			return outcome{warn: fmt.Sprintf("comparison %s: machine sample %s has no %s", c.Output(s), mm.Stem, mp)}, err
		}
		res, typ, err := e.compute(c, c.Transformations, false, h, ma, hm, mm, [2]string{hp, mp})
		id := []Value{c.Output(s), c.Function, hm.Source, str(hm.UserName), str(hm.TaskNumber), hm.Stem, mm.Stem}
		return outcome{res: res, typ: typ, id: id}, err
	}
	return e.ordered(ctx, len(pairs), compute, func(o outcome) error {
		if o.warn != "" {
			e.sum.Warnings = append(e.sum.Warnings, o.warn)
			return nil
		}
		return e.emit(w, lay, o.id, o.typ, o.res, m.dir)
	})
}

func (e *engine) humanSection(ctx context.Context, c *Comparison, out string) error {
	steps := c.Human.Transformations
	if steps == nil {
		steps = c.Transformations
		e.sum.Warnings = append(e.sum.Warnings, fmt.Sprintf("comparison %s: human pairs use the machine transformations (no human.transformations given)", c.Name+c.Human.Suffix))
	}
	prov := provenance(c, nil)
	lay := layout(c, steps, true, prov)
	w, err := createTable(out, c.Name+c.Human.Suffix, lay.cols)
	if err != nil {
		return err
	}
	e.writers = append(e.writers, w)
	pairs := e.mine(humanPairs(e.human.metas))
	compute := func(i int) (outcome, error) {
		am, bm := e.human.metas[pairs[i].h], e.human.metas[pairs[i].m]
		a, err := e.human.load(c.Human.Subfolder, am.Stem)
		if err != nil || a == nil {
			return outcome{}, err
		}
		b, err := e.human.load(c.Human.Subfolder, bm.Stem)
		if err != nil || b == nil {
			return outcome{}, err
		}
		files := [2]string{e.human.run.DerivedPath(c.Human.Subfolder, am.Stem), e.human.run.DerivedPath(c.Human.Subfolder, bm.Stem)}
		res, typ, err := e.compute(c, steps, true, a, b, am, bm, files)
		id := []Value{c.Name + c.Human.Suffix, c.Function, am.Source, str(am.UserName), str(bm.UserName), str(am.TaskNumber), str(bm.TaskNumber), am.Stem, bm.Stem}
		return outcome{res: res, typ: typ, id: id}, err
	}
	return e.ordered(ctx, len(pairs), compute, func(o outcome) error {
		if o.id == nil { // a session without the pass: skipped (reported by the machine sections)
			return nil
		}
		return e.emit(w, lay, o.id, o.typ, o.res, "")
	})
}

func str(s string) Value {
	if s == "" {
		return nil
	}
	return s
}

// compute applies the transformation chain to copies of h and m and runs the
// comparison function. files name the two inputs in errors.
func (e *engine) compute(c *Comparison, steps []Step, humanPair bool, h, m *Array, hm, mm *Meta, files [2]string) (Result, string, error) {
	p := &Pair{Human: h.Clone(), Machine: m.Clone(), HumanMeta: hm, MachineMeta: mm, Dir: e.cfg.dir, bases: e.bases}
	where := func(err error) error {
		return fmt.Errorf("%s: comparison %q (line %d), human %s, machine %s: %w", e.cfg.file, c.Name, c.line, files[0], files[1], err)
	}
	for _, s := range steps {
		if humanPair && s.Name == "drop_first_model_token" {
			continue
		}
		if err := s.t.Run(p, s.kwargs); err != nil {
			return Result{}, "", where(err)
		}
	}
	var typ string
	switch {
	case p.Human.isVector() && p.Machine.isVector():
		typ = "vector"
	case p.Human.isMatrix() && p.Machine.isMatrix():
		typ = "matrix"
	default:
		return Result{}, "", where(fmt.Errorf("after the transformations the human array has shape %v and the machine array %v; two vectors or two matrices expected", p.Human.Shape, p.Machine.Shape))
	}
	if !equalShape(p.Human.Shape, p.Machine.Shape) {
		return Result{}, "", where(fmt.Errorf("after the transformations the human array has shape %v and the machine array %v; equal shapes expected", p.Human.Shape, p.Machine.Shape))
	}
	if !c.fn.AnyShape && c.fn.Vectors != (typ == "vector") {
		return Result{}, "", where(fmt.Errorf("%s compares %s, but the arrays are %ss of shape %v", c.Function, map[bool]string{true: "vectors", false: "matrices"}[c.fn.Vectors], typ, p.Human.Shape))
	}
	if len(p.Human.Data) == 0 {
		return Result{}, "", where(errors.New("the arrays are empty after the transformations"))
	}
	res, err := c.fn.Run(Inputs{Human: p.Human, Machine: p.Machine, HumanMeta: hm, MachineMeta: mm}, c.kwargs)
	if err != nil {
		return Result{}, "", where(err)
	}
	return res, typ, nil
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// rowLayout is the column order of one output and where the parts of a row go.
type rowLayout struct {
	cols    []column
	steps   []Value // transformation columns' values
	scalars []string
	list    string // list column ("" none)
	short   string // exploded column name ("" not exploded)
	subs    []string
	prov    []Value
}

func layout(c *Comparison, steps []Step, humanPair bool, prov []named) rowLayout {
	var l rowLayout
	add := func(name string, float bool) { l.cols = append(l.cols, column{name, float}) }
	add("comparison_name", false)
	add("comparison_function", false)
	add("source_code", false)
	if humanPair {
		for _, n := range []string{"user_name_a", "user_name_b", "task_number_a", "task_number_b", "human_a", "human_b"} {
			add(n, false)
		}
	} else {
		for _, n := range []string{"user_name", "task_number", "input_human_filestem", "input_machine_filestem"} {
			add(n, false)
		}
	}
	for k, s := range steps {
		if humanPair && s.Name == "drop_first_model_token" {
			continue
		}
		add(fmt.Sprintf("transformation_%d.name", k), false)
		l.steps = append(l.steps, s.Name)
		ks := make([]string, 0, len(s.Kwargs))
		for kk := range s.Kwargs {
			ks = append(ks, kk)
		}
		sort.Strings(ks)
		for _, kk := range ks {
			add(fmt.Sprintf("transformation_%d.kwargs.%s", k, kk), false)
			l.steps = append(l.steps, flat(s.Kwargs[kk]))
		}
	}
	add("comparison_type", false)
	for _, s := range c.fn.Scalars {
		add(s, true)
		l.scalars = append(l.scalars, s)
	}
	if l.list = c.fn.List(c.kwargs); l.list != "" {
		if len(c.OutputSubcolumns) > 0 {
			l.short = strings.TrimSuffix(l.list, "_list")
			l.subs = c.OutputSubcolumns
			add(l.short, len(c.fn.Fields) == 1)
			for i, sub := range l.subs {
				add(l.short+"."+sub, !strings.HasPrefix(c.fn.Fields[i], "top_"))
			}
		} else {
			add(l.list, false)
		}
	}
	for _, p := range prov {
		add("provenance."+p.name, false)
		l.prov = append(l.prov, p.value)
	}
	add("time_ts_sec", true)
	add("time_human", false)
	add("human_att_folder", false)
	add("machine_att_folder", false)
	return l
}

// emit writes the rows of one pair's result (several when the list is exploded).
func (e *engine) emit(w *tableWriter, l rowLayout, id []Value, typ string, res Result, machineDir string) error {
	now := e.opt.Now()
	base := append(append(append([]Value{}, id...), l.steps...), typ)
	for _, s := range res.Scalars {
		base = append(base, s.Value)
	}
	tail := append(append([]Value{}, l.prov...), float64(now.UnixNano())/1e9, now.Format("2006-01-02 15:04:05"), e.cfg.HumanAttFolder, firstNonEmpty(machineDir, e.cfg.MachineAttFolder))
	e.done++
	e.sum.Pairs++
	if e.opt.Progress != nil {
		defer e.opt.Progress(e.done, e.total)
	}
	if l.list == "" {
		e.sum.Rows++
		return w.write(append(base, tail...))
	}
	elem := func(el []Value) Value {
		if len(el) == 1 {
			return el[0]
		}
		return el
	}
	if l.short == "" {
		all := make([]Value, len(res.Elements))
		for i, el := range res.Elements {
			all[i] = elem(el)
		}
		e.sum.Rows++
		return w.write(append(append(base, all), tail...))
	}
	for _, el := range res.Elements {
		row := append(append([]Value{}, base...), elem(el))
		for i := range l.subs {
			row = append(row, el[i])
		}
		e.sum.Rows++
		if err := w.write(append(row, tail...)); err != nil {
			return err
		}
	}
	return nil
}

type named struct {
	name  string
	value Value
}

// provenance flattens the comparison's configuration (with the one machine
// section of this output) into provenance.* columns.
func provenance(c *Comparison, s *MachineSide) []named {
	out := []named{{"name", c.Name}, {"type", str(c.Type)}, {"comparison_function", c.Function}}
	ks := make([]string, 0, len(c.Kwargs))
	for k := range c.Kwargs {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		out = append(out, named{"comparison_kwargs." + k, flat(c.Kwargs[k])})
	}
	out = append(out, named{"comparison_output_column", str(c.OutputColumn)},
		named{"comparison_output_subcolumns", flat(c.OutputSubcolumns)},
		named{"transformations", steps(c.Transformations)},
		named{"human.subfolder", c.Human.Subfolder}, named{"human.suffix", str(c.Human.Suffix)},
		named{"human.tokenizer", str(c.Human.Tokenizer)}, named{"human.model_folder", str(c.Human.ModelFolder)},
		named{"human.transformations", steps(c.Human.Transformations)})
	if s != nil {
		out = append(out, named{"machine.subfolder", s.Subfolder}, named{"machine.suffix", str(s.Suffix)}, named{"machine.machine_att_folder", str(s.Folder)})
	}
	return out
}

func steps(s []Step) Value {
	if s == nil {
		return nil
	}
	parts := make([]string, len(s))
	for i, st := range s {
		parts[i] = "{'name': " + repr(st.Name)
		if len(st.Kwargs) > 0 {
			parts[i] += ", 'kwargs': " + flat(st.Kwargs).(string)
		}
		parts[i] += "}"
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// flat renders a YAML value as a cell: scalars as themselves, lists and mappings
// as Python literals.
func flat(v any) Value {
	switch x := v.(type) {
	case nil:
		return nil
	case string, float64, int, bool:
		return x
	case uint64:
		return int(x)
	case int64:
		return int(x)
	case []string:
		vs := make([]Value, len(x))
		for i, e := range x {
			vs[i] = e
		}
		return repr(vs)
	case []any:
		vs := make([]Value, len(x))
		for i, e := range x {
			vs[i] = pyValue(e)
		}
		return repr(vs)
	case map[string]any:
		ks := make([]string, 0, len(x))
		for k := range x {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		parts := make([]string, len(ks))
		for i, k := range ks {
			parts[i] = strQuote(k) + ": " + repr(pyValue(x[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

func pyValue(v any) Value {
	switch x := v.(type) {
	case uint64:
		return int(x)
	case int64:
		return int(x)
	case []any, map[string]any:
		return rawRepr(flat(x).(string))
	}
	return v
}

type rawRepr string

func strQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }
