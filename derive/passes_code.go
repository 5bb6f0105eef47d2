package derive

import (
	"context"
	"errors"
	"fmt"

	"github.com/attnscope/attnscope/analysis/code"
	"github.com/attnscope/attnscope/tensor"
)

// codeCategorySpec is the pass "attention_per_code_category" (spec §1.10 item 3,
// PROPOSED there): the attention that each syntactic category of the prompt's source
// code receives. The weight of key token j is the attention it receives, Σ_i A[i,j]
// over the prompt's query rows i (for [L,H,N,N] input: per layer and head; a [N,N]
// matrix: the same; a [N] vector: used as is). Token weights are spread over the
// token's characters (equal_share by default), the source is cut into lexemes by
// tree-sitter, and per category we report the total, the mean per lexeme and the
// share of the total.
//
// Output: [L,H,C] shares for attention input, [C] shares for a matrix or vector, with
// C = len(code.Categories()) in that order. Metrics: "<category>_share" per layer and
// head (attention input), and "<category>_share", "<category>_mean" over all layers and
// heads (layer = head = -1, from the head-and-layer mean of the received weights).
func codeCategorySpec() Spec {
	return Spec{
		Name:  "attention_per_code_category",
		Doc:   "attention received by each syntactic category of the prompt's source code (tree-sitter)",
		Input: TakesTensor,
		// Given the attention itself, the layers are read one at a time.
		Layers: Streamed,
		Kwargs: map[string]KwargSpec{
			"language":     {Kind: KwString, Default: "", Doc: "source language, one of " + fmt.Sprint(code.Languages()) + "; default: the sample's, else python"},
			"distribution": distributionKwarg("equal_share"),
		},
		Fn: attentionPerCodeCategory,
	}
}

func attentionPerCodeCategory(ctx context.Context, in *Input, kw Kwargs) (*Result, error) {
	m := in.Meta
	if m == nil || promptText(m) == "" || len(m.Offsets) == 0 {
		return nil, errors.New("needs the sample's text and token character offsets (metadata)")
	}
	lang := kw.String("language")
	if lang == "" {
		lang = m.Language
	}
	if lang == "" {
		lang = "python"
	}
	dist, err := code.ParseDistribution(kw.String("distribution"))
	if err != nil {
		return nil, err
	}
	text := promptText(m)
	src := []byte(text)
	lexemes, err := code.Lex(ctx, lang, src)
	if err != nil {
		return nil, err
	}
	nChars := len([]rune(text))
	t := in.Tensor
	var n int
	var first *tensor.Tensor // streamed attention: layer 0, read for the key count
	switch {
	case t != nil:
		n = t.Shape[len(t.Shape)-1]
	case in.NumLayers == 0:
		return nil, errors.New("attention has no layers")
	default:
		if first, err = in.Layer(0); err != nil {
			return nil, err
		}
		n = first.Shape[3]
	}
	// Prompt tokens that are keys of this tensor and have offsets in the text.
	p := min(n, len(m.Offsets))
	if m.PromptLen > 0 {
		p = min(p, m.PromptLen)
	}
	cats := code.Categories()
	C := len(cats)
	// received returns the weight each of the first p keys receives from the first p queries of matrix mat (n×n).
	received := func(mat []float64) []float64 {
		w := make([]float64, p)
		for i := 0; i < p; i++ {
			for j := 0; j < p; j++ {
				w[j] += mat[i*n+j]
			}
		}
		return w
	}
	stats := func(w []float64) ([]code.CategoryStat, error) {
		chars, err := code.CharWeightsFromOffsets(m.Offsets[:p], w, nChars, dist)
		if err != nil {
			return nil, err
		}
		return code.AttentionPerCategory(lexemes, src, chars)
	}
	res := &Result{}
	var mean []float64
	// perHead fills the [L,H,C] output and metrics for layer l's H heads (data [H,n,n])
	// and adds their received weights, divided by L·H, to mean.
	perHead := func(l, L, H int, data []float64) error {
		for h := 0; h < H; h++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			w := received(data[h*n*n:][:n*n])
			for j, v := range w {
				mean[j] += v / float64(L*H)
			}
			st, err := stats(w)
			if err != nil {
				return err
			}
			for c, s := range st {
				res.Tensor.Data[(l*H+h)*C+c] = s.Share
				res.Metrics = append(res.Metrics, Metric{Layer: l, Head: h, Name: string(s.Category) + "_share", Value: s.Share})
			}
		}
		return nil
	}
	switch {
	case t == nil:
		L := in.NumLayers
		for l := 0; l < L; l++ {
			a := first
			if l > 0 {
				if a, err = in.Layer(l); err != nil {
					return nil, err
				}
			}
			if a.Shape[2] != n || a.Shape[3] != n {
				return nil, fmt.Errorf("attention layer %d has shape %v, want [1,H,%d,%d]", l, a.Shape, n, n)
			}
			H := a.Shape[1]
			if res.Tensor == nil {
				res.Tensor = tensor.New(L, H, C)
				mean = make([]float64, p)
			} else if H != res.Tensor.Shape[1] {
				return nil, fmt.Errorf("attention layer %d has %d heads, layer 0 %d", l, H, res.Tensor.Shape[1])
			}
			if err := perHead(l, L, H, a.Data); err != nil {
				return nil, err
			}
		}
	case len(t.Shape) == 1:
		mean = append([]float64(nil), t.Data[:p]...)
	case len(t.Shape) == 2:
		if t.Shape[0] != n {
			return nil, fmt.Errorf("matrix input has shape %v, want square", t.Shape)
		}
		mean = received(t.Data)
	case len(t.Shape) == 4:
		L, H := t.Shape[0], t.Shape[1]
		if t.Shape[2] != n {
			return nil, fmt.Errorf("attention input has shape %v, want square matrices", t.Shape)
		}
		res.Tensor = tensor.New(L, H, C)
		mean = make([]float64, p)
		for l := 0; l < L; l++ {
			if err := perHead(l, L, H, t.Data[l*H*n*n:][:H*n*n]); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("input has shape %v, want [N], [N,N] or [L,H,N,N]", t.Shape)
	}
	st, err := stats(mean)
	if err != nil {
		return nil, err
	}
	if res.Tensor == nil {
		res.Tensor = tensor.New(C)
		for c, s := range st {
			res.Tensor.Data[c] = s.Share
		}
	}
	for _, s := range st {
		res.Metrics = append(res.Metrics,
			Metric{Layer: -1, Head: -1, Name: string(s.Category) + "_share", Value: s.Share},
			Metric{Layer: -1, Head: -1, Name: string(s.Category) + "_mean", Value: s.Mean})
	}
	return res, nil
}
