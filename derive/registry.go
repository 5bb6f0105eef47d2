package derive

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/attnscope/attnscope/analysis"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

// Input is what a pass function receives for one sample.
type Input struct {
	Sample string
	Pass   string
	// Tensor is the pass's input: the attention [L,H,N,N] (input "attention") or an
	// earlier pass's output. It is nil for input "metadata". For a pass whose spec reads
	// attention layer by layer (EachLayer, OneLayer) it is one layer, [1,H,N,N].
	Tensor *tensor.Tensor
	// FirstLayer is the index, in the sample's attention, of Tensor's first layer (0
	// unless the pass reads layer by layer).
	FirstLayer int
	// NumLayers and Layer give a Streamed pass its attention one layer at a time
	// (Layer(l) is layer l as [1,H,N,N], checked); Tensor is then nil. Unset otherwise.
	NumLayers int
	Layer     func(l int) (*tensor.Tensor, error)
	// Meta is the sample's record (text, tokens, offsets, prompt length, language).
	Meta *store.Sample
}

// Metric is one scalar a pass reports. Layer and Head are 0-based or -1 (all).
type Metric struct {
	Layer, Head int
	Name        string
	Value       float64
}

// Result is a pass's output for one sample: a tensor saved as
// RUN/derived/<pass>/<sample>.npy and optional scalar metrics for the run's table.
type Result struct {
	Tensor  *tensor.Tensor
	Metrics []Metric
}

// Func computes a pass for one sample.
type Func func(ctx context.Context, in *Input, kw Kwargs) (*Result, error)

// InputKind says what a function takes.
type InputKind int

const (
	// TakesAttention: a tensor input that must be attention ([L,H,N,N] or [L,N,N], finite,
	// non-negative); the pass's input must be "attention" or a pass producing attention-shaped output.
	TakesAttention InputKind = iota
	// TakesTensor: any finite tensor (input "attention" or an earlier pass).
	TakesTensor
	// TakesMetadata: the sample's metadata only (input "metadata").
	TakesMetadata
)

// LayerMode says how much of a sample's attention a pass holds at once.
type LayerMode int

const (
	// AllLayers: the function gets the whole attention tensor [L,H,N,N].
	AllLayers LayerMode = iota
	// EachLayer: the function is called once per layer with [1,H,N,N], only that layer
	// in memory; the output tensors are concatenated along their first axis and each
	// metric's Layer (when ≥ 0) is offset by the layer's index. The result must be the
	// same as one call on the whole tensor would give.
	EachLayer
	// OneLayer: the function gets only the layer Spec.Layer picks, [1,H,N,N].
	OneLayer
	// HeadReduced: the function uses the attention only through one head reduction
	// (Spec.Heads); it gets [L,1,N,N], each layer's heads reduced as it is read. For
	// analysis functions that start with analysis.ReduceHeads the result is identical
	// (a reduction of one head is the identity), with an N×N matrix per layer in memory
	// instead of H.
	HeadReduced
	// Streamed: the function reads the layers it needs itself through Input.Layer (each
	// read and checked on demand). Called with a whole tensor (Input.Tensor) it must give
	// the same result.
	Streamed
)

// KwargKind is the type of a keyword argument.
type KwargKind int

// Keyword argument types.
const (
	KwInt KwargKind = iota
	KwFloat
	KwString
	KwBool
)

func (k KwargKind) String() string {
	return [...]string{"an integer", "a number", "a string", "a boolean"}[k]
}

// KwargSpec declares one keyword argument of a function.
type KwargSpec struct {
	Kind    KwargKind
	Default any      // int, float64, string or bool
	Enum    []string // allowed values of a string argument (empty = any)
	Doc     string
}

// Spec declares a pass function: its input, keyword arguments and implementation.
type Spec struct {
	Name  string
	Doc   string
	Input InputKind
	// RowStochastic: attention rows must sum to 1 (within AttentionTolerance).
	RowStochastic bool
	Kwargs        map[string]KwargSpec
	Fn            Func
	// Layers says how the attention is read (AllLayers when zero). It applies to input
	// "attention"; an earlier pass's output is always passed whole.
	Layers LayerMode
	// Layer picks the layer of a OneLayer pass from the number of layers.
	Layer func(layers int) int
	// Heads gives the head reduction of a HeadReduced pass from its kwargs.
	Heads func(Kwargs) analysis.HeadReduce
	// Axes declares the axes of the function's output from the axes of its input
	// (store.AttentionAxes for attention, nil for metadata) and its kwargs; derive
	// records them in pass.json and checks every output against them. Required.
	Axes func(in []store.Axis, kw Kwargs) ([]store.Axis, error)
	// Summarize, if set, rewrites the gathered metrics of an EachLayer pass (for example
	// adding per-layer and overall means of per-head rows).
	Summarize func([]Metric) []Metric
	// Stream, if set, computes an EachLayer pass from row blocks of each layer,
	// used for samples captured with --store qk (whose layers are recomputed
	// from queries and keys and never held whole).
	Stream *RowStream
}

// RowStream computes one layer of an EachLayer pass from row blocks [H, rows, N].
type RowStream struct {
	// Block returns the pass's values for rows [r0, r0+rows) of block: per row,
	// [H·rows] in (head, row) order with each row's validity (nil: all valid), or,
	// with Sum, a [N] contribution added over blocks.
	Block func(block *tensor.Tensor, kw Kwargs) (vals []float64, valid []bool, err error)
	Sum   bool
	// Finish turns the layer's assembled values ([1,H,N] per row, or [1,N] with
	// Sum) and row validity into the pass's result for that layer.
	Finish func(t *tensor.Tensor, valid []bool, kw Kwargs) (*Result, error)
}

// Registry maps function names to their specs. The zero value is empty; use
// DefaultRegistry for every built-in pass.
type Registry struct {
	specs map[string]*Spec
}

// Register adds s; registering a name twice is an error.
func (r *Registry) Register(s Spec) error {
	if s.Name == "" || s.Fn == nil || s.Axes == nil {
		return fmt.Errorf("register pass function %q: name, function and output axes are required", s.Name)
	}
	if r.specs == nil {
		r.specs = map[string]*Spec{}
	}
	if _, dup := r.specs[s.Name]; dup {
		return fmt.Errorf("register pass function %q: already registered", s.Name)
	}
	for k, ks := range s.Kwargs {
		if _, err := ks.convert(ks.Default); err != nil {
			return fmt.Errorf("register pass function %q: default of %s: %w", s.Name, k, err)
		}
	}
	r.specs[s.Name] = &s
	return nil
}

// Lookup returns the spec of a function.
func (r *Registry) Lookup(name string) (*Spec, bool) {
	s, ok := r.specs[name]
	return s, ok
}

// Names returns the registered function names, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.specs))
	for n := range r.specs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Kwargs holds a pass's keyword arguments, defaults filled in and types checked.
type Kwargs map[string]any

// Int returns an integer argument (0 if absent).
func (k Kwargs) Int(name string) int { v, _ := k[name].(int); return v }

// Float returns a numeric argument (0 if absent).
func (k Kwargs) Float(name string) float64 { v, _ := k[name].(float64); return v }

// String returns a string argument ("" if absent).
func (k Kwargs) String(name string) string { v, _ := k[name].(string); return v }

// Bool returns a boolean argument (false if absent).
func (k Kwargs) Bool(name string) bool { v, _ := k[name].(bool); return v }

// convert checks v (as decoded from YAML) against the spec and normalises its Go type.
func (ks KwargSpec) convert(v any) (any, error) {
	switch ks.Kind {
	case KwInt:
		switch x := v.(type) {
		case int:
			return x, nil
		case int64:
			return int(x), nil
		case uint64:
			if x > math.MaxInt32 {
				return nil, fmt.Errorf("%d is too large", x)
			}
			return int(x), nil
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<31 {
				return int(x), nil
			}
		}
	case KwFloat:
		switch x := v.(type) {
		case float64:
			return x, nil
		case int:
			return float64(x), nil
		case int64:
			return float64(x), nil
		case uint64:
			return float64(x), nil
		}
	case KwString:
		if x, ok := v.(string); ok {
			if len(ks.Enum) > 0 && !contains(ks.Enum, x) {
				return nil, fmt.Errorf("%q is not one of %s", x, strings.Join(ks.Enum, ", "))
			}
			return x, nil
		}
	case KwBool:
		if x, ok := v.(bool); ok {
			return x, nil
		}
	}
	return nil, fmt.Errorf("%v is not %s", v, ks.Kind)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}
