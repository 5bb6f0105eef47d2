// Package roberta defines RoBERTa and XLM-RoBERTa (RobertaForMaskedLM,
// XLMRobertaForMaskedLM): BERT's encoder (package bert) whose learned
// positions start after the padding index, padding_idx + 1 + i for the
// i-th non-pad token (pad tokens get padding_idx), with the lm_head MLM head
// (Liu et al. 2019; Conneau et al. 2020; transformers' modeling_roberta.py).
package roberta

import (
	"fmt"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/model/arch"
	"github.com/attnscope/attnscope/model/bert"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
)

// Arch is RoBERTa for one config.
type Arch struct {
	arch.Architecture // BERT's block, final norm (none) and sizes
	c                 *arch.Config
	pad, table        int // padding_idx and the position table's rows
}

// New returns the architecture of c.
func New(c *arch.Config) arch.Architecture {
	pad := 1
	if c.PadTokenID != nil {
		pad = *c.PadTokenID
	}
	return &Arch{Architecture: bert.New(c), c: c, pad: pad, table: c.MaxPositions + pad + 1}
}

// ParseConfig reads a RobertaConfig or XLMRobertaConfig (BERT's keys;
// layer_norm_eps 1e-12 unless given, pad_token_id default 1). The usable
// context is max_position_embeddings − pad_token_id − 1 (512 of 514).
func ParseConfig(raw checkpoint.RawConfig) (*arch.Config, error) {
	c, err := bert.ParseConfig(raw)
	if err != nil {
		return nil, err
	}
	c.ModelType, _ = raw.ModelType()
	pad := 1
	if c.PadTokenID != nil {
		pad = *c.PadTokenID
	}
	if pad < 0 || c.MaxPositions <= pad+1 {
		return nil, fmt.Errorf("field max_position_embeddings: %d leaves no position after pad_token_id %d (positions start at pad_token_id + 1)", c.MaxPositions, pad)
	}
	c.MaxPositions -= pad + 1
	return c, nil
}

func (a *Arch) EmbedParams() []arch.Param {
	d := a.c.Hidden
	e := "roberta.embeddings."
	return []arch.Param{
		{Key: "word", Name: e + "word_embeddings.weight", Shape: []int{a.c.VocabSize, d}},
		{Key: "pos", Name: e + "position_embeddings.weight", Shape: []int{a.table, d}},
		{Key: "type", Name: e + "token_type_embeddings.weight", Shape: []int{max(a.c.TypeVocabSize, 1), d}},
		{Key: "ln_w", Name: e + "LayerNorm.weight", Shape: []int{d}},
		{Key: "ln_b", Name: e + "LayerNorm.bias", Shape: []int{d}},
	}
}

// LayerParams are BERT's under the roberta. prefix.
func (a *Arch) LayerParams(l int) []arch.Param {
	ps := a.Architecture.LayerParams(l)
	for i := range ps {
		ps[i].Name = "roberta." + ps[i].Name[len("bert."):]
	}
	return ps
}

func (a *Arch) HeadParams() []arch.Param {
	d := a.c.Hidden
	dec := "roberta.embeddings.word_embeddings.weight"
	if !a.c.TieWordEmbeddings {
		dec = "lm_head.decoder.weight"
	}
	return []arch.Param{
		{Key: "t_w", Name: "lm_head.dense.weight", Shape: []int{d, d}},
		{Key: "t_b", Name: "lm_head.dense.bias", Shape: []int{d}},
		{Key: "t_ln_w", Name: "lm_head.layer_norm.weight", Shape: []int{d}},
		{Key: "t_ln_b", Name: "lm_head.layer_norm.bias", Shape: []int{d}},
		{Key: "dec", Name: dec, Shape: []int{a.c.VocabSize, d}},
		{Key: "dec_b", Name: "lm_head.bias", Shape: []int{a.c.VocabSize}},
	}
}

// Embed ignores the positions it is given: RoBERTa numbers the non-pad
// tokens from padding_idx + 1 (create_position_ids_from_input_ids).
func (a *Arch) Embed(w arch.Weights, ids, typeIDs, _ *Node) *Node {
	notPad := ConvertDType(NotEqual(ids, Scalar(ids.Graph(), ids.DType(), a.pad)), ids.DType())
	pos := AddScalar(Mul(CumSum(notPad, 1), notPad), float64(a.pad))
	x := Gather(w["word"], InsertAxes(ids, -1))
	x = Add(x, Gather(w["pos"], InsertAxes(pos, -1)))
	x = Add(x, Gather(w["type"], InsertAxes(typeIDs, -1)))
	return arch.LayerNorm(x, w["ln_w"], w["ln_b"], a.c.NormEps)
}

// Head is BERT's transform + decoder (lm_head.dense, gelu, lm_head.layer_norm, decoder + bias).
func (a *Arch) Head(w arch.Weights, x *Node) *Node { return a.Architecture.Head(w, x) }
