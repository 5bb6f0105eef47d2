package seq2seq

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/core/tensors"
)

// EOSID is the end-of-sequence id decoding stops at and SOSID the first decoder
// input (the corpus package's specials).
const (
	SOSID = 1
	EOSID = 2
)

// Decoder runs a trained model one decoding step at a time.
type Decoder struct {
	Config Config
	params []*tensors.Tensor
	enc    *Exec // the encoder as a graph: params, src → out, keys, H, C
	// step is the decoder step as a graph (params, y, H, C, out, keys, src → logp, att,
	// H, C), compiled on first use; decoding runs goStep, its plain-Go transcription,
	// and the tests hold the two equal.
	step *Exec
	gs   *goStep
}

// NewDecoder compiles the encoder and the decoder step for the given weights.
func NewDecoder(backend compute.Backend, cfg Config, w [][]float32) (*Decoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	params, err := paramTensors(cfg, w)
	if err != nil {
		return nil, err
	}
	np := len(params)
	d := &Decoder{Config: cfg, params: params, gs: newGoStep(cfg, w)}
	d.enc, err = NewExec(backend, func(in []*Node) []*Node {
		e := cfg.Encode(cfg.bind(in[:np]), in[np], nil)
		keys := e.Keys
		if keys == nil {
			keys = e.Out
		}
		c := e.Init.C
		if c == nil {
			c = e.Init.H
		}
		return []*Node{e.Out, keys, Stack(e.Init.H, 0), Stack(c, 0)}
	})
	if err != nil {
		return nil, fmt.Errorf("seq2seq: build the encoder: %w", err)
	}
	d.step, err = NewExec(backend, func(in []*Node) []*Node {
		w := cfg.bind(in[:np])
		y, hs, cs, out, keys, src := in[np], in[np+1], in[np+2], in[np+3], in[np+4], in[np+5]
		st := State{}
		for l := range cfg.Layers {
			st.H = append(st.H, Squeeze(SliceAxis(hs, 0, AxisElem(l)), 0))
			if cfg.Kind != KindRNN {
				st.C = append(st.C, Squeeze(SliceAxis(cs, 0, AxisElem(l)), 0))
			}
		}
		enc := Encoded{Out: out, Keys: keys, Mask: NotEqual(src, ZerosLike(src))}
		logits, att, next := cfg.Step(w, y, st, enc, nil)
		if att == nil {
			att = ZerosLike(ConvertDType(src, logits.DType()))
		}
		nc := next.C
		if nc == nil {
			nc = next.H
		}
		return []*Node{LogSoftmax(logits, -1), att, Stack(next.H, 0), Stack(nc, 0)}
	})
	if err != nil {
		return nil, fmt.Errorf("seq2seq: build the decoder step: %w", err)
	}
	return d, nil
}

// Hypothesis is one decoded sequence.
type Hypothesis struct {
	// IDs are the generated target ids, EOS included when it was produced.
	IDs []int
	// Attention has one row per generated id (the EOS step's row included, as
	// generate_code keeps it) over the S source positions, SOS, EOS and PAD
	// included; nil for models without attention.
	Attention [][]float32
	// StepLogProbs is log p of each generated id.
	StepLogProbs []float64
	// LogProb is Σ log p of the generated ids; Score is what selected the
	// hypothesis (LogProb for greedy, LogProb / len^alpha for beam search).
	LogProb, Score float64
}

// encoded is the encoder's output with the decoder state (st) and the source ids.
type encoded struct {
	src *tensors.Tensor
	st  goState
}

// encode runs the encoder (goStep's) over a padded source batch.
func (d *Decoder) encode(src [][]int) (*encoded, error) {
	if err := d.checkSource(src); err != nil {
		return nil, err
	}
	return &encoded{src: IDMatrix(src, d.Config.SrcVocab), st: d.gs.encode(src)}, nil
}

func (d *Decoder) checkSource(src [][]int) error {
	if len(src) == 0 || len(src[0]) == 0 {
		return fmt.Errorf("seq2seq: empty source batch")
	}
	for _, r := range src {
		if len(r) != len(src[0]) {
			return fmt.Errorf("seq2seq: source rows of %d and %d positions: a padded batch expected", len(src[0]), len(r))
		}
	}
	if s := len(src[0]); s > d.Config.MaxSrcLen+2 {
		return fmt.Errorf("seq2seq: a source of %d positions exceeds the model's maximum of %d tokens (+ SOS and EOS)", s, d.Config.MaxSrcLen)
	}
	return nil
}

// encodeGraph is encode on the compiled graph encoder (Config.Encode).
func (d *Decoder) encodeGraph(src [][]int) (*encoded, error) {
	if err := d.checkSource(src); err != nil {
		return nil, err
	}
	m := IDMatrix(src, d.Config.SrcVocab)
	args := make([]any, 0, len(d.params)+1)
	for _, p := range d.params {
		args = append(args, p)
	}
	out, err := d.enc.Call(append(args, m)...)
	if err != nil {
		return nil, fmt.Errorf("seq2seq: encode: %w", err)
	}
	e := &encoded{src: m}
	e.st.B, e.st.S = len(src), len(src[0])
	for k, p := range []*[]float32{&e.st.out, &e.st.keys, &e.st.h, &e.st.c} {
		if *p, err = tensors.CopyFlatData[float32](out[k]); err != nil {
			return nil, fmt.Errorf("seq2seq: encode: %w", err)
		}
	}
	for _, r := range src {
		for _, id := range r {
			e.st.mask = append(e.st.mask, id != 0)
		}
	}
	return e, nil
}

// stepOnce runs one decoder step (goStep) for the previous tokens y.
func (d *Decoder) stepOnce(e *encoded, y []int) (logp [][]float32, att [][]float32, err error) {
	return d.gs.step(&e.st, y)
}

// stepGraph is stepOnce on the compiled graph step (Config.Step).
func (d *Decoder) stepGraph(e *encoded, y []int) (logp [][]float32, att [][]float32, err error) {
	L, B, H := d.Config.Layers, e.st.B, d.Config.Hidden
	h := tensors.FromFlatDataAndDimensions(slices.Clone(e.st.h), L, B, H)
	c := tensors.FromFlatDataAndDimensions(slices.Clone(e.st.c), L, B, H)
	S := e.st.S
	out := tensors.FromFlatDataAndDimensions(slices.Clone(e.st.out), B, S, 2*H)
	keys := tensors.FromFlatDataAndDimensions(slices.Clone(e.st.keys), B, S, len(e.st.keys)/(B*S))
	ys := make([]int32, len(y))
	for i, v := range y {
		ys[i] = int32(v)
	}
	args := make([]any, 0, len(d.params)+6)
	for _, p := range d.params {
		args = append(args, p)
	}
	res, err := d.step.Call(append(args, tensors.FromValue(ys), h, c, out, keys, e.src)...)
	if err != nil {
		return nil, nil, fmt.Errorf("seq2seq: decoder step: %w", err)
	}
	for k, p := range []*[]float32{&e.st.h, &e.st.c} {
		if *p, err = tensors.CopyFlatData[float32](res[2+k]); err != nil {
			return nil, nil, err
		}
	}
	return rows(res[0]), rows(res[1]), nil
}

func rows(t *tensors.Tensor) [][]float32 {
	flat, _ := tensors.CopyFlatData[float32](t)
	dims := t.Shape().Dimensions
	out := make([][]float32, dims[0])
	for i := range out {
		out[i] = flat[i*dims[1] : (i+1)*dims[1]]
	}
	return out
}

// Greedy decodes a padded source batch [B][S] (SOS … EOS PAD…) as generate_code:
// encoder once, SOS first, then for up to maxLen steps the argmax token, a row
// stopping after the step that produced EOS (that step's attention is kept).
func (d *Decoder) Greedy(ctx context.Context, src [][]int, maxLen int) ([]Hypothesis, error) {
	e, err := d.encode(src)
	if err != nil {
		return nil, err
	}
	B := len(src)
	hyps := make([]Hypothesis, B)
	done := make([]bool, B)
	y := slices.Repeat([]int{SOSID}, B)
	for step := 0; step < maxLen && slices.Contains(done, false); step++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		logp, att, err := d.stepOnce(e, y)
		if err != nil {
			return nil, err
		}
		for b := range B {
			if done[b] {
				continue
			}
			best := argmax(logp[b])
			h := &hyps[b]
			h.IDs = append(h.IDs, best)
			h.StepLogProbs = append(h.StepLogProbs, float64(logp[b][best]))
			h.LogProb += float64(logp[b][best])
			if d.Config.Attention() {
				h.Attention = append(h.Attention, slices.Clone(att[b]))
			}
			y[b] = best
			done[b] = best == EOSID
		}
	}
	for b := range hyps {
		hyps[b].Score = hyps[b].LogProb
	}
	return hyps, nil
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// Beam decodes one source row [S] with beam search of width k: each step extends
// every live hypothesis by every token, keeps the k best by summed log-probability,
// and moves a hypothesis ending in EOS to the finished list; it stops when k
// hypotheses have finished or after maxLen steps, and returns the finished (else
// live) hypothesis with the best length-normalised score LogProb / len^alpha (len
// counts the generated ids, EOS included), with that hypothesis's attention rows.
func (d *Decoder) Beam(ctx context.Context, src []int, k, maxLen int, alpha float64) (Hypothesis, error) {
	if k < 1 {
		return Hypothesis{}, fmt.Errorf("seq2seq: beam width %d: at least 1 expected", k)
	}
	e, err := d.encode(slices.Repeat([][]int{src}, k))
	if err != nil {
		return Hypothesis{}, err
	}
	live := []Hypothesis{{}}
	var finished []Hypothesis
	norm := func(h Hypothesis) float64 { return h.LogProb / math.Pow(float64(len(h.IDs)), alpha) }
	for step := 0; step < maxLen && len(finished) < k && len(live) > 0; step++ {
		if err := ctx.Err(); err != nil {
			return Hypothesis{}, err
		}
		y := make([]int, k)
		for i := range y {
			y[i] = SOSID
			if i < len(live) && len(live[i].IDs) > 0 {
				y[i] = live[i].IDs[len(live[i].IDs)-1]
			}
		}
		logp, att, err := d.stepOnce(e, y)
		if err != nil {
			return Hypothesis{}, err
		}
		type cand struct {
			from, tok int
			lp        float64
		}
		var cands []cand
		for i, h := range live {
			for v, p := range logp[i] {
				cands = append(cands, cand{i, v, h.LogProb + float64(p)})
			}
		}
		sort.SliceStable(cands, func(a, b int) bool { return cands[a].lp > cands[b].lp })
		var next []Hypothesis
		var from []int
		for _, c := range cands {
			if len(next) == k || len(finished)+len(next) >= 2*k {
				break
			}
			parent := live[c.from]
			h := Hypothesis{IDs: append(slices.Clone(parent.IDs), c.tok), LogProb: c.lp,
				StepLogProbs: append(slices.Clone(parent.StepLogProbs), c.lp-parent.LogProb)}
			if d.Config.Attention() {
				h.Attention = append(slices.Clone(parent.Attention), slices.Clone(att[c.from]))
			}
			if c.tok == EOSID {
				h.Score = norm(h)
				finished = append(finished, h)
				if len(finished) >= k {
					break
				}
				continue
			}
			next = append(next, h)
			from = append(from, c.from)
		}
		live = next
		if len(live) > 0 {
			e.reorder(from, k, d.Config.Hidden)
		}
	}
	pool := finished
	if len(pool) == 0 {
		pool = live
	}
	best := -1
	for i := range pool {
		pool[i].Score = norm(pool[i])
		if best < 0 || pool[i].Score > pool[best].Score {
			best = i
		}
	}
	return pool[best], nil
}

// reorder makes row i of the decoder state that of row from[i] (rows past
// len(from) repeat row 0's parent; they are ignored).
func (e *encoded) reorder(from []int, k, H int) {
	for _, t := range []*[]float32{&e.st.h, &e.st.c} {
		flat := *t // [L, k, H]
		L := len(flat) / (k * H)
		out := make([]float32, len(flat))
		for l := range L {
			for i := range k {
				src := from[0]
				if i < len(from) {
					src = from[i]
				}
				copy(out[(l*k+i)*H:(l*k+i+1)*H], flat[(l*k+src)*H:(l*k+src+1)*H])
			}
		}
		*t = out
	}
}
