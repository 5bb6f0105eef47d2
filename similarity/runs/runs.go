// Package runs applies package similarity to two captured runs read through store:
// layer × layer similarity of hidden states (or attention) and the matching of
// attention heads (BERT-non-text's feature_pwcca.py and matching.py), writing the
// results as derived outputs of the first run with declared axes.
package runs

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

// Pair is two runs over the same samples with the same token count per sample.
type Pair struct {
	A, B *store.Run
	// Samples are the finished samples of both runs, sorted.
	Samples []string
	// Tokens is each sample's token count (attention query positions).
	Tokens []int
}

// OpenPair checks that a and b hold the same samples with the same numbers of
// tokens (row i of one is row i of the other) and returns them as a pair.
func OpenPair(a, b *store.Run) (*Pair, error) {
	sa, err := a.Samples()
	if err != nil {
		return nil, err
	}
	sb, err := b.Samples()
	if err != nil {
		return nil, err
	}
	if len(sa) == 0 {
		return nil, fmt.Errorf("run %s has no finished samples", a.Dir())
	}
	if !slices.Equal(sa, sb) {
		only := func(x, y []string) []string {
			set := map[string]bool{}
			for _, s := range y {
				set[s] = true
			}
			var out []string
			for _, s := range x {
				if !set[s] {
					out = append(out, s)
				}
			}
			return out
		}
		return nil, fmt.Errorf("runs %s and %s hold different samples (only in the first: %s; only in the second: %s): a paired comparison needs the same samples in both", a.Dir(), b.Dir(), list(only(sa, sb)), list(only(sb, sa)))
	}
	p := &Pair{A: a, B: b, Samples: sa, Tokens: make([]int, len(sa))}
	for i, id := range sa {
		na, err := tokenCount(a, id)
		if err != nil {
			return nil, err
		}
		nb, err := tokenCount(b, id)
		if err != nil {
			return nil, err
		}
		if na != nb {
			return nil, fmt.Errorf("sample %s has %d tokens in run %s and %d in run %s: a paired comparison needs the same token count (row i of one is row i of the other)", id, na, a.Dir(), nb, b.Dir())
		}
		p.Tokens[i] = na
	}
	return p, nil
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	if len(s) > 5 {
		return strings.Join(s[:5], ", ") + fmt.Sprintf(" and %d more", len(s)-5)
	}
	return strings.Join(s, ", ")
}

// tokenCount is the number of token positions of sample id's captured tensors.
func tokenCount(r *store.Run, id string) (int, error) {
	s, err := r.Sample(id)
	if err != nil {
		return 0, err
	}
	switch {
	case s.Attention != nil && s.Attention.Query > 0:
		return s.Attention.Query, nil
	case s.Hidden != nil && s.Hidden.Tokens > 0:
		return s.Hidden.Tokens, nil
	}
	n, err := r.NumLayers(id)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, fmt.Errorf("run %s, sample %s: no attention layers", r.Dir(), id)
	}
	t, err := r.AttentionLayer(id, 0)
	if err != nil {
		return 0, err
	}
	return t.Shape[1], nil
}

// Feature selects what represents a token at each layer.
type Feature string

const (
	// Hidden is the residual stream after each block (blocks.<l>.hook_resid_post).
	Hidden Feature = "hidden"
	// Attention is each query token's attention row of every head, [heads·keys].
	Attention Feature = "attention"
)

// layerNames returns the names of the representations per layer of run r.
func layerNames(r *store.Run, id string, f Feature) ([]string, error) {
	switch f {
	case Hidden:
		names, err := r.HiddenNames(id)
		if err != nil {
			return nil, fmt.Errorf("run %s: %w (capture with --hidden)", r.Dir(), err)
		}
		var out []string
		for l := 0; ; l++ {
			if !slices.Contains(names, store.ResidName(l)) {
				break
			}
			out = append(out, store.ResidName(l))
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("run %s, sample %s: no %s hidden states", r.Dir(), id, store.ResidName(0))
		}
		return out, nil
	case Attention:
		n, err := r.NumLayers(id)
		if err != nil {
			return nil, err
		}
		out := make([]string, n)
		for l := range out {
			out[l] = store.AttentionName(l)
		}
		return out, nil
	}
	return nil, fmt.Errorf("feature %q: hidden or attention expected", f)
}

// read returns sample id's representation at layer l, [tokens, width].
func read(r *store.Run, id string, f Feature, name string, l int) (*tensor.Tensor, error) {
	if f == Hidden {
		return r.Hidden(id, name)
	}
	a, err := r.AttentionLayer(id, l)
	if err != nil {
		return nil, err
	}
	h, q, k := a.Shape[0], a.Shape[1], a.Shape[2]
	out := tensor.New(q, h*k)
	for i := range q {
		for hh := range h {
			copy(out.Data[i*h*k+hh*k:i*h*k+(hh+1)*k], a.Data[(hh*q+i)*k:(hh*q+i+1)*k])
		}
	}
	return out, nil
}

// Layers reads run r's representations of the given samples, one [tokens, width]
// matrix per layer with the samples' tokens stacked in order, keeping the first
// maxTokens rows when maxTokens > 0 (BERT-non-text keeps the first 1000).
func Layers(ctx context.Context, r *store.Run, samples []string, f Feature, maxTokens int) (names []string, layers []*tensor.Tensor, err error) {
	names, err = layerNames(r, samples[0], f)
	if err != nil {
		return nil, nil, err
	}
	layers = make([]*tensor.Tensor, len(names))
	for l, name := range names {
		var data []float64
		rows, width := 0, -1
		for _, id := range samples {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
			if maxTokens > 0 && rows >= maxTokens {
				break
			}
			t, err := read(r, id, f, name, l)
			if err != nil {
				return nil, nil, fmt.Errorf("run %s, sample %s: %w", r.Dir(), id, err)
			}
			if width >= 0 && t.Shape[1] != width {
				return nil, nil, fmt.Errorf("run %s, layer %d: sample %s has width %d, the samples before %d (attention rows of samples of different lengths cannot be stacked: compare per sample)", r.Dir(), l, id, t.Shape[1], width)
			}
			width = t.Shape[1]
			take := t.Shape[0]
			if maxTokens > 0 {
				take = min(take, maxTokens-rows)
			}
			data = append(data, t.Data[:take*width]...)
			rows += take
		}
		layers[l] = &tensor.Tensor{Shape: []int{rows, width}, Data: data}
	}
	return names, layers, nil
}
