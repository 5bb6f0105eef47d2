package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/store"
)

// StoreRun reads a run folder through the store package.
type StoreRun struct {
	r *store.Run
}

// OpenRun opens the run folder dir.
func OpenRun(dir string) (*StoreRun, error) {
	r, err := store.Open(dir)
	if err != nil {
		return nil, err
	}
	return &StoreRun{r: r}, nil
}

// Store returns the underlying store run.
func (s *StoreRun) Store() *store.Run { return s.r }

// Dir is the run folder.
func (s *StoreRun) Dir() string { return s.r.Dir() }

// Provenance decodes run.json as a generic map.
func (s *StoreRun) Provenance(context.Context) (map[string]any, error) {
	path := filepath.Join(s.r.Dir(), store.RunFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read %s: invalid JSON: %w", path, err)
	}
	return m, nil
}

// Samples lists the finished samples.
func (s *StoreRun) Samples(context.Context) ([]string, error) { return s.r.Samples() }

// Sample reads sample.json; PromptLen is set for generations only.
func (s *StoreRun) Sample(_ context.Context, id string) (*Sample, error) {
	x, err := s.r.Sample(id)
	if err != nil {
		return nil, err
	}
	out := &Sample{ID: x.ID, Text: x.Text, Tokens: x.Tokens, Offsets: x.Offsets}
	if len(x.Generated) > 0 {
		out.PromptLen = x.PromptLen
		out.PromptText = x.PromptText
	}
	return out, nil
}

// NumLayers returns 0 for a sample without attention.
func (s *StoreRun) NumLayers(_ context.Context, id string) (int, error) {
	n, err := s.r.NumLayers(id)
	if errors.Is(err, store.ErrNotCaptured) {
		return 0, nil
	}
	return n, err
}

// AttentionLayer reads one layer of attention.
func (s *StoreRun) AttentionLayer(_ context.Context, id string, l int) (*Attention, error) {
	t, err := s.r.AttentionLayer(id, l)
	if err != nil {
		return nil, err
	}
	return &Attention{Heads: t.Heads, Q: t.Q, K: t.K, Data: t.Data}, nil
}

// Hidden reads one hidden state (an error wrapping ErrNotCaptured when absent).
func (s *StoreRun) Hidden(_ context.Context, id, name string) (*Hidden, error) {
	t, err := s.r.Hidden(id, name)
	if err != nil {
		return nil, err
	}
	return &Hidden{Rows: t.Rows, Dim: t.Cols, Data: t.Data}, nil
}

// Metrics reads RUN/metrics.csv (nil when derive has not written it).
func (s *StoreRun) Metrics(context.Context) ([]store.MetricRow, error) {
	rows, err := store.ReadMetricsCSV(filepath.Join(s.r.Dir(), store.MetricsCSV))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return rows, err
}

// Derived reads a derive pass's output for a sample (RUN/derived/<pass>/<sample>.npy)
// as float64 values with their shape.
func (s *StoreRun) Derived(pass, id string) ([]float64, []int, error) {
	path := s.r.DerivedPath(pass, id)
	a, err := checkpoint.ReadNpyFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("no output of pass %q for sample %s (%s): run attnscope derive first", pass, id, path)
		}
		return nil, nil, err
	}
	return a.Float64s(), a.Shape, nil
}

// DerivedPasses lists the derive passes that have an output folder in the run
// (RUN/derived/<pass>/), sorted.
func (s *StoreRun) DerivedPasses() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.r.Dir(), store.DerivedDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// DerivedFunction returns the function recorded in RUN/derived/<pass>/pass.json, or ""
// when the file is missing or unreadable (the output is then drawn by its shape alone).
func (s *StoreRun) DerivedFunction(pass string) string {
	settings, err := s.r.ReadPassSettings(pass)
	if err != nil {
		return ""
	}
	return settings.Function
}

// HasDerived reports whether pass has an output for sample id.
func (s *StoreRun) HasDerived(pass, id string) bool {
	_, err := os.Stat(s.r.DerivedPath(pass, id))
	return err == nil
}
