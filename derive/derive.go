// Package derive runs configured analysis passes over the samples of a run: each pass
// reads the attention, the sample's metadata or an earlier pass's output, and writes
// RUN/derived/<pass>/<sample>.npy; scalar metrics of every pass are gathered into the
// run's table RUN/metrics.csv and RUN/metrics.parquet (columns sample, pass, layer,
// head, metric, value).
//
// Derivation is resumable (an existing output is not recomputed), interruptible (every
// file is written to a temporary name and renamed when complete, so a killed derive
// leaves no half-written file and a rerun gives byte-identical outputs) and parallel
// over samples, one sample per worker. Passes read the sample's attention one layer (or
// two) at a time where their Spec.Layers allows (every function taking attention does).
// The math lives in package analysis (and analysis/code); this package only runs it.
package derive

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/attnscope/attnscope/internal/shard"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

// Run is the run folder derive reads and writes; *store.Run implements it (tests use
// runs whose attention lives in memory). Attention is read one layer at a time.
type Run interface {
	// Samples lists the sample ids.
	Samples() ([]string, error)
	// Sample returns a sample's record: text, tokens, offsets, prompt length, language.
	Sample(id string) (*store.Sample, error)
	// NumLayers returns the number of attention layers of a sample.
	NumLayers(id string) (int, error)
	// AttentionLayer returns layer l of a sample's attention, [head, query, key].
	AttentionLayer(id string, l int) (*tensor.Tensor, error)
	// PreparePass creates a pass's output folder and records its settings and axes.
	PreparePass(pass string, s store.PassSettings) error
	// HasDerived reports whether a pass has an output for a sample.
	HasDerived(pass, id string) bool
	// Derived reads a pass's output for a sample (an error wrapping fs.ErrNotExist
	// when there is none).
	Derived(pass, id string) (*tensor.Tensor, error)
	// WriteDerived stores a pass's output for a sample with its metric rows.
	WriteDerived(pass, id string, t *tensor.Tensor, metrics []store.MetricRow) error
	// GatherMetrics writes the run's metrics table from the rows stored with the
	// outputs of passes for samples.
	GatherMetrics(ctx context.Context, passes, samples []string) (int, error)
}

var _ Run = (*store.Run)(nil)

// Options tune a derivation.
type Options struct {
	// Workers is the number of samples derived at once (1 when ≤ 0).
	Workers int
	// Pass, if set, runs only the pass of that name (its input pass must be done).
	Pass string
	// Progress, if set, is called after each sample (done of total); calls never overlap.
	Progress func(done, total int, sample string)
	// PassProgress, if set, is called when a pass starts and ends on a sample (see
	// PassEvent); with several workers calls may overlap.
	PassProgress func(PassEvent)
	// Shard, when set (--shard i/n), derives only the samples package shard assigns
	// to it; a *store.Run then keeps RUN/shards/derive-shard-<i>-of-<n>.json up to
	// date with the samples whose passes are all done. The metrics table gathers the
	// shard's samples only (attnscope merge gathers the whole run's).
	Shard shard.Shard
}

// manifestWriter is implemented by *store.Run.
type manifestWriter interface {
	WriteShardManifest(store.ShardManifest) error
}

// Summary counts what a derivation did.
type Summary struct {
	Samples    int // samples visited
	Computed   int // pass outputs computed
	Skipped    int // pass outputs already present
	MetricRows int // rows of the run's metrics table
}

// PassLister is implemented by runs that list their passes with their recorded
// settings (*store.Run); Derive needs it for a config whose inputs include a pass of
// the run folder.
type PassLister interface {
	Pass(name string) (store.PassInfo, error)
}

// Derive runs the passes of cfg over every sample of run.
func Derive(ctx context.Context, run Run, cfg *Config, opt Options) (*Summary, error) {
	if ins := cfg.RunInputs(); len(ins) > 0 {
		pl, ok := run.(PassLister)
		if !ok {
			return nil, fmt.Errorf("%s: inputs %s are passes of the run folder, but this run cannot list its passes", cfg.name, strings.Join(ins, ", "))
		}
		if err := cfg.ResolveRunInputs(pl.Pass); err != nil {
			return nil, err
		}
	}
	passes := cfg.Passes
	if opt.Pass != "" {
		p, err := cfg.Pass(opt.Pass)
		if err != nil {
			return nil, err
		}
		passes = []PassConfig{*p}
	}
	samples, err := run.Samples()
	if err != nil {
		return nil, fmt.Errorf("list samples: %w", err)
	}
	samples = opt.Shard.Select(samples)
	slices.Sort(samples)
	manifest := func(string) error { return nil }
	if mw, ok := run.(manifestWriter); ok && opt.Shard.Sharded() {
		m := store.ShardManifest{Command: "derive", Index: opt.Shard.Index, Count: opt.Shard.Count, Assigned: samples, Finished: []string{}}
		manifest = func(id string) error {
			if id != "" {
				m.Finished = append(m.Finished, id)
			}
			return mw.WriteShardManifest(m)
		}
		if err := manifest(""); err != nil {
			return nil, err
		}
	}
	for _, s := range samples {
		if err := checkSampleID(s); err != nil {
			return nil, err
		}
	}
	for i := range passes {
		p := &passes[i]
		if err := run.PreparePass(p.Name, store.PassSettings{Function: p.Function, Input: p.Input, Kwargs: p.kwargs, Axes: p.axes}); err != nil {
			return nil, err
		}
	}

	workers := max(1, opt.Workers)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan string)
	var (
		mu   sync.Mutex
		sum  = Summary{Samples: len(samples)}
		done int
		wg   sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range jobs {
				computed, skipped, err := deriveSample(ctx, run, cfg, passes, s, opt.PassProgress)
				if err != nil {
					cancel(err)
					return
				}
				mu.Lock()
				if err := manifest(s); err != nil {
					mu.Unlock()
					cancel(err)
					return
				}
				sum.Computed += computed
				sum.Skipped += skipped
				done++
				if opt.Progress != nil {
					opt.Progress(done, len(samples), s)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, s := range samples {
		select {
		case jobs <- s:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return &sum, err
	}
	names := make([]string, len(cfg.Passes))
	for i, p := range cfg.Passes {
		names[i] = p.Name
	}
	n, err := run.GatherMetrics(ctx, names, samples)
	sum.MetricRows = n
	return &sum, err
}

func checkSampleID(s string) error {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, `/\`) || strings.HasPrefix(s, ".") {
		return fmt.Errorf("sample id %q cannot name an output file", s)
	}
	return nil
}

// deriveSample runs passes for one sample, keeping this sample's outputs in memory for
// the passes that read them.
func deriveSample(ctx context.Context, run Run, cfg *Config, passes []PassConfig, sample string, report func(PassEvent)) (computed, skipped int, err error) {
	if report == nil {
		report = func(PassEvent) {}
	}
	var (
		att     = &sampleAttention{ctx: ctx, run: run, sample: sample}
		meta    *store.Sample
		metaSet bool
		outs    = map[string]*tensor.Tensor{}
	)
	getMeta := func() (*store.Sample, error) {
		if !metaSet {
			m, err := run.Sample(sample)
			if err != nil {
				return nil, fmt.Errorf("metadata: %w", err)
			}
			meta, metaSet = m, true
		}
		return meta, nil
	}
	for i := range passes {
		if err := ctx.Err(); err != nil {
			return computed, skipped, err
		}
		p := &passes[i]
		if run.HasDerived(p.Name, sample) {
			skipped++
			report(PassEvent{Pass: p.Name, Function: p.Function, Sample: sample, Done: true, Skipped: true})
			continue
		}
		spec := p.spec
		started := time.Now()
		report(startEvent(att, p, sample))
		in := &Input{Sample: sample, Pass: p.Name}
		fail := func(err error) error {
			return fmt.Errorf("pass %q (%s): sample %q: %w", p.Name, p.Function, sample, err)
		}
		switch p.Input {
		case InputMetadata:
		case InputAttention:
			if spec.Layers != AllLayers {
				break // read layer by layer below
			}
			if in.Tensor, err = att.all(); err != nil {
				return computed, skipped, fail(err)
			}
		default:
			t := outs[p.Input]
			if t == nil {
				t, err = run.Derived(p.Input, sample)
				if errors.Is(err, fs.ErrNotExist) {
					return computed, skipped, fail(fmt.Errorf("input pass %q has no output yet (run it first)", p.Input))
				}
				if err != nil {
					return computed, skipped, fail(fmt.Errorf("input pass %q: %w", p.Input, err))
				}
			}
			in.Tensor = t
		}
		if in.Tensor != nil {
			if spec.Input == TakesAttention {
				t, err := checkAttention(in.Tensor, spec.RowStochastic, 0)
				if err != nil {
					return computed, skipped, fail(err)
				}
				in.Tensor = t
			} else if err := checkFinite(in.Tensor); err != nil {
				return computed, skipped, fail(err)
			}
		}
		if in.Meta, err = getMeta(); err != nil {
			return computed, skipped, fail(err)
		}
		var res *Result
		if p.Input == InputAttention && spec.Layers != AllLayers {
			res, err = runByLayer(ctx, att, spec, in, p.kwargs)
		} else {
			res, err = spec.Fn(ctx, in, p.kwargs)
		}
		if err != nil {
			return computed, skipped, fail(err)
		}
		if res == nil || res.Tensor == nil {
			return computed, skipped, fail(errors.New("the function returned no tensor"))
		}
		if err := res.Tensor.Check(); err != nil {
			return computed, skipped, fail(err)
		}
		if err := store.CheckAxes(p.axes, res.Tensor.Shape); err != nil {
			return computed, skipped, fail(err)
		}
		rows := make([]store.MetricRow, len(res.Metrics))
		for k, m := range res.Metrics {
			rows[k] = store.MetricRow{Sample: sample, Pass: p.Name, Layer: int64(m.Layer), Head: int64(m.Head), Metric: m.Name, Value: m.Value}
		}
		if err := run.WriteDerived(p.Name, sample, res.Tensor, rows); err != nil {
			return computed, skipped, fail(err)
		}
		if neededLater(passes[i+1:], p.Name) {
			outs[p.Name] = res.Tensor
		}
		computed++
		report(PassEvent{Pass: p.Name, Function: p.Function, Sample: sample, Done: true, Elapsed: time.Since(started)})
	}
	return computed, skipped, nil
}

// neededLater reports whether one of passes reads the output of pass name; only such
// outputs stay in memory for the rest of the sample.
func neededLater(passes []PassConfig, name string) bool {
	for _, p := range passes {
		if p.Input == name {
			return true
		}
	}
	return false
}
