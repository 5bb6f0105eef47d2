package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/attnscope/attnscope/model/arch"
	"github.com/gomlx/gomlx/core/tensors"
)

// Op is what an Edit does to the activation cells it selects.
type Op string

// The operations of an Edit (Value is their argument).
const (
	OpZero  Op = "zero"  // x → 0
	OpScale Op = "scale" // x → x·Value
	OpAdd   Op = "add"   // x → x + Value
	OpSet   Op = "set"   // x → Value (replace with a constant)
	OpNoise Op = "noise" // x → x + ε, ε ~ N(0, Value²) drawn per cell from Seed
	OpPatch Op = "patch" // x → the same cell of Source (activation patching)
)

// Hooks are the hook points an Edit can name, as TransformerLens names them
// under blocks.<l> (HookedTransformer): the residual stream entering and
// leaving the block, queries, keys (after RoPE) and values, the masked
// attention scores before softmax, the pattern after softmax, and each head's
// output pattern·v before the output projection.
var Hooks = []string{
	"hook_resid_pre", "attn.hook_q", "attn.hook_k", "attn.hook_v",
	"attn.hook_attn_scores", "attn.hook_pattern", "attn.hook_z", "hook_resid_post",
}

// Intervention edits activations inside the forward pass (ForwardOptions.
// Intervention): Edits apply in order, inside the compiled graph, so layers
// an intervention does not touch run the unmodified graph and an edit that
// selects nothing leaves every output bit-identical.
//
// Several edits of one cell compose in order ((x·m₁+a₁)·m₂+a₂); a Threshold
// compares the activation's value before any edit of that hook and gates every
// edit of the cell; Renormalize divides each edited row of the pattern by its
// new sum. Edits apply in every pass (Forward, ForwardBatch, capture) and in
// Generate (GenerateOptions.Intervention): the prompt's pass as Forward, then
// each decode step at absolute position p edits the cells of p — its query
// row of the query hooks and of the pattern/scores (keys ≤ p), and its keys
// and values, which the KV cache keeps edited. A greedy generation thus
// follows the argmax of Forward with the same intervention over the generated
// sequence. In decode steps a patch copies only positions its source covers,
// and noise is drawn from a stream seeded by (Seed, layer, position).
type Intervention struct {
	Edits []Edit `json:"edits"`
}

// Edit selects cells of one hook on some layers and changes them.
type Edit struct {
	Hook   string `json:"hook"`             // one of Hooks
	Layers []int  `json:"layers,omitempty"` // nil: every layer
	// Heads (attention hooks; key/value heads for hook_k/hook_v); nil: all.
	Heads []int `json:"heads,omitempty"`
	// Positions are the token positions (the query positions of hook_pattern
	// and hook_attn_scores); nil: all.
	Positions []int `json:"positions,omitempty"`
	// KeyPositions are the key positions of hook_pattern and hook_attn_scores; nil: all.
	KeyPositions []int `json:"key_positions,omitempty"`
	// Cells, for hook_pattern and hook_attn_scores, are explicit (query, key)
	// cells, used instead of Positions × KeyPositions.
	Cells [][2]int `json:"cells,omitempty"`
	Op    Op       `json:"op"`
	Value float64  `json:"value,omitempty"`
	Seed  uint64   `json:"seed,omitempty"` // OpNoise
	// Threshold, when set, edits only cells whose current value is ≥ it.
	Threshold *float64 `json:"threshold,omitempty"`
	// Renormalize (hook_pattern) divides each edited row by its sum afterwards.
	Renormalize bool `json:"renormalize,omitempty"`
	// Source holds the values OpPatch copies (another run's activations, see
	// Activations); its tensor for the hook must have the run's shape.
	Source Activations `json:"-"`
}

// EditError is an invalid edit: Index into Intervention.Edits and the field at fault.
type EditError struct {
	Index int
	Field string
	Msg   string
}

func (e *EditError) Error() string {
	return fmt.Sprintf("edit %d, field %s: %s", e.Index, e.Field, e.Msg)
}

// Activation is one recorded tensor.
type Activation struct {
	Shape []int
	Data  []float32
}

// Activations collects what a forward pass records, by Recorder name (it is a
// Recorder): run the clean input with Hidden, QKV and Internals and pass it as
// Edit.Source to patch those values into another run.
type Activations map[string]Activation

// Record keeps a copy of the tensor.
func (a Activations) Record(name string, shape []int, data []float32) error {
	a[name] = Activation{Shape: slices.Clone(shape), Data: slices.Clone(data)}
	return nil
}

// SourceName is the Recorder name of the activation hook carries at layer l
// ("" for an unknown hook): hook_resid_pre is the
// previous layer's hook_resid_post (the embedding at layer 0).
func SourceName(hook string, l int) string {
	switch hook {
	case "hook_resid_pre":
		if l == 0 {
			return "embed"
		}
		return fmt.Sprintf("blocks.%d.hook_resid_post", l-1)
	case "hook_resid_post", "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_attn_scores", "attn.hook_z":
		return fmt.Sprintf("blocks.%d.%s", l, hook)
	case "attn.hook_pattern":
		return fmt.Sprintf("blocks.%d.attn.pattern", l)
	}
	return ""
}

func (iv *Intervention) layers(e *Edit, nLayers int) []int {
	if e.Layers != nil {
		return e.Layers
	}
	all := make([]int, nLayers)
	for i := range all {
		all[i] = i
	}
	return all
}

// Check validates the edits against a model's config; the error is an *EditError.
func (iv *Intervention) Check(cfg *arch.Config) error {
	for i := range iv.Edits {
		e := &iv.Edits[i]
		bad := func(field, format string, args ...any) error {
			return &EditError{Index: i, Field: field, Msg: fmt.Sprintf(format, args...)}
		}
		if !slices.Contains(Hooks, e.Hook) {
			return bad("hook", "%q is not a hook point (expected one of %s)", e.Hook, strings.Join(Hooks, ", "))
		}
		for _, l := range e.Layers {
			if l < 0 || l >= cfg.Layers {
				return bad("layers", "layer %d does not exist (the model has %d layers, 0 to %d)", l, cfg.Layers, cfg.Layers-1)
			}
		}
		attn := strings.HasPrefix(e.Hook, "attn.")
		if e.Heads != nil && !attn {
			return bad("heads", "%s has no heads (only attn.* hooks do)", e.Hook)
		}
		nh := cfg.Heads
		if e.Hook == "attn.hook_k" || e.Hook == "attn.hook_v" {
			nh = cfg.KVHeads
		}
		for _, h := range e.Heads {
			if h < 0 || h >= nh {
				return bad("heads", "head %d does not exist (%s has %d heads, 0 to %d)", h, e.Hook, nh, nh-1)
			}
		}
		square := e.Hook == "attn.hook_pattern" || e.Hook == "attn.hook_attn_scores"
		if (e.KeyPositions != nil || e.Cells != nil) && !square {
			return bad("key_positions", "%s has no key axis (only attn.hook_pattern and attn.hook_attn_scores do)", e.Hook)
		}
		if e.Cells != nil && (e.Positions != nil || e.KeyPositions != nil) {
			return bad("cells", "cells cannot be combined with positions or key_positions")
		}
		for _, p := range slices.Concat(e.Positions, e.KeyPositions) {
			if p < 0 || (cfg.MaxPositions > 0 && p >= cfg.MaxPositions) {
				return bad("positions", "position %d is outside the model's context of %d", p, cfg.MaxPositions)
			}
		}
		for _, c := range e.Cells {
			if c[0] < 0 || c[1] < 0 {
				return bad("cells", "cell %v has a negative position", c)
			}
		}
		if e.Renormalize && e.Hook != "attn.hook_pattern" {
			return bad("renormalize", "only attn.hook_pattern rows can be renormalised, not %s", e.Hook)
		}
		switch e.Op {
		case OpZero, OpScale, OpAdd, OpSet:
		case OpNoise:
			if e.Value < 0 {
				return bad("value", "the noise standard deviation %g is negative", e.Value)
			}
		case OpPatch:
			if e.Source == nil {
				return bad("source", "op patch needs the activations of a source run")
			}
			for _, l := range iv.layers(e, cfg.Layers) {
				name := SourceName(e.Hook, l)
				if name == "" {
					return bad("hook", "%s cannot be patched: the forward pass does not record it", e.Hook)
				}
				if _, ok := e.Source[name]; !ok {
					return bad("source", "the source run has no %s (record it with ForwardOptions Hidden, QKV and Internals)", name)
				}
			}
		default:
			return bad("op", "%q is not an operation (expected zero, scale, add, set, noise or patch)", e.Op)
		}
		if math.IsNaN(e.Value) || math.IsInf(e.Value, 0) {
			return bad("value", "%g is not a finite number", e.Value)
		}
	}
	return nil
}

// hookEdit is the host side of one hook's edit in one layer: the tensors of
// arch.Edit at the bucketed shape [B, A, R, C] (resid: A = 1).
type hookEdit struct {
	hook          string
	dims          []int // tensor dimensions
	a, rows, cols int
	sel           []bool
	mul, add, min []float32
	renorm        []bool // [B, A, R]
	hasMin        bool
}

// span is the part of the sequence one pass computes: the query rows hold
// absolute positions lo ≤ r < hi (row index r − base), the key axes (hook_k,
// hook_v, the columns of hook_pattern and hook_attn_scores) absolute
// positions from 0 (index = position), real up to hi. A prefill pass is
// {0, n, 0}; decode step at position p is {p, p+1, p} (one query row, the
// cache's keys).
type span struct {
	lo, hi, base int
	decode       bool
}

// layerEdits builds the edit tensors of layer l for a batch of B inputs of n
// real tokens at bucket length T; nil when no edit names the layer.
func (iv *Intervention) layerEdits(cfg *arch.Config, l, B, n, T int) ([]*hookEdit, error) {
	return iv.spanEdits(cfg, l, B, T, T, span{0, n, 0, false})
}

// decodeEdits builds the edit tensors of layer l for the decode step at
// absolute position pos with a KV cache of capacity C: the query hooks edit
// the one row of position pos, hook_k and hook_v the cache row pos (the cache
// keeps the edited keys and values, so earlier rows were edited when they
// were computed), the pattern and scores the cells (pos, key ≤ pos).
func (iv *Intervention) decodeEdits(cfg *arch.Config, l, pos, C int) ([]*hookEdit, error) {
	return iv.spanEdits(cfg, l, 1, 1, C, span{pos, pos + 1, pos, true})
}

func (iv *Intervention) spanEdits(cfg *arch.Config, l, B, qRows, kRows int, sp span) ([]*hookEdit, error) {
	if iv == nil {
		return nil, nil
	}
	var out []*hookEdit
	byHook := map[string]*hookEdit{}
	for i := range iv.Edits {
		e := &iv.Edits[i]
		if !slices.Contains(iv.layers(e, cfg.Layers), l) {
			continue
		}
		he := byHook[e.Hook]
		if he == nil {
			he = newHookEdit(cfg, e.Hook, B, qRows, kRows)
			byHook[e.Hook] = he
			out = append(out, he)
		}
		if err := he.apply(e, i, l, sp); err != nil {
			return nil, err
		}
	}
	// Keep the hook order fixed so one structure compiles one graph.
	slices.SortFunc(out, func(x, y *hookEdit) int {
		return slices.Index(Hooks, x.hook) - slices.Index(Hooks, y.hook)
	})
	return out, nil
}

// keyHook reports whether hook's rows are key positions (the KV cache's rows).
func keyHook(hook string) bool { return hook == "attn.hook_k" || hook == "attn.hook_v" }

// newHookEdit allocates hook's edit for B inputs with qRows query rows and
// kRows key positions.
func newHookEdit(cfg *arch.Config, hook string, B, qRows, kRows int) *hookEdit {
	he := &hookEdit{hook: hook}
	switch hook {
	case "hook_resid_pre", "hook_resid_post":
		he.a, he.rows, he.cols = 1, qRows, cfg.Hidden
		he.dims = []int{B, qRows, cfg.Hidden}
	case "attn.hook_k", "attn.hook_v":
		he.a, he.rows, he.cols = cfg.KVHeads, kRows, cfg.HeadDim
	case "attn.hook_q", "attn.hook_z":
		he.a, he.rows, he.cols = cfg.Heads, qRows, cfg.HeadDim
	default:
		he.a, he.rows, he.cols = cfg.Heads, qRows, kRows
	}
	if he.dims == nil {
		he.dims = []int{B, he.a, he.rows, he.cols}
	}
	size := B * he.a * he.rows * he.cols
	he.sel = make([]bool, size)
	he.mul = make([]float32, size)
	he.add = make([]float32, size)
	for i := range he.mul {
		he.mul[i] = 1
	}
	return he
}

// within returns the positions of sel (nil: all) in [lo, hi).
func within(sel []int, lo, hi int) []int {
	var r []int
	if sel == nil {
		for j := lo; j < hi; j++ {
			r = append(r, j)
		}
		return r
	}
	for _, p := range sel {
		if p >= lo && p < hi {
			r = append(r, p)
		}
	}
	return r
}

// cells lists the (position, key position) cells edit e selects in span sp;
// key −1 stands for the whole row of a hook without a key axis.
func (he *hookEdit) cells(e *Edit, sp span) [][2]int {
	square := he.hook == "attn.hook_pattern" || he.hook == "attn.hook_attn_scores"
	var cells [][2]int
	if e.Cells != nil {
		for _, c := range e.Cells {
			if c[0] >= sp.lo && c[0] < sp.hi && c[1] < sp.hi {
				cells = append(cells, c)
			}
		}
		return cells
	}
	for _, r := range within(e.Positions, sp.lo, sp.hi) {
		if !square {
			cells = append(cells, [2]int{r, -1}) // the whole row (every column)
			continue
		}
		for _, c := range within(e.KeyPositions, 0, sp.hi) {
			cells = append(cells, [2]int{r, c})
		}
	}
	return cells
}

// patchSource returns the source tensor of patch edit e (index i) at layer
// l, checking its shape in a prefill pass; the number of rows and columns
// it covers.
func (he *hookEdit) patchSource(e *Edit, i, l int, sp span) (Activation, int, int, error) {
	name := SourceName(e.Hook, l)
	src := e.Source[name]
	if sp.decode {
		// Decode steps patch the positions the source covers (none beyond it).
		d := src.Shape
		if len(d) < 2 {
			return src, 0, 0, nil
		}
		return src, d[len(d)-2], d[len(d)-1], nil
	}
	n := sp.hi
	square := he.hook == "attn.hook_pattern" || he.hook == "attn.hook_attn_scores"
	want := []int{he.a, n, he.cols}
	if square {
		want[2] = n
	}
	if he.a == 1 && len(he.dims) == 3 {
		want = want[1:]
	}
	if !slices.Equal(src.Shape, want) || len(src.Data) != shapeSize(want) {
		return src, 0, 0, &EditError{Index: i, Field: "source", Msg: fmt.Sprintf("the source's %s has shape %v, this run's has %v (patch between inputs of the same length)", name, src.Shape, want)}
	}
	return src, n, want[len(want)-1], nil
}

// apply adds edit e (index i) of layer l in span sp.
func (he *hookEdit) apply(e *Edit, i, l int, sp span) error {
	B := he.dims[0]
	heads := e.Heads
	if heads == nil {
		heads = make([]int, he.a)
		for h := range heads {
			heads[h] = h
		}
	}
	cells := he.cells(e, sp)
	var src Activation
	srcRows, srcCols := 0, 0
	if e.Op == OpPatch {
		var err error
		if src, srcRows, srcCols, err = he.patchSource(e, i, l, sp); err != nil {
			return err
		}
	}
	var rng *rand.Rand
	if e.Op == OpNoise {
		stream := uint64(l)
		if sp.decode {
			stream |= uint64(sp.lo+1) << 32 // one stream per decode position
		}
		rng = rand.New(rand.NewPCG(e.Seed, stream))
	}
	if e.Threshold != nil && he.min == nil {
		he.min = make([]float32, len(he.sel))
		for j := range he.min {
			he.min[j] = float32(math.Inf(-1))
		}
		he.hasMin = true
	}
	if e.Renormalize && he.renorm == nil {
		he.renorm = make([]bool, B*he.a*he.rows)
	}
	base := sp.base
	if keyHook(he.hook) {
		base = 0
	}
	for b := range B {
		for _, h := range heads {
			for _, cell := range cells {
				r := cell[0]
				c0, c1 := cell[1], cell[1]+1
				if cell[1] < 0 {
					c0, c1 = 0, he.cols
				}
				if e.Op == OpPatch && (r >= srcRows || c1 > srcCols) {
					continue // a decode step past the source's positions
				}
				row := (b*he.a+h)*he.rows + r - base
				if he.renorm != nil && e.Renormalize {
					he.renorm[row] = true
				}
				for c := c0; c < c1; c++ {
					idx := row*he.cols + c
					var m, a float32
					switch e.Op {
					case OpZero:
						m, a = 0, 0
					case OpScale:
						m, a = float32(e.Value), 0
					case OpAdd:
						m, a = 1, float32(e.Value)
					case OpSet:
						m, a = 0, float32(e.Value)
					case OpNoise:
						m, a = 1, float32(rng.NormFloat64()*e.Value)
					case OpPatch:
						m, a = 0, src.Data[(h*srcRows+r)*srcCols+c]
					}
					if he.sel[idx] {
						he.mul[idx], he.add[idx] = he.mul[idx]*m, he.add[idx]*m+a
					} else {
						he.sel[idx], he.mul[idx], he.add[idx] = true, m, a
					}
					if e.Threshold != nil {
						he.min[idx] = float32(*e.Threshold)
					}
				}
			}
		}
	}
	return nil
}

func shapeSize(dims []int) int {
	s := 1
	for _, d := range dims {
		s *= d
	}
	return s
}

// key names the graph structure this edit needs (hook, threshold, renorm).
func (he *hookEdit) key() string {
	return fmt.Sprintf("%s:%t:%t", he.hook, he.hasMin, he.renorm != nil)
}

// tensors returns the graph inputs of this edit in the order editNodes reads them.
func (he *hookEdit) tensors() []*tensors.Tensor {
	ts := []*tensors.Tensor{
		tensors.FromFlatDataAndDimensions(he.sel, he.dims...),
		tensors.FromFlatDataAndDimensions(he.mul, he.dims...),
		tensors.FromFlatDataAndDimensions(he.add, he.dims...),
	}
	if he.hasMin {
		ts = append(ts, tensors.FromFlatDataAndDimensions(he.min, he.dims...))
	}
	if he.renorm != nil {
		rd := slices.Clone(he.dims)
		rd[len(rd)-1] = 1
		ts = append(ts, tensors.FromFlatDataAndDimensions(he.renorm, rd...))
	}
	return ts
}
