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
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/store"
)

// Run is the run folder derive reads and writes.
type Run interface {
	// Dir is the run's folder; outputs go under Dir()/derived and the metrics table in Dir().
	Dir() string
	// Samples lists the sample ids.
	Samples(ctx context.Context) ([]string, error)
	// Attention returns a sample's attention, [L,H,N,N] (or [L,N,N]).
	Attention(ctx context.Context, sample string) (*Tensor, error)
	// Meta returns a sample's metadata, or nil if the run has none.
	Meta(ctx context.Context, sample string) (*SampleMeta, error)
}

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
}

// Summary counts what a derivation did.
type Summary struct {
	Samples    int // samples visited
	Computed   int // pass outputs computed
	Skipped    int // pass outputs already present
	MetricRows int // rows of the run's metrics table
}

// OutputPath is where pass writes its output for sample in runDir.
func OutputPath(runDir, pass, sample string) string {
	return filepath.Join(runDir, "derived", pass, sample+".npy")
}

// metricsPath is where a pass's metrics for one sample wait to be gathered into the
// run's table; it is written before the .npy output, which marks the pair complete.
func metricsPath(runDir, pass, sample string) string {
	return filepath.Join(runDir, "derived", pass, sample+".metrics.csv")
}

// Derive runs the passes of cfg over every sample of run.
func Derive(ctx context.Context, run Run, cfg *Config, opt Options) (*Summary, error) {
	passes := cfg.Passes
	if opt.Pass != "" {
		p, err := cfg.Pass(opt.Pass)
		if err != nil {
			return nil, err
		}
		passes = []PassConfig{*p}
	}
	samples, err := run.Samples(ctx)
	if err != nil {
		return nil, fmt.Errorf("list samples: %w", err)
	}
	samples = slices.Clone(samples)
	slices.Sort(samples)
	for _, s := range samples {
		if err := checkSampleID(s); err != nil {
			return nil, err
		}
	}
	for i := range passes {
		if err := preparePassDir(run.Dir(), &passes[i]); err != nil {
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
	n, err := gatherMetrics(ctx, run.Dir(), cfg, samples)
	sum.MetricRows = n
	return &sum, err
}

// preparePassDir creates the pass's output folder and records its settings, or fails
// if the folder holds outputs of the same pass name made with other settings.
func preparePassDir(dir string, p *PassConfig) error {
	pdir := filepath.Join(dir, store.DerivedDir, p.Name)
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return fmt.Errorf("create output folder: %w", err)
	}
	want, err := json.MarshalIndent(store.PassSettings{Function: p.Function, Input: p.Input, Kwargs: p.kwargs}, "", "  ")
	if err != nil {
		return fmt.Errorf("pass %q: record settings: %w", p.Name, err)
	}
	want = append(want, '\n')
	path := filepath.Join(pdir, store.PassFile)
	got, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return atomicfile.WriteFile(path, want)
	case err != nil:
		return fmt.Errorf("pass %q: %w", p.Name, err)
	case !bytes.Equal(got, want):
		return fmt.Errorf("pass %q: %s was derived with other settings (%s); now %s: delete that folder or give the pass another name",
			p.Name, pdir, compactJSON(got), compactJSON(want))
	}
	return nil
}

func compactJSON(b []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return string(bytes.TrimSpace(b))
	}
	return buf.String()
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
	dir := run.Dir()
	var (
		att     = &sampleAttention{ctx: ctx, run: run, sample: sample}
		meta    *SampleMeta
		metaSet bool
		outs    = map[string]*Tensor{}
	)
	getMeta := func() (*SampleMeta, error) {
		if !metaSet {
			m, err := run.Meta(ctx, sample)
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
		out := OutputPath(dir, p.Name, sample)
		if _, err := os.Stat(out); err == nil {
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
				src := OutputPath(dir, p.Input, sample)
				t, err = readNPY(src)
				if errors.Is(err, os.ErrNotExist) {
					return computed, skipped, fail(fmt.Errorf("input pass %q has no output %s yet (run it first)", p.Input, src))
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
		if err := res.Tensor.check(); err != nil {
			return computed, skipped, fail(err)
		}
		mp := metricsPath(dir, p.Name, sample)
		if len(res.Metrics) > 0 {
			rows := make([]store.MetricRow, len(res.Metrics))
			for k, m := range res.Metrics {
				rows[k] = store.MetricRow{Sample: sample, Pass: p.Name, Layer: int64(m.Layer), Head: int64(m.Head), Metric: m.Name, Value: m.Value}
			}
			if err := store.WriteMetricsCSV(mp, rows); err != nil {
				return computed, skipped, fail(err)
			}
		} else if err := os.Remove(mp); err != nil && !errors.Is(err, os.ErrNotExist) {
			return computed, skipped, fail(err)
		}
		if err := writeNPY(out, res.Tensor); err != nil {
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

// gatherMetrics writes the run's metrics table from the per-sample metric files of
// every pass of cfg whose output exists, in sorted (sample, pass) order.
func gatherMetrics(ctx context.Context, dir string, cfg *Config, samples []string) (int, error) {
	names := make([]string, len(cfg.Passes))
	for i, p := range cfg.Passes {
		names[i] = p.Name
	}
	slices.Sort(names)
	w, err := store.CreateMetrics(dir)
	if err != nil {
		return 0, err
	}
	defer w.Abort()
	n := 0
	for _, s := range samples {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		for _, p := range names {
			if _, err := os.Stat(OutputPath(dir, p, s)); err != nil {
				continue
			}
			rows, err := store.ReadMetricsCSV(metricsPath(dir, p, s))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return 0, fmt.Errorf("gather metrics: %w", err)
			}
			slices.SortStableFunc(rows, store.CompareMetricRows)
			if err := w.Write(rows...); err != nil {
				return 0, err
			}
			n += len(rows)
		}
	}
	return n, w.Commit()
}
