package model

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// Generate implements Model.Generate: one prefill pass over the prompt, then
// one cached decode step per new token. The KV cache has a bucketed capacity
// (bucket(prompt + max_new_tokens)), so a generation compiles the prompt's
// block graph plus one decode graph.
func (r *runner) Generate(ctx context.Context, prompt []int, opts GenerateOptions, rec Recorder) (*Generation, error) {
	if !r.a.Causal() {
		return nil, fmt.Errorf("model_type %s is not a decoder: it cannot generate", r.cfg.ModelType)
	}
	if opts.MaxNewTokens <= 0 {
		return nil, fmt.Errorf("max new tokens must be positive, got %d", opts.MaxNewTokens)
	}
	in := Input{IDs: prompt}
	if err := r.checkInput(in); err != nil {
		return nil, err
	}
	P := len(prompt)
	if r.cfg.MaxPositions > 0 && P+opts.MaxNewTokens > r.cfg.MaxPositions && !r.extendsContext() {
		return nil, fmt.Errorf("prompt of %d tokens plus %d new tokens exceeds the model's context of %d (config.json max positions)", P, opts.MaxNewTokens, r.cfg.MaxPositions)
	}
	eos := opts.EOS
	if eos == nil {
		eos = r.cfg.EOSTokenIDs
	}
	if opts.Intervention != nil {
		if err := opts.Intervention.Check(r.cfg); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	sampler := newSampler(opts)

	pre, err := r.prefill(ctx, []Input{in}, []Recorder{nil}, ForwardOptions{Intervention: opts.Intervention}, true, rec != nil)
	if err != nil {
		return nil, err
	}
	defer pre.free()
	outs, err := r.finalAndHead(pre.x, P, []Recorder{nil}, ForwardOptions{Logits: LogitsLast})
	if err != nil {
		return nil, err
	}
	out := outs[0]
	gen := &Generation{IDs: slices.Clone(prompt), PromptLen: P}
	pick := func(logits []float32) bool { // returns true when generation stops
		tok, prob := sampler.next(logits)
		gen.IDs = append(gen.IDs, tok)
		gen.NewTokenProbs = append(gen.NewTokenProbs, prob)
		switch {
		case slices.Contains(eos, tok):
			gen.StopReason = "eos"
		case len(gen.IDs)-P >= opts.MaxNewTokens:
			gen.StopReason = "max_new_tokens"
		case opts.MaxTime > 0 && time.Since(start) >= opts.MaxTime:
			gen.StopReason = "max_time"
		default:
			return false
		}
		return true
	}
	stop := pick(out.Logits)

	// KV cache [1, kv_heads, C, hd] per layer, filled with the prompt's keys/values.
	C := bucket(P+opts.MaxNewTokens, r.cfg.MaxPositions)
	K := make([]*tensors.Tensor, r.cfg.Layers)
	V := make([]*tensors.Tensor, r.cfg.Layers)
	defer func() { finalizeAll(K); finalizeAll(V) }()
	if !stop {
		for l := range r.cfg.Layers {
			if K[l], err = toCache(pre.k[l], P, C); err != nil {
				return nil, err
			}
			if V[l], err = toCache(pre.v[l], P, C); err != nil {
				return nil, err
			}
		}
	}
	pre.free()
	h := r.cfg.Heads
	var rows [][][]float32 // [step][layer] attention row [H, pos+1]
	var buf []float32
	for !stop {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pos := len(gen.IDs) - 1
		tok := gen.IDs[pos]
		ids := int32Tensor([]int{tok}, 1)
		types := int32Tensor(nil, 1)
		posT := int32Tensor([]int{pos}, 1)
		eo, err := r.call("embed", r.embedExec, appendAny([]any{ids, types, posT}, r.embedW)...)
		finalizeAll([]*tensors.Tensor{ids, types, posT})
		if err != nil {
			return nil, err
		}
		x := eo[0]
		masks := map[int]*tensors.Tensor{} // by window: keys pos−W < j ≤ pos
		var extra []*tensors.Tensor
		for l := range r.cfg.Layers {
			w := r.cfg.Window(l)
			if masks[w] != nil {
				continue
			}
			mask := make([]bool, C)
			for j := 0; j <= pos; j++ {
				mask[j] = w == 0 || j > pos-w
			}
			masks[w] = tensors.FromFlatDataAndDimensions(mask, 1, 1, C)
			extra = append(extra, masks[w])
		}
		pastT := tensors.FromScalar(int32(pos))
		var args []any
		if r.rope() {
			c, s := r.cfg.RopeTables([]int{pos}, r.a.RotaryDim(), pos+1)
			cosT := tensors.FromFlatDataAndDimensions(c, 1, r.a.RotaryDim())
			sinT := tensors.FromFlatDataAndDimensions(s, 1, r.a.RotaryDim())
			args = append(args, cosT, sinT)
			extra = append(extra, cosT, sinT)
		}
		var stepRows [][]float32
		for l := range r.cfg.Layers {
			a := append([]any{x, masks[r.cfg.Window(l)]}, args...)
			a = append(a, K[l], V[l], pastT)
			a = appendAny(a, r.layerW[l])
			exec, name, editTs, err := r.decodeBlock(opts.Intervention, l, pos, C)
			var outs []*tensors.Tensor
			if err == nil {
				outs, err = r.call(name, exec, appendAny(a, editTs)...)
				finalizeAll(editTs)
			}
			x.FinalizeAll()
			if err != nil {
				finalizeAll(append(extra, pastT))
				return nil, err
			}
			x = outs[0]
			if rec != nil {
				if buf, err = readRows(outs[1], 0, 1, pos+1, buf); err != nil {
					return nil, err
				}
				stepRows = append(stepRows, slices.Clone(buf))
			}
			outs[1].FinalizeAll()
			outs[2].FinalizeAll()
			K[l].FinalizeAll()
			V[l].FinalizeAll()
			K[l], V[l] = outs[3], outs[4]
		}
		finalizeAll(append(extra, pastT))
		rows = append(rows, stepRows)
		lo, err := r.finalAndHead(x, 1, []Recorder{nil}, ForwardOptions{Logits: LogitsLast})
		x.FinalizeAll()
		if err != nil {
			return nil, err
		}
		stop = pick(lo[0].Logits)
	}
	if rec != nil {
		steps := len(gen.IDs) - P
		M := P + steps - 1
		for l := range r.cfg.Layers {
			m := make([]float32, h*M*M)
			pp := pre.layerP[l] // [H, P, P]
			for hh := range h {
				for i := range P {
					copy(m[(hh*M+i)*M:], pp[(hh*P+i)*P:(hh*P+i+1)*P])
				}
				for s, sr := range rows {
					row := P + s
					w := row + 1
					copy(m[(hh*M+row)*M:], sr[l][hh*w:(hh+1)*w])
				}
			}
			name := fmt.Sprintf("blocks.%d.attn.pattern", l)
			if err := rec.Record(name, []int{h, M, M}, m); err != nil {
				return nil, fmt.Errorf("record %s: %w", name, err)
			}
		}
	}
	return gen, nil
}

// decodeBlock returns the block graph of layer l's decode step at position
// pos (cache capacity C) and the edit tensors it takes after the weights:
// cacheExec without edits for the layer.
func (r *runner) decodeBlock(iv *Intervention, l, pos, C int) (*graph.Exec, string, []*tensors.Tensor, error) {
	hes, err := iv.decodeEdits(r.cfg, l, pos, C)
	if err != nil || hes == nil {
		return r.cacheExec, "block_cached", nil, err
	}
	exec, name, err := r.editBlock(hes, false, true)
	if err != nil {
		return nil, "", nil, err
	}
	var ts []*tensors.Tensor
	for _, he := range hes {
		ts = append(ts, he.tensors()...)
	}
	return exec, name, ts, nil
}

// toCache copies the first n rows of t [1, kv_heads, T, hd] into a zeroed
// [1, kv_heads, C, hd] tensor.
func toCache(t *tensors.Tensor, n, C int) (*tensors.Tensor, error) {
	d := t.Shape().Dimensions
	kv, T, hd := d[1], d[2], d[3]
	out := make([]float32, kv*C*hd)
	err := tensors.ConstFlatData(t, func(flat []float32) {
		for h := range kv {
			copy(out[h*C*hd:h*C*hd+n*hd], flat[h*T*hd:h*T*hd+n*hd])
		}
	})
	if err != nil {
		return nil, err
	}
	return tensors.FromFlatDataAndDimensions(out, 1, kv, C, hd), nil
}

// sampler picks the next token: greedy argmax (first maximum, like
// torch.argmax) or sampling after temperature, top-k and top-p filtering in
// that order (transformers' logits warpers). The returned probability is that
// of the token under the unmodified softmax of the logits.
type sampler struct {
	opts GenerateOptions
	rng  *rand.Rand
}

func newSampler(opts GenerateOptions) *sampler {
	return &sampler{opts: opts, rng: rand.New(rand.NewPCG(uint64(opts.Seed), 0x9e3779b97f4a7c15))}
}

func softmax64(logits []float32, temp float64) []float64 {
	p := make([]float64, len(logits))
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = math.Max(mx, float64(v)/temp)
	}
	var sum float64
	for i, v := range logits {
		p[i] = math.Exp(float64(v)/temp - mx)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

func (s *sampler) next(logits []float32) (int, float64) {
	probs := softmax64(logits, 1)
	if !s.opts.DoSample {
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		return best, probs[best]
	}
	temp := s.opts.Temperature
	if temp <= 0 {
		temp = 1
	}
	p := softmax64(logits, temp)
	idx := make([]int, len(p))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return p[idx[a]] > p[idx[b]] })
	keep := len(idx)
	if s.opts.TopK > 0 && s.opts.TopK < keep {
		keep = s.opts.TopK
	}
	if s.opts.TopP > 0 && s.opts.TopP < 1 {
		var cum float64
		for i := range keep {
			cum += p[idx[i]]
			if cum >= s.opts.TopP {
				keep = i + 1
				break
			}
		}
	}
	var total float64
	for _, i := range idx[:keep] {
		total += p[i]
	}
	u := s.rng.Float64() * total
	for _, i := range idx[:keep] {
		u -= p[i]
		if u <= 0 {
			return i, probs[i]
		}
	}
	last := idx[keep-1]
	return last, probs[last]
}
