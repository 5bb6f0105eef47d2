package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/tensor"
)

// Axis describes one axis of a derived output, as the derive function that made it
// declares it; pass.json records the list, so that a reader (report, plot, a web
// view) draws any output by its axes without guessing from its shape.
//
// Name is one of the Axis* constants below. Labels names the entries of an axis of
// fixed length (head_collapse's four criteria, the columns of a list of records, code
// categories); it is empty for axes whose ticks come from the sample (tokens, lines,
// characters) or are numbered (layers, heads, records).
type Axis struct {
	Name   string   `json:"name"`
	Labels []string `json:"labels,omitempty"`
}

// Axis names. A reader labels their ticks as follows.
const (
	AxisLayer      = "layer"       // L0, L1, ...
	AxisLayerPair  = "layer_pair"  // consecutive layer pairs: L0→L1, L1→L2, ...
	AxisHead       = "head"        // H0, H1, ...
	AxisUnit       = "unit"        // (layer, head) units, layer-major: L0 H0, L0 H1, ...
	AxisLayerToken = "layer_token" // token positions of every layer 0..L, layer-major (attention flow's graph nodes)
	AxisQuery      = "query"       // token positions attending (rows): the sample's tokens
	AxisKey        = "key"         // token positions attended to (columns): the sample's tokens
	AxisLine       = "line"        // source lines of the prompt text: line 1, line 2, ...
	AxisChar       = "char"        // characters (code points) of the prompt text
	AxisPoint      = "point"       // P evenly spaced fractions i/P of the keys (crispiness curves)
	AxisRecord     = "record"      // one entry of a list of records (its columns: a labelled axis)
	AxisColumn     = "column"      // named columns of records (Labels)
	AxisCriterion  = "criterion"   // named per-head criteria (Labels)
	AxisCategory   = "category"    // named categories, e.g. syntactic ones of source code (Labels)
	AxisToken      = "token"       // tokens that are not the sample's (another tokenizer's, or the sample's with multi-newline tokens split): numbered
	AxisBin        = "bin"         // histogram bins, labelled by their ranges (Labels)
)

// AttentionAxes are the axes of captured attention, [layer, head, query, key].
func AttentionAxes() []Axis {
	return []Axis{{Name: AxisLayer}, {Name: AxisHead}, {Name: AxisQuery}, {Name: AxisKey}}
}

// CheckAxes reports whether t has one axis per entry of axes and each labelled axis
// has one entry per label.
func CheckAxes(axes []Axis, shape []int) error {
	if len(axes) != len(shape) {
		return fmt.Errorf("shape %v has %d axes, the function declares %d (%s)", shape, len(shape), len(axes), AxesString(axes))
	}
	for i, a := range axes {
		if len(a.Labels) > 0 && shape[i] != len(a.Labels) {
			return fmt.Errorf("shape %v: axis %d (%s) has %d entries, the function declares %d (%s)", shape, i, a.Name, shape[i], len(a.Labels), strings.Join(a.Labels, ", "))
		}
	}
	return nil
}

// AxesString writes axes as "[layer, head, criterion(a, b)]".
func AxesString(axes []Axis) string {
	parts := make([]string, len(axes))
	for i, a := range axes {
		parts[i] = a.Name
		if len(a.Labels) > 0 {
			parts[i] += "(" + strings.Join(a.Labels, ", ") + ")"
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// PassSettings is RUN/derived/<pass>/pass.json: how a derive pass made its outputs,
// so that outputs made with other settings are never mixed and readers know which
// function produced them and what each axis of its outputs means.
type PassSettings struct {
	Function string         `json:"function"`
	Input    string         `json:"input"`
	Kwargs   map[string]any `json:"kwargs"`
	// Axes are the axes of every output of the pass (nil in folders written before
	// axes were recorded).
	Axes []Axis `json:"axes,omitempty"`
}

// PassInfo is a pass with an output folder in a run, with its recorded settings.
type PassInfo struct {
	Name string
	PassSettings
}

// PassSettingsPath is RUN/derived/<pass>/pass.json.
func (r *Run) PassSettingsPath(pass string) string {
	return filepath.Join(r.dir, DerivedDir, pass, PassFile)
}

// ReadPassSettings reads RUN/derived/<pass>/pass.json.
func (r *Run) ReadPassSettings(pass string) (PassSettings, error) {
	var s PassSettings
	b, err := os.ReadFile(r.PassSettingsPath(pass))
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("read %s: %w", r.PassSettingsPath(pass), err)
	}
	return s, nil
}

// PreparePass creates the output folder of pass and records its settings in
// pass.json, or fails if the folder holds outputs of the same pass name made with
// another function, input or kwargs. A pass.json without axes (written by an older
// version) is completed.
func (r *Run) PreparePass(pass string, s PassSettings) error {
	pdir := filepath.Join(r.dir, DerivedDir, pass)
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return fmt.Errorf("create output folder: %w", err)
	}
	want, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("pass %q: record settings: %w", pass, err)
	}
	want = append(want, '\n')
	path := r.PassSettingsPath(pass)
	got, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return atomicfile.WriteFile(path, want)
	case err != nil:
		return fmt.Errorf("pass %q: %w", pass, err)
	case bytes.Equal(got, want):
		return nil
	}
	var old PassSettings
	if json.Unmarshal(got, &old) == nil && old.Axes == nil {
		old.Axes = s.Axes
		if b, err := json.MarshalIndent(old, "", "  "); err == nil && bytes.Equal(append(b, '\n'), want) {
			return atomicfile.WriteFile(path, want)
		}
	}
	return fmt.Errorf("pass %q: %s was derived with other settings (%s); now %s: delete that folder or give the pass another name",
		pass, pdir, compactJSON(got), compactJSON(want))
}

func compactJSON(b []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return string(bytes.TrimSpace(b))
	}
	return buf.String()
}

// DerivedPath is where analysis pass writes its output for sample:
// RUN/derived/<pass>/<sample>.npy.
func (r *Run) DerivedPath(pass, sample string) string {
	return filepath.Join(r.dir, DerivedDir, pass, sample+".npy")
}

// derivedMetricsPath is where a pass's metrics for one sample wait to be gathered
// into the run's table; it is written before the .npy output, which marks the pair
// complete.
func (r *Run) derivedMetricsPath(pass, sample string) string {
	return filepath.Join(r.dir, DerivedDir, pass, sample+".metrics.csv")
}

// HasDerived reports whether pass has an output for sample.
func (r *Run) HasDerived(pass, sample string) bool {
	st, err := os.Stat(r.DerivedPath(pass, sample))
	if err != nil && r.remote != nil {
		_, _, ok := r.RemoteFile(derivedRel(pass, sample))
		return ok
	}
	return err == nil && st.Mode().IsRegular()
}

// derivedRel is the run-relative slash path of pass's output for sample.
func derivedRel(pass, sample string) string { return DerivedDir + "/" + pass + "/" + sample + ".npy" }

// WriteDerived stores pass's output for sample, a NumPy .npy file (float64 '<f8', C
// order) that numpy.load reads as is, with the sample's metric rows of the pass (none:
// no rows). The metrics go first and the .npy, written atomically, marks the pair
// complete, so an interrupted derive never leaves an output without its metrics.
func (r *Run) WriteDerived(pass, sample string, t *tensor.Tensor, metrics []MetricRow) error {
	if err := t.Check(); err != nil {
		return fmt.Errorf("pass %q, sample %q: %w", pass, sample, err)
	}
	mp := r.derivedMetricsPath(pass, sample)
	if len(metrics) > 0 {
		if err := WriteMetricsCSV(mp, metrics); err != nil {
			return err
		}
	} else if err := os.Remove(mp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return checkpoint.WriteNpyFile(r.DerivedPath(pass, sample), t.Shape, t.Data)
}

// Derived reads pass's output for sample (any numeric dtype, as float64).
func (r *Run) Derived(pass, sample string) (*tensor.Tensor, error) {
	path := r.localFile(derivedRel(pass, sample))
	a, err := checkpoint.ReadNpyFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no output of pass %q for sample %s (%s): run attnscope derive first: %w", pass, sample, path, fs.ErrNotExist)
		}
		return nil, err
	}
	return &tensor.Tensor{Shape: a.Shape, Data: a.Float64s()}, nil
}

// DerivedShape reads the shape of pass's output for sample from the header of its
// .npy file, without reading its values.
func (r *Run) DerivedShape(pass, sample string) ([]int, error) {
	path := r.localFile(derivedRel(pass, sample))
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h, err := checkpoint.ReadNpyHeader(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return h.Shape, nil
}

// DerivedPasses lists the passes with an output folder in the run, sorted by name,
// with the settings their pass.json records (zero settings when it is missing).
func (r *Run) DerivedPasses() ([]PassInfo, error) {
	ents, err := os.ReadDir(filepath.Join(r.dir, DerivedDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []PassInfo
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		s, err := r.ReadPassSettings(e.Name())
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		out = append(out, PassInfo{Name: e.Name(), PassSettings: s})
	}
	return out, nil
}

// Pass returns the recorded settings of one pass, an error listing the run's passes
// when it has no output folder.
func (r *Run) Pass(name string) (PassInfo, error) {
	passes, err := r.DerivedPasses()
	if err != nil {
		return PassInfo{}, err
	}
	names := make([]string, len(passes))
	for i, p := range passes {
		if p.Name == name {
			return p, nil
		}
		names[i] = p.Name
	}
	if len(names) == 0 {
		return PassInfo{}, fmt.Errorf("run %s has no derived outputs (run attnscope derive first)", r.dir)
	}
	return PassInfo{}, fmt.Errorf("run %s has no pass %q (passes: %s)", r.dir, name, strings.Join(names, ", "))
}

// GatherMetrics writes the run's metrics table (metrics.csv and metrics.parquet) from
// the metric rows stored with the outputs of passes for samples, in sorted (sample,
// pass) order, and returns the number of rows.
func (r *Run) GatherMetrics(ctx context.Context, passes, samples []string) (int, error) {
	names := slices.Sorted(slices.Values(passes))
	w, err := CreateMetrics(r.dir)
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
			if !r.HasDerived(p, s) {
				continue
			}
			rows, err := ReadMetricsCSV(r.derivedMetricsPath(p, s))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return 0, fmt.Errorf("gather metrics: %w", err)
			}
			slices.SortStableFunc(rows, CompareMetricRows)
			if err := w.Write(rows...); err != nil {
				return 0, err
			}
			n += len(rows)
		}
	}
	return n, w.Commit()
}

// Metrics reads the run's metrics table (RUN/metrics.csv); nil when derive has not
// written one.
func (r *Run) Metrics() ([]MetricRow, error) {
	rows, err := ReadMetricsCSV(filepath.Join(r.dir, MetricsCSV))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return rows, err
}
