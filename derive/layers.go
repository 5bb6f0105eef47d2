package derive

import (
	"context"
	"fmt"
	"slices"

	"github.com/attnscope/attnscope/analysis"
	"github.com/attnscope/attnscope/tensor"
)

// sampleAttention gives a pass the attention of one sample, whole or layer by layer.
type sampleAttention struct {
	ctx    context.Context
	run    Run
	sample string
	whole  *tensor.Tensor // read on first use by a pass that needs every layer
	// reduced caches head-reduced attention [L,1,N,N] for HeadReduced passes.
	reduced map[reducedKey]*tensor.Tensor
}

type reducedKey struct {
	how           analysis.HeadReduce
	rowStochastic bool // the layers were checked with rows summing to 1
}

// headReduced returns the attention with each layer's heads reduced by how, [L,1,N,N],
// reading and checking one layer at a time.
func (a *sampleAttention) headReduced(how analysis.HeadReduce, rowStochastic bool) (*tensor.Tensor, error) {
	key := reducedKey{how, rowStochastic}
	if t := a.reduced[key]; t != nil {
		return t, nil
	}
	L, err := a.numLayers()
	if err != nil {
		return nil, err
	}
	if L == 0 {
		return nil, fmt.Errorf("attention has no layers")
	}
	var out *tensor.Tensor
	for l := range L {
		if err := a.ctx.Err(); err != nil {
			return nil, err
		}
		t, err := a.layer(l)
		if err != nil {
			return nil, err
		}
		if t, err = checkAttention(t, rowStochastic, l); err != nil {
			return nil, err
		}
		r, err := analysis.ReduceHeads(t, how)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = &tensor.Tensor{Shape: []int{L, 1, r.Shape[1], r.Shape[2]}, Data: make([]float64, 0, L*len(r.Data))}
		} else if r.Shape[1] != out.Shape[2] {
			return nil, fmt.Errorf("attention layer %d has %d×%d matrices, layer 0 %d×%d", l, r.Shape[1], r.Shape[2], out.Shape[2], out.Shape[3])
		}
		out.Data = append(out.Data, r.Data...)
	}
	if a.reduced == nil {
		a.reduced = map[reducedKey]*tensor.Tensor{}
	}
	a.reduced[key] = out
	return out, nil
}

// all returns the whole attention tensor [L,H,N,N] (kept for the sample's later
// passes), read layer by layer.
func (a *sampleAttention) all() (*tensor.Tensor, error) {
	if a.whole != nil {
		return a.whole, nil
	}
	L, err := a.numLayers()
	if err != nil {
		return nil, err
	}
	if L == 0 {
		return nil, fmt.Errorf("attention has no layers")
	}
	var t *tensor.Tensor
	for l := range L {
		if err := a.ctx.Err(); err != nil {
			return nil, err
		}
		x, err := a.layer(l)
		if err != nil {
			return nil, err
		}
		if t == nil {
			t = &tensor.Tensor{Shape: append([]int{L}, x.Shape[1:]...), Data: make([]float64, 0, L*len(x.Data))}
		} else if !slices.Equal(x.Shape[1:], t.Shape[1:]) {
			return nil, fmt.Errorf("attention layer %d has shape %v, layer 0 %v", l, x.Shape[1:], t.Shape[1:])
		}
		t.Data = append(t.Data, x.Data...)
	}
	a.whole = t
	return t, nil
}

// numLayers returns the number of layers.
func (a *sampleAttention) numLayers() (int, error) {
	if a.whole != nil {
		return a.whole.Shape[0], nil
	}
	n, err := a.run.NumLayers(a.sample)
	if err != nil {
		return 0, fmt.Errorf("attention: %w", err)
	}
	return n, nil
}

// layer returns layer l as [1,H,N,N] (not yet checked).
func (a *sampleAttention) layer(l int) (*tensor.Tensor, error) {
	if a.whole != nil {
		t := a.whole
		if len(t.Shape) == 3 { // [L,N,N]: one head per layer
			t = &tensor.Tensor{Shape: []int{t.Shape[0], 1, t.Shape[1], t.Shape[2]}, Data: t.Data}
		}
		if len(t.Shape) != 4 {
			return checkAttention(t, false, 0) // reports the rank
		}
		size := t.Size() / t.Shape[0]
		return &tensor.Tensor{Shape: append([]int{1}, t.Shape[1:]...), Data: t.Data[l*size : (l+1)*size]}, nil
	}
	t, err := a.run.AttentionLayer(a.sample, l)
	if err != nil {
		return nil, fmt.Errorf("attention: %w", err)
	}
	if len(t.Shape) != 3 {
		return nil, fmt.Errorf("attention layer %d has shape %v, want [head, query, key]", l, t.Shape)
	}
	return &tensor.Tensor{Shape: append([]int{1}, t.Shape...), Data: t.Data}, nil
}

// runByLayer runs an EachLayer, OneLayer, HeadReduced or Streamed pass over the layers of in's sample, one
// layer in memory at a time.
func runByLayer(ctx context.Context, att *sampleAttention, spec *Spec, in *Input, kw Kwargs) (*Result, error) {
	if spec.Layers == Streamed {
		L, err := att.numLayers()
		if err != nil {
			return nil, err
		}
		in.Tensor, in.NumLayers = nil, L
		in.Layer = func(l int) (*tensor.Tensor, error) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if l < 0 || l >= L {
				return nil, fmt.Errorf("no layer %d (the sample has %d)", l, L)
			}
			t, err := att.layer(l)
			if err != nil {
				return nil, err
			}
			return checkLayer(spec, t, l)
		}
		return spec.Fn(ctx, in, kw)
	}
	if spec.Layers == HeadReduced {
		t, err := att.headReduced(spec.Heads(kw), spec.RowStochastic)
		if err != nil {
			return nil, err
		}
		in.Tensor = t
		return spec.Fn(ctx, in, kw)
	}
	if spec.Layers == EachLayer && spec.Stream != nil && att.whole == nil {
		q, err := qkSample(att.run, att.sample)
		if err != nil {
			return nil, err
		}
		if q != nil {
			defer q.Close()
			return runStreamed(ctx, q, spec, kw)
		}
	}
	L, err := att.numLayers()
	if err != nil {
		return nil, err
	}
	if L == 0 {
		return nil, fmt.Errorf("attention has no layers")
	}
	layers := make([]int, L)
	for l := range layers {
		layers[l] = l
	}
	if spec.Layers == OneLayer {
		l := spec.Layer(L)
		if l < 0 || l >= L {
			return nil, fmt.Errorf("no layer %d (the sample has %d)", l, L)
		}
		layers = []int{l}
	}
	var out *Result
	for _, l := range layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t, err := att.layer(l)
		if err != nil {
			return nil, err
		}
		if in.Tensor, err = checkLayer(spec, t, l); err != nil {
			return nil, err
		}
		in.FirstLayer = l
		res, err := spec.Fn(ctx, in, kw)
		if err != nil {
			return nil, err
		}
		if res == nil || res.Tensor == nil {
			return nil, fmt.Errorf("layer %d: the function returned no tensor", l)
		}
		if spec.Layers == OneLayer {
			return res, nil
		}
		for k := range res.Metrics {
			if res.Metrics[k].Layer >= 0 {
				res.Metrics[k].Layer += l
			}
		}
		if out == nil {
			// Room for every layer's output at once: no regrowth copies of a large output.
			res.Tensor.Data = append(make([]float64, 0, len(layers)*len(res.Tensor.Data)), res.Tensor.Data...)
			out = res
			continue
		}
		if err := concat(out.Tensor, res.Tensor); err != nil {
			return nil, fmt.Errorf("layer %d: %w", l, err)
		}
		out.Metrics = append(out.Metrics, res.Metrics...)
	}
	if spec.Summarize != nil {
		out.Metrics = spec.Summarize(out.Metrics)
	}
	return out, nil
}

// checkLayer checks layer l ([1,H,N,N]) as the pass's input: attention rules for a pass
// taking attention, finite values for one taking any tensor.
func checkLayer(spec *Spec, t *tensor.Tensor, l int) (*tensor.Tensor, error) {
	if spec.Input == TakesAttention {
		return checkAttention(t, spec.RowStochastic, l)
	}
	if err := checkFinite(t); err != nil {
		return nil, fmt.Errorf("layer %d: %w", l, err)
	}
	return t, nil
}

// concat appends t to dst along the first axis.
func concat(dst, t *tensor.Tensor) error {
	if len(t.Shape) == 0 || len(t.Shape) != len(dst.Shape) {
		return fmt.Errorf("output of shape %v cannot follow %v along the first axis", t.Shape, dst.Shape)
	}
	for k := 1; k < len(t.Shape); k++ {
		if t.Shape[k] != dst.Shape[k] {
			return fmt.Errorf("output of shape %v cannot follow %v along the first axis", t.Shape, dst.Shape)
		}
	}
	dst.Shape[0] += t.Shape[0]
	dst.Data = append(dst.Data, t.Data...)
	return nil
}

// compute runs spec on in as derive does: an EachLayer or OneLayer pass given a whole
// attention tensor still computes layer by layer (on views of it).
func compute(ctx context.Context, spec *Spec, in *Input, kw Kwargs) (*Result, error) {
	if spec.Layers == AllLayers || spec.Input != TakesAttention || in.Tensor == nil {
		return spec.Fn(ctx, in, kw)
	}
	att := &sampleAttention{ctx: ctx, sample: in.Sample, whole: in.Tensor}
	return runByLayer(ctx, att, spec, in, kw)
}
