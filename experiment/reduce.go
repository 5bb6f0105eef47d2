package experiment

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/attnscope/attnscope/derive"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

// MoreWeightToRecent scales, in place, every query row i of an attention tensor
// [..., N, N] by sqrt(i+1): followup-attention's strategy_normalize_tokens
// more_weight_to_recent (decoder.normalize_less_attention_on_early_tokens), which
// offsets the advantage of early tokens, attended by every later one. The original
// scales each generation step's rows before summing the steps; every row belongs to
// one step, so scaling the assembled matrix is the same.
func MoreWeightToRecent(t *tensor.Tensor) {
	d := len(t.Shape)
	n, m := t.Shape[d-2], t.Shape[d-1]
	for base := 0; base < len(t.Data); base += n * m {
		for i := range n {
			s := math.Sqrt(float64(i + 1))
			row := t.Data[base+i*m : base+(i+1)*m]
			for j := range row {
				row[j] *= s
			}
		}
	}
}

// Reduce condenses attention [L, H, N, N] as followup-attention's
// strategy_reduce_head then strategy_reduce_layer do (decoder.condense_attention
// with keepdim): each of min, max, mean or sum reduces its axis to length 1; keep
// leaves it. The result stays 4-D; Squeeze gives the original's stored shape.
func Reduce(t *tensor.Tensor, head, layer string) (*tensor.Tensor, error) {
	if len(t.Shape) != 4 {
		return nil, fmt.Errorf("reduce attention: want [layer, head, query, key], got shape %v", t.Shape)
	}
	out, err := reduceAxis(t, 1, head)
	if err != nil {
		return nil, fmt.Errorf("strategy_reduce_head: %w", err)
	}
	if out, err = reduceAxis(out, 0, layer); err != nil {
		return nil, fmt.Errorf("strategy_reduce_layer: %w", err)
	}
	return out, nil
}

// reduceAxis reduces axis (0 or 1) of a 4-D tensor with fn, keeping it as length 1.
func reduceAxis(t *tensor.Tensor, axis int, fn string) (*tensor.Tensor, error) {
	if fn == "keep" {
		return t, nil
	}
	if !contains(Reducers, fn) {
		return nil, fmt.Errorf("unknown reducer %q (want one of min, max, mean, sum, keep)", fn)
	}
	shape := slices.Clone(t.Shape)
	k := shape[axis]
	shape[axis] = 1
	out := tensor.New(shape...)
	// outer: indices before axis; inner: elements after it.
	outer, inner := 1, 1
	for i := range axis {
		outer *= t.Shape[i]
	}
	for i := axis + 1; i < 4; i++ {
		inner *= t.Shape[i]
	}
	for o := range outer {
		dst := out.Data[o*inner : (o+1)*inner]
		for e := range dst {
			var acc float64
			switch fn {
			case "min":
				acc = math.Inf(1)
			case "max":
				acc = math.Inf(-1)
			}
			for j := range k {
				v := t.Data[(o*k+j)*inner+e]
				switch fn {
				case "min":
					acc = math.Min(acc, v)
				case "max":
					acc = math.Max(acc, v)
				default:
					acc += v
				}
			}
			if fn == "mean" {
				acc /= float64(k)
			}
			dst[e] = acc
		}
	}
	return out, nil
}

// Squeeze drops every axis of length 1, as numpy.squeeze does on the original's
// (1, L, 1, H, N, N) tensor: a model with one layer or one head loses that axis too
// (a quirk of the original kept here so that its notebooks find the shapes they
// expect).
func Squeeze(shape []int) []int {
	var out []int
	for _, d := range shape {
		if d != 1 {
			out = append(out, d)
		}
	}
	return out
}

// AttTensorFunction is the pass function that gives the run folder the original's
// att_tensor when the experiment reduces or normalises the attention: passes whose
// input_folder is att_tensor then read it instead of the captured attention.
const AttTensorFunction = "followup_att_tensor"

// Registry returns derive's built-in passes plus AttTensorFunction.
func Registry() *derive.Registry {
	reg := derive.DefaultRegistry()
	enum := func(doc string) derive.KwargSpec {
		return derive.KwargSpec{Kind: derive.KwString, Default: "keep", Enum: Reducers, Doc: doc}
	}
	err := reg.Register(derive.Spec{
		Name:  AttTensorFunction,
		Doc:   "followup-attention's stored att_tensor: rows scaled by sqrt(i+1) (more_weight_to_recent), then heads and layers reduced (min|max|mean|sum|keep)",
		Input: derive.TakesAttention,
		Kwargs: map[string]derive.KwargSpec{
			"reduce_head":      enum("strategy_reduce_head"),
			"reduce_layer":     enum("strategy_reduce_layer"),
			"normalize_tokens": {Kind: derive.KwString, Default: "none", Enum: []string{"none", "more_weight_to_recent"}, Doc: "strategy_normalize_tokens"},
		},
		Fn: func(_ context.Context, in *derive.Input, kw derive.Kwargs) (*derive.Result, error) {
			t := in.Tensor.Clone()
			if kw.String("normalize_tokens") == "more_weight_to_recent" {
				MoreWeightToRecent(t)
			}
			r, err := Reduce(t, kw.String("reduce_head"), kw.String("reduce_layer"))
			if err != nil {
				return nil, err
			}
			// Drop the reduced axes (not a kept axis of length 1).
			var shape []int
			for i, d := range r.Shape {
				if i == 0 && kw.String("reduce_layer") != "keep" || i == 1 && kw.String("reduce_head") != "keep" {
					continue
				}
				shape = append(shape, d)
			}
			r.Shape = shape
			return &derive.Result{Tensor: r}, nil
		},
		Axes: func(in []store.Axis, kw derive.Kwargs) ([]store.Axis, error) {
			if len(in) != 4 {
				return nil, fmt.Errorf("want attention [layer, head, query, key], got %s", store.AxesString(in))
			}
			var out []store.Axis
			if kw.String("reduce_layer") == "keep" {
				out = append(out, in[0])
			}
			if kw.String("reduce_head") == "keep" {
				out = append(out, in[1])
			}
			return append(out, in[2], in[3]), nil
		},
	})
	if err != nil {
		panic(err) // a programming error, caught by the tests
	}
	return reg
}
