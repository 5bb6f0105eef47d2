package report

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
	"github.com/attnscope/attnscope/viz"
)

// ErrNotCaptured is returned (wrapped) by a Run for data the run does not hold, such
// as hidden states of a run captured without them (the store's sentinel).
var ErrNotCaptured = store.ErrNotCaptured

// Run is what reports and figures read from a run folder; *store.Run implements it
// (tests use an in-memory run).
type Run interface {
	// Dir is the run folder.
	Dir() string
	// Provenance returns run.json decoded.
	Provenance() (map[string]any, error)
	// Samples lists the sample ids in order.
	Samples() ([]string, error)
	// Sample returns a sample's record: text, tokens, offsets, prompt length.
	Sample(id string) (*store.Sample, error)
	// NumLayers returns the number of attention layers captured for a sample (an
	// error wrapping ErrNotCaptured when none).
	NumLayers(id string) (int, error)
	// AttentionLayer reads one layer of a sample's attention, [head, query, key].
	AttentionLayer(id string, layer int) (*tensor.Tensor, error)
	// Hidden reads one captured hidden state ("embed", "blocks.<l>.hook_resid_post")
	// of a sample, [positions, width]; an error wrapping ErrNotCaptured when absent.
	Hidden(id, name string) (*tensor.Tensor, error)
	// Metrics returns the run's metrics table (nil when derive has not written one).
	Metrics() ([]store.MetricRow, error)
	// DerivedPasses lists the derive passes with outputs, with their declared axes.
	DerivedPasses() ([]store.PassInfo, error)
	// HasDerived reports whether a pass has an output for a sample.
	HasDerived(pass, id string) bool
	// Derived reads a pass's output for a sample.
	Derived(pass, id string) (*tensor.Tensor, error)
	// RunOutputs lists the run-level outputs (of the whole run, no sample).
	RunOutputs() ([]store.RunOutputInfo, error)
	// RunOutput reads a run-level output with its settings.
	RunOutput(name string) (store.RunOutputInfo, *tensor.Tensor, error)
}

var _ Run = (*store.Run)(nil)

// OpenRun opens the run folder dir.
func OpenRun(dir string) (*store.Run, error) { return store.Open(dir) }

// headMatrix returns head h of one layer of attention [H,Q,K] as a Q×K matrix.
func headMatrix(a *tensor.Tensor, h int) (viz.Matrix, error) {
	return viz.NewMatrix(a.Shape[1], a.Shape[2], a.Sub(h).Data)
}

// headMean returns the mean over heads of one layer of attention [H,Q,K], Q×K.
func headMean(a *tensor.Tensor) []float64 {
	H, n := a.Shape[0], a.Shape[1]*a.Shape[2]
	out := make([]float64, n)
	for h := range H {
		for i, v := range a.Data[h*n : (h+1)*n] {
			out[i] += v
		}
	}
	for i := range out {
		out[i] /= float64(H)
	}
	return out
}

// validateLayer checks the shape and values of a layer read from a run.
func validateLayer(a *tensor.Tensor, id string, layer int) error {
	if len(a.Shape) != 3 || a.Check() != nil || a.Len() == 0 {
		return fmt.Errorf("sample %s layer %d: attention of shape %v with %d values, [head, query, key] expected", id, layer, a.Shape, len(a.Data))
	}
	qk := a.Shape[1] * a.Shape[2]
	for i, v := range a.Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("sample %s layer %d head %d row %d: attention is %v", id, layer, i/qk, i%qk/a.Shape[2], v)
		}
	}
	return nil
}

// numLayers returns a sample's number of attention layers, 0 when none was captured.
func numLayers(run Run, id string) (int, error) {
	n, err := run.NumLayers(id)
	if errors.Is(err, store.ErrNotCaptured) {
		return 0, nil
	}
	return n, err
}

// layerCount returns the number of attention layers of a sample, an error when it has
// none.
func layerCount(ctx context.Context, run Run, id string) (int, error) {
	n, err := numLayers(run, id)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, fmt.Errorf("sample %s of run %s has no attention captured", id, run.Dir())
	}
	return n, nil
}

// loadLayer reads and validates one layer, checking the layer index first.
func loadLayer(ctx context.Context, run Run, id string, layer int) (*tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n, err := layerCount(ctx, run, id)
	if err != nil {
		return nil, err
	}
	if layer < 0 || layer >= n {
		return nil, fmt.Errorf("layer %d out of range: sample %s has layers 0..%d", layer, id, n-1)
	}
	a, err := run.AttentionLayer(id, layer)
	if err != nil {
		return nil, err
	}
	if err := validateLayer(a, id, layer); err != nil {
		return nil, err
	}
	return a, nil
}
