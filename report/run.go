package report

import (
	"context"
	"fmt"
	"math"

	"github.com/attnscope/attnscope/store"
)

// ErrNotCaptured is returned (wrapped) by a Run for data the run does not hold, such
// as hidden states of a run captured without them (the store's sentinel).
var ErrNotCaptured = store.ErrNotCaptured

// Run is what reports and figures read from a run folder. The store package's run
// satisfies it through an adapter in cmd/attnscope; tests use an in-memory run.
type Run interface {
	// Dir is the run folder.
	Dir() string
	// Provenance returns run.json decoded (nil when the run has none).
	Provenance(ctx context.Context) (map[string]any, error)
	// Samples lists the sample ids in order.
	Samples(ctx context.Context) ([]string, error)
	// Sample returns a sample's text and tokens.
	Sample(ctx context.Context, id string) (*Sample, error)
	// NumLayers returns the number of attention layers captured for a sample (0 when
	// none).
	NumLayers(ctx context.Context, id string) (int, error)
	// AttentionLayer reads one layer of a sample's attention.
	AttentionLayer(ctx context.Context, id string, layer int) (*Attention, error)
	// Hidden reads one captured hidden state ("embed", "blocks.<l>.hook_resid_post")
	// of a sample, [positions, width]; an error wrapping ErrNotCaptured when absent.
	Hidden(ctx context.Context, id, name string) (*Hidden, error)
	// Metrics returns the run's metrics table (nil when derive has not written one).
	Metrics(ctx context.Context) ([]store.MetricRow, error)
}

// Sample is a sample's text and tokens.
type Sample struct {
	ID      string
	Text    string
	Tokens  []string
	Offsets [][2]int // character offsets of each token in Text, [start, end)
	// PromptLen is the number of prompt tokens of a generation (0 for a plain forward
	// pass, where every token is input).
	PromptLen int
	// PromptText is the prompt of a generation (Text begins with it); "" otherwise.
	PromptText string
}

// Attention is one layer of attention, [Heads, Q, K] row-major.
type Attention struct {
	Heads, Q, K int
	Data        []float32
}

// Head returns head h as a viz-ready float64 matrix.
func (a *Attention) Head(h int) []float64 {
	n := a.Q * a.K
	out := make([]float64, n)
	for i, v := range a.Data[h*n : (h+1)*n] {
		out[i] = float64(v)
	}
	return out
}

// Mean returns the head-mean matrix.
func (a *Attention) Mean() []float64 {
	n := a.Q * a.K
	out := make([]float64, n)
	for h := range a.Heads {
		for i, v := range a.Data[h*n : (h+1)*n] {
			out[i] += float64(v)
		}
	}
	for i := range out {
		out[i] /= float64(a.Heads)
	}
	return out
}

// validate checks the shape and values of a layer read from a run.
func (a *Attention) validate(id string, layer int) error {
	if a.Heads < 1 || a.Q < 1 || a.K < 1 || len(a.Data) != a.Heads*a.Q*a.K {
		return fmt.Errorf("sample %s layer %d: attention shape [%d, %d, %d] does not match its %d values", id, layer, a.Heads, a.Q, a.K, len(a.Data))
	}
	for i, v := range a.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			h := i / (a.Q * a.K)
			r := i % (a.Q * a.K) / a.K
			return fmt.Errorf("sample %s layer %d head %d row %d: attention is %v", id, layer, h, r, v)
		}
	}
	return nil
}

// layerCount returns the number of attention layers of a sample, an error when it has
// none.
func layerCount(ctx context.Context, run Run, id string) (int, error) {
	n, err := run.NumLayers(ctx, id)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, fmt.Errorf("sample %s of run %s has no attention captured", id, run.Dir())
	}
	return n, nil
}

// loadLayer reads and validates one layer, checking the layer index first.
func loadLayer(ctx context.Context, run Run, id string, layer int) (*Attention, error) {
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
	a, err := run.AttentionLayer(ctx, id, layer)
	if err != nil {
		return nil, err
	}
	if err := a.validate(id, layer); err != nil {
		return nil, err
	}
	return a, nil
}

// DerivedRun is a Run that also holds derive passes' outputs
// (RUN/derived/<pass>/<sample>.npy); the HTML report draws them when present.
type DerivedRun interface {
	Run
	DerivedPasses() ([]string, error)
	// DerivedFunction returns the analysis function a pass ran (from
	// RUN/derived/<pass>/pass.json), or "" when it is not recorded.
	DerivedFunction(pass string) string
	HasDerived(pass, id string) bool
	Derived(pass, id string) ([]float64, []int, error)
}
