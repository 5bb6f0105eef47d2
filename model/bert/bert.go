// Package bert defines BERT for masked language modelling (BertForMaskedLM):
// word + position + token-type embeddings with LayerNorm, post-LayerNorm
// encoder blocks, bidirectional attention under a padding mask, and the MLM
// head dense → gelu → LayerNorm → tied decoder + bias (Devlin et al. 2019;
// transformers' modeling_bert.py).
package bert

import (
	"encoding/json"
	"fmt"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/model/arch"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
)

// Arch is BERT for one config.
type Arch struct{ c *arch.Config }

// New returns the architecture of c.
func New(c *arch.Config) arch.Architecture { return &Arch{c: c} }

// ParseConfig reads a BertConfig (hidden_size, num_hidden_layers, ...,
// type_vocab_size, layer_norm_eps default 1e-12, tied decoder, dropout rates
// hidden_dropout_prob and attention_probs_dropout_prob default 0.1).
func ParseConfig(raw checkpoint.RawConfig) (*arch.Config, error) {
	c := &arch.Config{
		ModelType: "bert", Raw: raw, NormEps: 1e-12, Activation: "gelu", TieWordEmbeddings: true,
		AttentionBias: true, MLPBias: true, RotaryFraction: 1, Keys: arch.HFKeys,
		HiddenDropout: 0.1, AttentionDropout: 0.1,
	}
	f := raw.Fields()
	f.Float("hidden_dropout_prob", &c.HiddenDropout)
	f.Float("attention_probs_dropout_prob", &c.AttentionDropout)
	arch.ReadSizes(f, c)
	f.Float("layer_norm_eps", &c.NormEps)
	f.String("hidden_act", &c.Activation)
	arch.ReadCommon(f, c)
	return c.Finish(f.Err())
}

func (a *Arch) EmbedParams() []arch.Param {
	d := a.c.Hidden
	return []arch.Param{
		{Key: "word", Name: "bert.embeddings.word_embeddings.weight", Shape: []int{a.c.VocabSize, d}},
		{Key: "pos", Name: "bert.embeddings.position_embeddings.weight", Shape: []int{a.c.MaxPositions, d}},
		{Key: "type", Name: "bert.embeddings.token_type_embeddings.weight", Shape: []int{max(a.c.TypeVocabSize, 1), d}},
		{Key: "ln_w", Name: "bert.embeddings.LayerNorm.weight", Shape: []int{d}},
		{Key: "ln_b", Name: "bert.embeddings.LayerNorm.bias", Shape: []int{d}},
	}
}

func (a *Arch) LayerParams(l int) []arch.Param {
	d, m := a.c.Hidden, a.c.Intermediate
	p := func(key, suffix string, shape ...int) arch.Param {
		return arch.Param{Key: key, Name: fmt.Sprintf("bert.encoder.layer.%d.%s", l, suffix), Shape: shape}
	}
	return []arch.Param{
		p("q_w", "attention.self.query.weight", d, d), p("q_b", "attention.self.query.bias", d),
		p("k_w", "attention.self.key.weight", d, d), p("k_b", "attention.self.key.bias", d),
		p("v_w", "attention.self.value.weight", d, d), p("v_b", "attention.self.value.bias", d),
		p("o_w", "attention.output.dense.weight", d, d), p("o_b", "attention.output.dense.bias", d),
		p("ln1_w", "attention.output.LayerNorm.weight", d), p("ln1_b", "attention.output.LayerNorm.bias", d),
		p("up_w", "intermediate.dense.weight", m, d), p("up_b", "intermediate.dense.bias", m),
		p("down_w", "output.dense.weight", d, m), p("down_b", "output.dense.bias", d),
		p("ln2_w", "output.LayerNorm.weight", d), p("ln2_b", "output.LayerNorm.bias", d),
	}
}

// FinalParams is empty: BERT has no final norm.
func (a *Arch) FinalParams() []arch.Param { return nil }

func (a *Arch) HeadParams() []arch.Param {
	d := a.c.Hidden
	dec := "bert.embeddings.word_embeddings.weight"
	if !a.c.TieWordEmbeddings {
		dec = "cls.predictions.decoder.weight"
	}
	return []arch.Param{
		{Key: "t_w", Name: "cls.predictions.transform.dense.weight", Shape: []int{d, d}},
		{Key: "t_b", Name: "cls.predictions.transform.dense.bias", Shape: []int{d}},
		{Key: "t_ln_w", Name: "cls.predictions.transform.LayerNorm.weight", Shape: []int{d}},
		{Key: "t_ln_b", Name: "cls.predictions.transform.LayerNorm.bias", Shape: []int{d}},
		{Key: "dec", Name: dec, Shape: []int{a.c.VocabSize, d}},
		{Key: "dec_b", Name: "cls.predictions.bias", Shape: []int{a.c.VocabSize}},
	}
}

func (a *Arch) Embed(w arch.Weights, ids, typeIDs, positions *Node) *Node {
	x := Gather(w["word"], InsertAxes(ids, -1))
	x = Add(x, Gather(w["pos"], InsertAxes(positions, -1)))
	x = Add(x, Gather(w["type"], InsertAxes(typeIDs, -1)))
	return arch.LayerNorm(x, w["ln_w"], w["ln_b"], a.c.NormEps)
}

func (a *Arch) Block(w arch.Weights, x *Node, in arch.AttentionInputs) arch.BlockOutputs {
	h, hd, eps := a.c.Heads, a.c.HeadDim, a.c.NormEps
	q := arch.SplitHeads(arch.Linear(x, w["q_w"], w["q_b"]), h, hd)
	k := arch.SplitHeads(arch.Linear(x, w["k_w"], w["k_b"]), h, hd)
	v := arch.SplitHeads(arch.Linear(x, w["v_w"], w["v_b"]), h, hd)
	att, pattern, lse := in.Attend(q, k, v)
	drop := func(x *Node, _ float64) *Node { return x }
	if in.Dropout != nil {
		// transformers' BertSelfAttention drops attention probabilities before
		// weighting the values; the returned pattern is the one before dropout.
		drop = in.Dropout
		att = arch.MergeHeads(Dot(drop(pattern, a.c.AttentionDropout), v).General([]int{3}, []int{0, 1}, []int{2}, []int{0, 1}))
	}
	attnSum := Add(x, drop(arch.Linear(att, w["o_w"], w["o_b"]), a.c.HiddenDropout))
	x = arch.LayerNorm(attnSum, w["ln1_w"], w["ln1_b"], eps)
	mlp := arch.Linear(arch.LinearAct(x, w["up_w"], w["up_b"], a.c.Activation), w["down_w"], w["down_b"])
	mlpSum := Add(x, drop(mlp, a.c.HiddenDropout))
	x = arch.LayerNorm(mlpSum, w["ln2_w"], w["ln2_b"], eps)
	return arch.BlockOutputs{Out: x, Pattern: pattern, LSE: lse, Q: q, K: k, V: v, AttnPreLN: attnSum, MLPPreLN: mlpSum}
}

// ClassifierParams are BertForSequenceClassification's pooler (dense + tanh
// over the first token) and classifier (linear to labels outputs).
func (a *Arch) ClassifierParams(labels int) []arch.Param {
	d := a.c.Hidden
	return []arch.Param{
		{Key: "pool_w", Name: "bert.pooler.dense.weight", Shape: []int{d, d}},
		{Key: "pool_b", Name: "bert.pooler.dense.bias", Shape: []int{d}},
		{Key: "cls_w", Name: "classifier.weight", Shape: []int{labels, d}},
		{Key: "cls_b", Name: "classifier.bias", Shape: []int{labels}},
	}
}

// Classify is BertForSequenceClassification's head: tanh(W_p·x[:,0]+b_p), then
// the classifier W_c·dropout(pooled)+b_c → [B, labels] (classifier_dropout,
// else hidden_dropout_prob, when drop is non-nil).
func (a *Arch) Classify(w arch.Weights, x *Node, drop arch.DropoutFunc) *Node {
	first := Squeeze(SliceAxis(x, 1, AxisRange(0, 1)), 1)
	pooled := Tanh(arch.Linear(first, w["pool_w"], w["pool_b"]))
	if drop != nil {
		rate := a.c.HiddenDropout
		if v, ok := a.c.Raw["classifier_dropout"]; ok && string(v) != "null" {
			_ = json.Unmarshal(v, &rate)
		}
		pooled = drop(pooled, rate)
	}
	return arch.Linear(pooled, w["cls_w"], w["cls_b"])
}

// FinalNorm returns x: BERT has no final norm.
func (a *Arch) FinalNorm(_ arch.Weights, x *Node) *Node { return x }

func (a *Arch) Head(w arch.Weights, x *Node) *Node {
	y := arch.LinearAct(x, w["t_w"], w["t_b"], a.c.Activation)
	y = arch.LayerNorm(y, w["t_ln_w"], w["t_ln_b"], a.c.NormEps)
	return arch.Linear(y, w["dec"], w["dec_b"])
}
func (a *Arch) Causal() bool       { return false }
func (a *Arch) RotaryDim() int     { return 0 }
func (a *Arch) RopeTheta() float64 { return 0 }
func (a *Arch) KVHeads() int       { return a.c.Heads }
func (a *Arch) HeadDim() int       { return a.c.HeadDim }
