// Package seq2seq is the recurrent encoder–decoder of Trina-SE/Text_to_Python
// (src/models.py) on GoMLX: a 2-layer bidirectional LSTM encoder, decoder initial
// states tanh(W [h_fwd; h_bwd]), Bahdanau additive attention (Bahdanau, Cho &
// Bengio 2015, "Neural Machine Translation by Jointly Learning to Align and
// Translate") and an LSTM decoder whose input is [emb(y_{t−1}); context] and whose
// output layer reads [o_t; context; emb(y_{t−1})]; plus the same module's baselines
// without attention (LSTM) and with plain tanh RNN cells. It trains with teacher
// forcing, Adam and gradient clipping, decodes greedily or with beam search, and
// returns every decoding step's attention over the source positions.
package seq2seq

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
)

// Model kinds.
const (
	KindAttention = "lstm_attention" // bidirectional LSTM encoder, LSTM decoder with Bahdanau attention
	KindLSTM      = "lstm"           // the same without attention
	KindRNN       = "rnn"            // tanh RNN cells, no attention
)

// Config describes a model. The defaults of Text_to_Python are embed 256,
// hidden 256, 2 layers, dropout 0.3.
type Config struct {
	Kind     string  `json:"kind"`
	SrcVocab int     `json:"src_vocab_size"`
	TrgVocab int     `json:"trg_vocab_size"`
	Embed    int     `json:"embed_dim"`
	Hidden   int     `json:"hidden_dim"`
	Layers   int     `json:"num_layers"`
	Dropout  float64 `json:"dropout"`
	// MaskPadding restricts the attention softmax to non-PAD source positions; the
	// original attends over every position (SOS, EOS and PAD included).
	MaskPadding bool `json:"mask_padding"`
	// MaxSrcLen and MaxTrgLen are the token limits before SOS/EOS are added
	// (Text_to_Python: 50 and 80).
	MaxSrcLen int `json:"max_src_len"`
	MaxTrgLen int `json:"max_trg_len"`
}

// Validate checks the sizes and the kind.
func (c Config) Validate() error {
	switch c.Kind {
	case KindAttention, KindLSTM, KindRNN:
	default:
		return fmt.Errorf("seq2seq: model kind %q: %q, %q or %q expected", c.Kind, KindAttention, KindLSTM, KindRNN)
	}
	if c.SrcVocab < 5 || c.TrgVocab < 5 || c.Embed < 1 || c.Hidden < 1 || c.Layers < 1 || c.MaxSrcLen < 1 || c.MaxTrgLen < 1 {
		return fmt.Errorf("seq2seq: config %+v: vocabularies above the 4 specials and positive sizes expected", c)
	}
	if c.Dropout < 0 || c.Dropout >= 1 {
		return fmt.Errorf("seq2seq: dropout %g: in [0, 1) expected", c.Dropout)
	}
	return nil
}

// Attention reports whether the decoder attends over the encoder states.
func (c Config) Attention() bool { return c.Kind == KindAttention }

func (c Config) gates() int {
	if c.Kind == KindRNN {
		return 1
	}
	return 4
}

// ParamSpec names one weight tensor (PyTorch state-dict names of the original).
type ParamSpec struct {
	Name  string
	Shape []int
	// Bound > 0: initialised uniform in [−Bound, Bound] (PyTorch's LSTM and Linear
	// defaults); 0: standard normal (nn.Embedding).
	Bound float64
}

// Params lists the weights in a fixed order.
func (c Config) Params() []ParamSpec {
	H, E, G := c.Hidden, c.Embed, c.gates()
	rnnBound := 1 / math.Sqrt(float64(H))
	var ps []ParamSpec
	rnn := func(prefix string, layer, in int, bidir bool) {
		sfx := []string{""}
		if bidir {
			sfx = append(sfx, "_reverse")
		}
		for _, s := range sfx {
			l := fmt.Sprintf("%d%s", layer, s)
			ps = append(ps,
				ParamSpec{prefix + ".weight_ih_l" + l, []int{G * H, in}, rnnBound},
				ParamSpec{prefix + ".weight_hh_l" + l, []int{G * H, H}, rnnBound},
				ParamSpec{prefix + ".bias_ih_l" + l, []int{G * H}, rnnBound},
				ParamSpec{prefix + ".bias_hh_l" + l, []int{G * H}, rnnBound})
		}
	}
	linear := func(name string, out, in int, bias bool) {
		b := 1 / math.Sqrt(float64(in))
		ps = append(ps, ParamSpec{name + ".weight", []int{out, in}, b})
		if bias {
			ps = append(ps, ParamSpec{name + ".bias", []int{out}, b})
		}
	}
	ps = append(ps, ParamSpec{"encoder.embedding.weight", []int{c.SrcVocab, E}, 0})
	for l := range c.Layers {
		in := E
		if l > 0 {
			in = 2 * H
		}
		rnn("encoder.rnn", l, in, true)
	}
	linear("encoder.fc_hidden", H, 2*H, true)
	if c.Kind != KindRNN {
		linear("encoder.fc_cell", H, 2*H, true)
	}
	ps = append(ps, ParamSpec{"decoder.embedding.weight", []int{c.TrgVocab, E}, 0})
	decIn, outIn := E, H+E
	if c.Attention() {
		linear("decoder.attention.W_s", H, H, false)
		linear("decoder.attention.W_h", H, 2*H, false)
		linear("decoder.attention.v", 1, H, false)
		decIn, outIn = E+2*H, H+2*H+E
	}
	for l := range c.Layers {
		in := decIn
		if l > 0 {
			in = H
		}
		rnn("decoder.rnn", l, in, false)
	}
	linear("decoder.fc_out", c.TrgVocab, outIn, true)
	return ps
}

// InitParams returns initial weights (PyTorch's default initialisation, the PAD
// rows of the embeddings zero as nn.Embedding(padding_idx=0)) drawn from seed.
func (c Config) InitParams(seed uint64) [][]float32 {
	rng := rand.New(rand.NewPCG(seed, 0x5e925e9))
	var out [][]float32
	for _, s := range c.Params() {
		n := 1
		for _, d := range s.Shape {
			n *= d
		}
		w := make([]float32, n)
		for i := range w {
			if s.Bound > 0 {
				w[i] = float32((2*rng.Float64() - 1) * s.Bound)
			} else {
				w[i] = float32(rng.NormFloat64())
			}
		}
		if s.Bound == 0 { // embedding: PAD row
			clear(w[:s.Shape[1]])
		}
		out = append(out, w)
	}
	return out
}

// weights maps parameter names to graph nodes.
type weights map[string]*Node

func (c Config) bind(nodes []*Node) weights {
	w := weights{}
	for i, s := range c.Params() {
		w[s.Name] = nodes[i]
	}
	return w
}

// linear is x Wᵀ (+ b) over the last axis of x.
func linear(x, w, b *Node) *Node {
	var y *Node
	if x.Rank() == 2 {
		y = Einsum("bi,oi->bo", x, w)
	} else {
		y = Einsum("bsi,oi->bso", x, w)
	}
	if b != nil {
		y = Add(y, ExpandLeftToRank(b, y.Rank()))
	}
	return y
}

// cell is one recurrent step. LSTM (PyTorch gate order i, f, g, o):
// z = W_ih x + b_ih + W_hh h + b_hh, c' = σ(f)⊙c + σ(i)⊙tanh(g), h' = σ(o)⊙tanh(c').
// RNN: h' = tanh(z). xProj is W_ih x + b_ih, computed by the caller.
func (c Config) cell(xProj, h, cs, whh, bhh *Node) (*Node, *Node) {
	z := Add(xProj, linear(h, whh, bhh))
	if c.Kind == KindRNN {
		return Tanh(z), nil
	}
	H := c.Hidden
	gate := func(k int) *Node { return SliceAxis(z, 1, AxisRange(k*H, (k+1)*H)) }
	i, f, g, o := Sigmoid(gate(0)), Sigmoid(gate(1)), Tanh(gate(2)), Sigmoid(gate(3))
	c2 := Add(Mul(f, cs), Mul(i, g))
	return Mul(o, Tanh(c2)), c2
}

// State is the decoder's recurrent state, one [B, H] node per layer (C nil for RNN).
type State struct{ H, C []*Node }

// dropper applies inverted dropout (PyTorch F.dropout) when training.
type dropper struct {
	rate float64
	rng  *Node // RNG state; nil: no dropout
}

func (d *dropper) apply(x *Node) *Node {
	if d == nil || d.rng == nil || d.rate == 0 {
		return x
	}
	var u *Node
	d.rng, u = RandomUniform(d.rng, x.Shape())
	keep := ConvertDType(GreaterOrEqual(u, Scalar(x.Graph(), u.DType(), d.rate)), x.DType())
	return MulScalar(Mul(x, keep), 1/(1-d.rate))
}

// Encoded is the encoder's output for one batch.
type Encoded struct {
	Out  *Node // [B, S, 2H] top-layer outputs [h_fwd; h_bwd]
	Keys *Node // [B, S, H] W_h h_j (attention models), else nil
	Mask *Node // [B, S] true for non-PAD sources (used when MaskPadding)
	Init State
}

// Encode runs the embedding and the bidirectional encoder over src [B, S] (int32)
// and computes the decoder's initial state per layer: tanh(W_h [h_fwd; h_bwd]) and
// tanh(W_c [c_fwd; c_bwd]) of that layer's final forward and backward states.
func (c Config) Encode(w weights, src *Node, d *dropper) Encoded {
	B, S := src.Shape().Dimensions[0], src.Shape().Dimensions[1]
	emb := d.apply(Gather(w["encoder.embedding.weight"], ExpandAxes(src, -1))) // [B, S, E]
	// Per-step inputs: slicing the narrow embedding keeps the backward pass cheap
	// (a slice's gradient is padded to the whole tensor), and upper layers take
	// the lower layer's per-step outputs without stacking and slicing them again.
	xs := make([]*Node, S)
	for t := range S {
		xs[t] = Squeeze(SliceAxis(emb, 1, AxisElem(t)), 1)
	}
	zeros := Zeros(src.Graph(), shapes.Make(emb.DType(), B, c.Hidden))
	var enc Encoded
	for l := range c.Layers {
		var outs [2][]*Node
		var lastH, lastC [2]*Node
		for dir, sfx := range []string{"", "_reverse"} {
			p := fmt.Sprintf("encoder.rnn.%%s_l%d%s", l, sfx)
			h, cs := zeros, zeros
			outs[dir] = make([]*Node, S)
			for k := range S {
				t := k
				if dir == 1 {
					t = S - 1 - k
				}
				xt := linear(xs[t], w[fmt.Sprintf(p, "weight_ih")], w[fmt.Sprintf(p, "bias_ih")])
				h, cs = c.cell(xt, h, cs, w[fmt.Sprintf(p, "weight_hh")], w[fmt.Sprintf(p, "bias_hh")])
				outs[dir][t] = h
			}
			lastH[dir], lastC[dir] = h, cs
		}
		for t := range S {
			xs[t] = Concatenate([]*Node{outs[0][t], outs[1][t]}, -1)
			if l < c.Layers-1 {
				xs[t] = d.apply(xs[t])
			}
		}
		enc.Init.H = append(enc.Init.H, Tanh(linear(Concatenate([]*Node{lastH[0], lastH[1]}, -1), w["encoder.fc_hidden.weight"], w["encoder.fc_hidden.bias"])))
		if c.Kind != KindRNN {
			enc.Init.C = append(enc.Init.C, Tanh(linear(Concatenate([]*Node{lastC[0], lastC[1]}, -1), w["encoder.fc_cell.weight"], w["encoder.fc_cell.bias"])))
		}
	}
	enc.Out = Stack(xs, 1)
	if c.Attention() {
		enc.Keys = linear(enc.Out, w["decoder.attention.W_h.weight"], nil)
	}
	enc.Mask = NotEqual(src, ZerosLike(src))
	return enc
}

// Attend is Bahdanau additive attention: e_j = vᵀ tanh(W_s s + W_h h_j) (no biases),
// a = softmax_j(e) over every source position (or the non-PAD ones when
// MaskPadding), context = Σ_j a_j h_j. s is the top decoder layer's state before
// the update [B, H]; it returns a [B, S] and the context [B, 2H].
func (c Config) Attend(w weights, s *Node, enc Encoded) (a, ctx *Node) {
	q := ExpandAxes(linear(s, w["decoder.attention.W_s.weight"], nil), 1) // [B, 1, H]
	e := Squeeze(linear(Tanh(Add(q, enc.Keys)), w["decoder.attention.v.weight"], nil), -1)
	if c.MaskPadding {
		a = MaskedSoftmax(e, enc.Mask, -1)
	} else {
		a = Softmax(e, -1)
	}
	ctx = Einsum("bs,bsh->bh", a, enc.Out)
	return a, ctx
}

// Step is one decoder step from the previous token y [B] (int32): it returns the
// logits [B, V], the attention [B, S] (nil without attention) and the new state.
func (c Config) Step(w weights, y *Node, st State, enc Encoded, d *dropper) (logits, att *Node, next State) {
	feat, att, next := c.stepFeatures(w, y, st, enc, d)
	return c.output(w, feat), att, next
}

// output is the prediction layer W_o feat + b over the last axis.
func (c Config) output(w weights, feat *Node) *Node {
	return linear(feat, w["decoder.fc_out.weight"], w["decoder.fc_out.bias"])
}

// stepFeatures is Step up to the prediction layer's input [o_t; context; emb].
func (c Config) stepFeatures(w weights, y *Node, st State, enc Encoded, d *dropper) (feat, att *Node, next State) {
	emb := d.apply(Gather(w["decoder.embedding.weight"], ExpandAxes(y, -1))) // [B, E]
	in := emb
	var ctx *Node
	if c.Attention() {
		att, ctx = c.Attend(w, st.H[c.Layers-1], enc)
		in = Concatenate([]*Node{emb, ctx}, -1)
	}
	for l := range c.Layers {
		p := fmt.Sprintf("decoder.rnn.%%s_l%d", l)
		var cs *Node
		if st.C != nil {
			cs = st.C[l]
		}
		h, c2 := c.cell(linear(in, w[fmt.Sprintf(p, "weight_ih")], w[fmt.Sprintf(p, "bias_ih")]), st.H[l], cs, w[fmt.Sprintf(p, "weight_hh")], w[fmt.Sprintf(p, "bias_hh")])
		next.H = append(next.H, h)
		if c2 != nil {
			next.C = append(next.C, c2)
		}
		in = h
		if l < c.Layers-1 {
			in = d.apply(h)
		}
	}
	feats := []*Node{in}
	if ctx != nil {
		feats = append(feats, ctx)
	}
	feats = append(feats, emb)
	return Concatenate(feats, -1), att, next
}

// Forward runs the decoder over trg [B, T] (SOS first) with teacher forcing: step t
// (1 ≤ t < T) is fed trg[:, t−1] when t = 1 or tf[t] > 0.5, else the argmax of step
// t−1 (Text_to_Python's Seq2Seq.forward, with the coin flips passed in as tf [T]).
// It returns the logits [B, T−1, V] for targets trg[:, 1:] and the attention
// [B, T−1, S] (nil without attention). The prediction layer runs once over all
// steps for the loss (one large matrix product instead of T−1 small ones in the
// backward pass); the argmax that feeds the next step uses the same weights.
func (c Config) Forward(w weights, src, trg, tf *Node, d *dropper) (logits, att *Node) {
	enc := c.Encode(w, src, d)
	T := trg.Shape().Dimensions[1]
	st := enc.Init
	var feats, atts []*Node
	y := Squeeze(SliceAxis(trg, 1, AxisElem(0)), 1)
	for t := 1; t < T; t++ {
		feat, a, next := c.stepFeatures(w, y, st, enc, d)
		feats, st = append(feats, feat), next
		if a != nil {
			atts = append(atts, a)
		}
		if t+1 < T {
			gold := Squeeze(SliceAxis(trg, 1, AxisElem(t)), 1)
			pred := ArgMax(StopGradient(c.output(w, feat)), -1, trg.DType())
			force := BroadcastToDims(GreaterThan(SliceAxis(tf, 0, AxisElem(t+1)), Scalar(tf.Graph(), tf.DType(), 0.5)), gold.Shape().Dimensions...)
			y = Where(force, gold, pred)
		}
	}
	logits = c.output(w, Stack(feats, 1))
	if len(atts) > 0 {
		att = Stack(atts, 1)
	}
	return logits, att
}

// Loss is the mean cross-entropy of logits [B, T−1, V] against trg[:, 1:], PAD
// targets ignored (nn.CrossEntropyLoss(ignore_index=0)).
func Loss(logits, trg *Node) *Node {
	T := trg.Shape().Dimensions[1]
	gold := SliceAxis(trg, 1, AxisRange(1, T))
	v := logits.Shape().Dimensions[2]
	logp := LogSoftmax(logits, -1)
	picked := ReduceSum(Mul(logp, OneHot(gold, v, logp.DType())), -1)
	valid := ConvertDType(NotEqual(gold, ZerosLike(gold)), logp.DType())
	count := ReduceAllSum(valid)
	return Div(Neg(ReduceAllSum(Mul(picked, valid))), Max(count, OnesLike(count)))
}
