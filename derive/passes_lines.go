package derive

import (
	"context"
	"errors"
	"fmt"

	"github.com/attnscope/attnscope/analysis/code"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

// promptTokens returns how many leading tokens of an n-token tensor are prompt tokens
// with character offsets in the sample's text.
// promptText is the text a sample's prompt tokens cover: its prompt (the whole text
// of a plain forward pass).
func promptText(m *store.Sample) string {
	if m.PromptText != "" {
		return m.PromptText
	}
	return m.Text
}

func promptTokens(m *store.Sample, n int) (int, error) {
	if m == nil || len(m.Offsets) == 0 {
		return 0, errors.New("needs the sample's text and token character offsets (metadata)")
	}
	p := min(n, len(m.Offsets))
	if m.PromptLen > 0 {
		p = min(p, m.PromptLen)
	}
	return p, nil
}

// matrices splits a tensor whose last two axes are n×n into its leading index space.
func matrices(t *tensor.Tensor) (lead []int, count, n int, err error) {
	r := len(t.Shape)
	if r < 2 || t.Shape[r-1] != t.Shape[r-2] {
		return nil, 0, 0, fmt.Errorf("input has shape %v, want square matrices in the last two axes", t.Shape)
	}
	n = t.Shape[r-1]
	count = 1
	for _, d := range t.Shape[:r-2] {
		count *= d
	}
	return t.Shape[:r-2], count, n, nil
}

// linesSpec is the pass "attention_to_lines", followup-attention's
// convert_to_token_to_lines generalised (spec §1.5, §1.7): every matrix (the last two
// axes) is cut to the prompt's T tokens and its columns are reduced per source line
// (aggregate_dim_tokens_to_line, agg sum by default), giving [..., T, lines]; with
// rows: true the rows are reduced per line too, giving [..., lines, lines]. A token's
// line is the number of newlines before its first character (from the tokenizer's
// character offsets); lines without a token are absent.
func linesSpec() Spec {
	return Spec{
		Name:   "attention_to_lines",
		Layers: EachLayer, // per matrix: attention is read one layer at a time
		Doc:    "token×token matrices to token×line (or line×line) by summing the columns (and rows) of each source line",
		Input:  TakesTensor,
		Kwargs: map[string]KwargSpec{
			"agg":  {Kind: KwString, Default: "sum", Enum: []string{"sum", "mean", "max"}, Doc: "reduction of the tokens of one line"},
			"rows": {Kind: KwBool, Default: false, Doc: "also reduce the query rows per line (line×line)"},
		},
		Fn: attentionToLines,
	}
}

func attentionToLines(ctx context.Context, in *Input, kw Kwargs) (*Result, error) {
	lead, count, n, err := matrices(in.Tensor)
	if err != nil {
		return nil, err
	}
	p, err := promptTokens(in.Meta, n)
	if err != nil {
		return nil, err
	}
	lines, err := code.LinesFromOffsets(promptText(in.Meta), in.Meta.Offsets[:p])
	if err != nil {
		return nil, err
	}
	agg := map[string]code.Agg{"sum": code.Sum, "mean": code.Mean, "max": code.Max}[kw.String("agg")]
	var out *tensor.Tensor
	m := make([][]float64, p)
	for k := 0; k < count; k++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		mat := in.Tensor.Data[k*n*n:][:n*n]
		for i := range m {
			m[i] = mat[i*n:][:p]
		}
		res, err := code.AggregateToLines(m, 1, lines, agg)
		if err != nil {
			return nil, err
		}
		if kw.Bool("rows") {
			if res, err = code.AggregateToLines(res, 0, lines, agg); err != nil {
				return nil, err
			}
		}
		if out == nil {
			out = tensor.New(append(append([]int(nil), lead...), len(res), len(res[0]))...)
		}
		size := len(res) * len(res[0])
		for i, row := range res {
			copy(out.Data[k*size+i*len(row):], row)
		}
	}
	return &Result{Tensor: out}, nil
}

// distributionKwarg is the kwarg choosing how a token's weight spreads over its
// characters (followup-attention's distribution: replication or equal_share).
func distributionKwarg(def string) KwargSpec {
	return KwargSpec{Kind: KwString, Default: def, Enum: []string{"replication", "equal_share"}, Doc: "how a token's weight spreads over its characters"}
}

// charsSpec is the pass "attention_to_chars", followup-attention's map_to_char_level
// (spec §1.5) driven by the tokenizer's character offsets: the weight of each prompt
// token (a [N] vector as is; for matrices the attention it receives, Σ_i M[i,j] over
// the prompt's query rows) is spread over its characters, whole (replication, the
// original's default) or divided by its length (equal_share). Output: one weight per
// character of the prompt text, [..., characters] for [..., N, N] input.
func charsSpec() Spec {
	return Spec{
		Name:   "attention_to_chars",
		Layers: EachLayer, // per matrix: attention is read one layer at a time
		Doc:    "token weights (or the attention each token receives) spread over the prompt's characters, for heatmaps over source code",
		Input:  TakesTensor,
		Kwargs: map[string]KwargSpec{
			"distribution": distributionKwarg("replication"),
		},
		Fn: attentionToChars,
	}
}

func attentionToChars(ctx context.Context, in *Input, kw Kwargs) (*Result, error) {
	t := in.Tensor
	dist, err := code.ParseDistribution(kw.String("distribution"))
	if err != nil {
		return nil, err
	}
	n := 0
	if len(t.Shape) > 0 {
		n = t.Shape[len(t.Shape)-1]
	}
	p, err := promptTokens(in.Meta, n)
	if err != nil {
		return nil, err
	}
	nChars := len([]rune(promptText(in.Meta)))
	if len(t.Shape) == 1 {
		chars, err := code.CharWeightsFromOffsets(in.Meta.Offsets[:p], t.Data[:p], nChars, dist)
		if err != nil {
			return nil, err
		}
		return &Result{Tensor: &tensor.Tensor{Shape: []int{nChars}, Data: chars}}, nil
	}
	lead, count, n, err := matrices(t)
	if err != nil {
		return nil, fmt.Errorf("input has shape %v, want [N] or [..., N, N]", t.Shape)
	}
	out := tensor.New(append(append([]int(nil), lead...), nChars)...)
	w := make([]float64, p)
	for k := 0; k < count; k++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		mat := t.Data[k*n*n:][:n*n]
		clear(w)
		for i := 0; i < p; i++ {
			for j := 0; j < p; j++ {
				w[j] += mat[i*n+j]
			}
		}
		chars, err := code.CharWeightsFromOffsets(in.Meta.Offsets[:p], w, nChars, dist)
		if err != nil {
			return nil, err
		}
		copy(out.Data[k*nChars:], chars)
	}
	return &Result{Tensor: out}, nil
}
