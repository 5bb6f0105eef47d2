package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/model/arch"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/core/tensors"
)

// runner is the Model implementation shared by all families: it holds the
// weights as backend tensors and one GoMLX executable per part (embedding,
// block, block with KV cache, final norm, head). The block executable takes
// the layer's weights as inputs, so one compiled graph serves every layer;
// sequence lengths and cache capacities are bucketed (see bucket).
type runner struct {
	cfg     *arch.Config
	a       arch.Architecture
	backend compute.Backend
	dir     string
	attn64  bool // LoadOptions.Float64Attention, in every block graph

	weights map[string]*tensors.Tensor // by checkpoint name (tied weights are shared)
	embedW  []*tensors.Tensor
	layerW  [][]*tensors.Tensor
	finalW  []*tensors.Tensor
	headW   []*tensors.Tensor

	embedExec, blockExec, cacheExec, finalExec, headExec *Exec
	// attnExec is blockExec without the Q, K and V outputs (a capture that
	// records neither them nor a KV cache): a graph output is a new buffer on
	// every call, one the backend never reuses, while intermediate values
	// return to its pool.
	attnExec *Exec
	// preLNExec is the block that also returns the pre-LayerNorm residual sums
	// (ForwardOptions.PreLN); its outputs are blockExec's plus the two sums.
	preLNExec *Exec
	// qkExecs are the blockwise blocks (ForwardOptions.QK) by sliding window
	// (0: none): their mask input is the key validity [B, T] (keyValid) and
	// their second output each row's log-sum-exp [B, heads, T] instead of the
	// pattern.
	qkExecs map[int]*Exec

	mu       sync.Mutex
	compiled map[string]bool
	editExec map[string]*Exec // block graphs with interventions, by edit structure
}

func newRunner(dir string, cfg *arch.Config, a arch.Architecture, w *checkpoint.Weights, backend compute.Backend, attn64 bool) (*runner, error) {
	r := &runner{cfg: cfg, a: a, backend: backend, dir: dir, attn64: attn64, weights: map[string]*tensors.Tensor{}, compiled: map[string]bool{}}
	load := func(ps []arch.Param) ([]*tensors.Tensor, error) {
		out := make([]*tensors.Tensor, len(ps))
		for i, p := range ps {
			if t, ok := r.weights[p.Name]; ok {
				out[i] = t
				continue
			}
			// Decode straight from the mapped file into the backend's (shared) buffer.
			t, err := tensors.FromShapeForBackend(backend, 0, shapes.Make(dtypes.Float32, p.Shape...))
			if err != nil {
				return nil, fmt.Errorf("load %s: %w", p.Name, err)
			}
			var rerr error
			if err := tensors.MutableFlatData(t, func(flat []float32) { rerr = w.Float32Into(p.Name, p.Shape, flat) }); err != nil {
				t.FinalizeAll()
				return nil, fmt.Errorf("load %s: %w", p.Name, err)
			}
			if rerr != nil {
				t.FinalizeAll()
				return nil, rerr
			}
			r.weights[p.Name] = t
			out[i] = t
		}
		return out, nil
	}
	if err := r.loadAll(load); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *runner) loadAll(load func([]arch.Param) ([]*tensors.Tensor, error)) error {
	a, cfg := r.a, r.cfg
	var err error
	if r.embedW, err = load(a.EmbedParams()); err != nil {
		return err
	}
	for l := range cfg.Layers {
		lw, err := load(a.LayerParams(l))
		if err != nil {
			return err
		}
		r.layerW = append(r.layerW, lw)
	}
	if r.finalW, err = load(a.FinalParams()); err != nil {
		return err
	}
	if r.headW, err = load(a.HeadParams()); err != nil {
		return err
	}
	return r.buildExecs()
}

func weightsOf(ps []arch.Param, nodes []*Node) arch.Weights {
	w := make(arch.Weights, len(ps))
	for i, p := range ps {
		w[p.Key] = nodes[i]
	}
	return w
}

func (r *runner) rope() bool { return r.a.RotaryDim() > 0 }

func (r *runner) buildExecs() error {
	a := r.a
	embedP, layerP, finalP, headP := a.EmbedParams(), a.LayerParams(0), a.FinalParams(), a.HeadParams()
	var err error
	r.embedExec, err = NewExec(r.backend, func(in []*Node) []*Node {
		return []*Node{a.Embed(weightsOf(embedP, in[3:]), in[0], in[1], in[2])}
	})
	if err != nil {
		return err
	}
	// block builds a layer's graph; window ≥ 0 makes it blockwise with that
	// sliding window (0: none), −1 materialised (the window is in the mask);
	// qkv false leaves out the Q, K and V outputs (attnExec).
	block := func(withCache, preLN bool, window int, qkv bool) func(in []*Node) []*Node {
		blockwise := window >= 0
		return func(in []*Node) []*Node {
			x, mask := in[0], in[1]
			ai := arch.AttentionInputs{Mask: mask, Float64: r.attn64}
			if blockwise {
				ai = arch.AttentionInputs{Blockwise: &arch.Blockwise{QueryBlock: QueryBlock, KeyBlock: KeyBlock, Causal: a.Causal(), KeyValid: mask, Window: window}, Float64: r.attn64}
			}
			rest := in[2:]
			if r.rope() {
				ai.Cos, ai.Sin = rest[0], rest[1]
				rest = rest[2:]
			}
			if withCache {
				ai.PastK, ai.PastV, ai.Past = rest[0], rest[1], rest[2]
				rest = rest[3:]
			}
			o := a.Block(weightsOf(layerP, rest), x, ai)
			outs := []*Node{o.Out, o.Pattern, o.Q, o.K, o.V}
			if blockwise {
				outs[1] = o.LSE
			}
			if !qkv {
				return outs[:2]
			}
			if preLN {
				if o.AttnPreLN == nil {
					panic(fmt.Sprintf("the %s architecture has no pre-LayerNorm residual sums (a pre-norm family)", r.cfg.ModelType))
				}
				outs = append(outs, o.AttnPreLN, o.MLPPreLN)
			}
			return outs
		}
	}
	if r.preLNExec, err = NewExec(r.backend, block(false, true, -1, true)); err != nil {
		return err
	}
	if r.blockExec, err = NewExec(r.backend, block(false, false, -1, true)); err != nil {
		return err
	}
	if r.attnExec, err = NewExec(r.backend, block(false, false, -1, false)); err != nil {
		return err
	}
	if r.cacheExec, err = NewExec(r.backend, block(true, false, -1, true)); err != nil {
		return err
	}
	r.qkExecs = map[int]*Exec{}
	for l := range r.cfg.Layers {
		if w := r.cfg.Window(l); r.qkExecs[w] == nil {
			if r.qkExecs[w], err = NewExec(r.backend, block(false, false, w, true)); err != nil {
				return err
			}
		}
	}
	r.finalExec, err = NewExec(r.backend, func(in []*Node) []*Node {
		return []*Node{a.FinalNorm(weightsOf(finalP, in[1:]), in[0])}
	})
	if err != nil {
		return err
	}
	r.headExec, err = NewExec(r.backend, func(in []*Node) []*Node {
		return []*Node{a.Head(weightsOf(headP, in[1:]), in[0])}
	})
	return err
}

// call runs an executable, counting distinct input shapes as compiled graphs.
func (r *runner) call(name string, e *Exec, args ...any) ([]*tensors.Tensor, error) {
	var key strings.Builder
	key.WriteString(name)
	for _, a := range args {
		if t, ok := a.(*tensors.Tensor); ok {
			key.WriteString(t.Shape().String())
		}
	}
	r.mu.Lock()
	r.compiled[key.String()] = true
	r.mu.Unlock()
	out, err := e.Call(args...)
	if err != nil {
		return nil, fmt.Errorf("run %s graph: %w", name, err)
	}
	return out, nil
}

func (r *runner) CompiledGraphs() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.compiled)
}

func (r *runner) Config() *arch.Config { return r.cfg }

func (r *runner) Close() error {
	for _, e := range []*Exec{r.embedExec, r.blockExec, r.attnExec, r.cacheExec, r.finalExec, r.headExec, r.preLNExec} {
		if e != nil {
			e.Finalize()
		}
	}
	for _, e := range r.editExec {
		e.Finalize()
	}
	for _, e := range r.qkExecs {
		e.Finalize()
	}
	r.editExec, r.qkExecs = nil, nil
	r.embedExec, r.blockExec, r.attnExec, r.cacheExec, r.finalExec, r.headExec, r.preLNExec = nil, nil, nil, nil, nil, nil, nil
	var errs []error
	for _, t := range r.weights {
		if err := t.FinalizeAll(); err != nil {
			errs = append(errs, err)
		}
	}
	r.weights = nil
	return errors.Join(errs...)
}

// bucket rounds a length up to the next of 16, 32, 48, 64, 96, 128, 192, 256,
// 384, 512, 768, ... (powers of two and 1.5× steps), capped at limit, so a run
// compiles a handful of graphs.
func bucket(n, limit int) int {
	b := 16
	for b < n {
		if b >= 32 && b/2*3 >= n && b&(b-1) == 0 {
			b = b / 2 * 3
			break
		}
		if b&(b-1) == 0 {
			b *= 2
		} else {
			b = b / 3 * 4
		}
	}
	if limit > 0 && b > limit {
		b = max(limit, n)
	}
	return b
}

// int32Tensor packs v (zero-padded or cut to n) into an int32 tensor [1, n].
func int32Tensor(v []int, n int) *tensors.Tensor { return int32Batch([][]int{v}, n) }

// int32Batch packs rows (each zero-padded or cut to n) into an int32 tensor [len(rows), n].
func int32Batch(rows [][]int, n int) *tensors.Tensor {
	out := make([]int32, len(rows)*n)
	for b, v := range rows {
		for i := range min(n, len(v)) {
			out[b*n+i] = int32(v[i])
		}
	}
	return tensors.FromFlatDataAndDimensions(out, len(rows), n)
}

func finalizeAll(ts []*tensors.Tensor) {
	for _, t := range ts {
		if t != nil {
			t.FinalizeAll()
		}
	}
}

func appendAny(dst []any, ts []*tensors.Tensor) []any {
	for _, t := range ts {
		dst = append(dst, t)
	}
	return dst
}

// blockDims returns d0, R, C of a tensor of shape [B, d0, R, C] (or [B, R, C], d0 = 1).
func blockDims(t *tensors.Tensor) (d0, R, C int, err error) {
	dims := t.Shape().Dimensions
	switch len(dims) {
	case 3:
		return 1, dims[1], dims[2], nil
	case 4:
		return dims[1], dims[2], dims[3], nil
	}
	return 0, 0, 0, fmt.Errorf("unexpected output shape %v", dims)
}

// readRows copies batch element b's leading block [d0, rows, cols] of a tensor
// of shape [B, d0, R, C] (or [B, R, C], d0 = 1) into dst.
func readRows(t *tensors.Tensor, b, rows, cols int, dst []float32) ([]float32, error) {
	d0, R, C, err := blockDims(t)
	if err != nil {
		return nil, err
	}
	base := b * d0 * R * C
	dst = slices.Grow(dst[:0], d0*rows*cols)
	err = tensors.ConstFlatData(t, func(flat []float32) {
		for h := range d0 {
			for i := range rows {
				off := base + (h*R+i)*C
				dst = append(dst, flat[off:off+cols]...)
			}
		}
	})
	return dst, err
}

// withRows hands fn batch element b's leading block [d0, rows, cols] of t (as
// readRows): the tensor's own memory when the block is the whole of sample b
// (rows = R, cols = C: no padding to trim), else a copy in *buf. fn must not
// keep the slice (Recorder's contract).
func withRows(t *tensors.Tensor, b, rows, cols int, buf *[]float32, fn func([]float32) error) error {
	d0, R, C, err := blockDims(t)
	if err != nil {
		return err
	}
	if rows != R || cols != C {
		if *buf, err = readRows(t, b, rows, cols, *buf); err != nil {
			return err
		}
		return fn(*buf)
	}
	size := d0 * R * C
	var ferr error
	if err := tensors.ConstFlatData(t, func(flat []float32) { ferr = fn(flat[b*size : (b+1)*size : (b+1)*size]) }); err != nil {
		return err
	}
	return ferr
}

// extendsContext reports whether the model runs past max_position_embeddings:
// dynamic NTK RoPE rescales its frequencies there (transformers does not stop
// other RoPE models either, but their frequencies were not trained for it).
func (r *runner) extendsContext() bool { return r.rope() && r.cfg.Rope.Type == "dynamic" }

// checkInput validates ids against the vocabulary and the context.
func (r *runner) checkInput(in Input) error {
	if r.blockExec == nil {
		return errors.New("model is closed")
	}
	n := len(in.IDs)
	if n == 0 {
		return errors.New("input has no tokens")
	}
	if r.cfg.MaxPositions > 0 && n > r.cfg.MaxPositions && !r.extendsContext() {
		return fmt.Errorf("input has %d tokens, more than the model's context of %d (config.json max positions)", n, r.cfg.MaxPositions)
	}
	for i, id := range in.IDs {
		if id < 0 || id >= r.cfg.VocabSize {
			return fmt.Errorf("token %d at position %d is outside the vocabulary of %d (config.json vocab_size)", id, i, r.cfg.VocabSize)
		}
	}
	if in.TokenTypeIDs != nil && len(in.TokenTypeIDs) != n {
		return fmt.Errorf("input has %d token type ids for %d tokens", len(in.TokenTypeIDs), n)
	}
	for _, t := range in.TokenTypeIDs {
		if t < 0 || t >= max(r.cfg.TypeVocabSize, 1) {
			return fmt.Errorf("token type id %d is outside type_vocab_size %d", t, r.cfg.TypeVocabSize)
		}
	}
	if in.AttentionMask != nil && len(in.AttentionMask) != n {
		return fmt.Errorf("input has an attention mask of %d entries for %d tokens", len(in.AttentionMask), n)
	}
	return nil
}

// prefillResult is what prefill keeps for generation.
type prefillResult struct {
	x      *tensors.Tensor   // [B, T, width] output of the last block (bucketed)
	k, v   []*tensors.Tensor // per layer [B, kv_heads, T, hd] when keepKV
	t      int               // bucket length
	layerP [][]float32       // per layer attention [H, n, n] of batch element 0 when keepPattern
}

// batchMask returns the attention mask [B, heads, T, T] of right-padded inputs
// at the bucketed length T: causal (decoders) and/or hiding padded keys
// (positions at or beyond len(IDs), and AttentionMask zeros). A window W > 0
// also hides keys j ≤ i − W from query i (sliding-window attention, as
// transformers' sliding_window_overlay).
func (r *runner) batchMask(ins []Input, T, window int) *tensors.Tensor {
	h := r.cfg.Heads
	full := make([]bool, len(ins)*h*T*T)
	mask := make([]bool, T*T)
	for b, in := range ins {
		n := len(in.IDs)
		validKey := func(j int) bool { return j < n && (in.AttentionMask == nil || in.AttentionMask[j] != 0) }
		for i := range T {
			seen := false
			for j := range T {
				ok := validKey(j)
				if r.a.Causal() {
					// real rows see earlier real keys; padded rows (i >= n) also see padding (ignored)
					ok = j <= i && (ok || j >= n)
				}
				if window > 0 && j <= i-window {
					ok = false
				}
				mask[i*T+j] = ok
				seen = seen || ok
			}
			// A row with no visible key (all keys masked) would be a uniform softmax
			// over lowest-float logits; let it see itself so the row stays defined.
			if !seen {
				mask[i*T+i] = true
			}
		}
		// Hand the graph the mask already broadcast over heads (saves a pass per layer).
		for hh := range h {
			copy(full[(b*h+hh)*T*T:], mask)
		}
	}
	return tensors.FromFlatDataAndDimensions(full, len(ins), h, T, T)
}

// QueryBlock and KeyBlock are the tile of blockwise attention (ForwardOptions.QK):
// a layer holds a few [B, heads, QueryBlock, KeyBlock] float32 tiles at a time.
const (
	QueryBlock = 512
	KeyBlock   = 2048
)

// keyValid returns, for blockwise attention, the keys [B, T] that the queries
// of right-padded inputs may see at the bucketed length T: real keys (not
// masked by AttentionMask) and, for decoders, padding positions too (which
// only padded rows see, as in batchMask; causality is applied in the graph).
func (r *runner) keyValid(ins []Input, T int) *tensors.Tensor {
	ok := make([]bool, len(ins)*T)
	for b, in := range ins {
		n := len(in.IDs)
		for j := range T {
			ok[b*T+j] = (j < n && (in.AttentionMask == nil || in.AttentionMask[j] != 0)) || (r.a.Causal() && j >= n)
		}
	}
	return tensors.FromFlatDataAndDimensions(ok, len(ins), T)
}

// CheckQK refuses, before any graph is built, a blockwise pass
// (ForwardOptions.QK) combined with an option that needs the materialised
// scores or pattern, which blockwise attention never holds: interventions
// (they edit q, k, v, the scores, the pattern or z inside attention),
// internal hooks (hook_attn_scores, hook_z) and pre-LayerNorm sums (recorded
// by the materialised block only). Sliding windows, custom scales (GPT-Neo)
// and soft-capping (Gemma 2) are computed blockwise and recorded by the qk
// store (QKScores). It returns nil when opts.QK is false.
func CheckQK(cfg *arch.Config, a arch.Architecture, opts ForwardOptions) error {
	if !opts.QK {
		return nil
	}
	var why string
	switch {
	case opts.Intervention != nil:
		why = "interventions edit the attention scores and pattern, which blockwise attention never materialises"
	case opts.Internals:
		why = "the internal hooks hook_attn_scores and hook_z need the attention scores, which blockwise attention never materialises"
	case opts.PreLN:
		why = "recording the pre-LayerNorm sums (hook_attn_preln, hook_mlp_preln) is implemented for the materialised block only"
	default:
		return nil
	}
	return fmt.Errorf("blockwise attention (--store qk) is not available: %s", why)
}

// QKScores describes how a blockwise pass of cfg scored keys, what the qk
// store needs to recompute its weights: the scale of q·kᵀ (1/√head_dim unless
// the family says otherwise), the soft-capping limit (0: none) and each
// layer's sliding window (0: none; nil when no layer has one).
func QKScores(cfg *arch.Config, a arch.Architecture) (scale, softCap float64, windows []int) {
	so := arch.ScoreOptions(a)
	scale = so.Scale
	if scale == 0 {
		scale = 1 / math.Sqrt(float64(a.HeadDim()))
	}
	for l := range cfg.Layers {
		if cfg.Window(l) > 0 {
			windows = make([]int, cfg.Layers)
			for l := range windows {
				windows[l] = cfg.Window(l)
			}
			break
		}
	}
	return scale, so.SoftCap, windows
}

// emitQK records a blockwise layer's queries, keys (kv heads once), each
// row's log-sum-exp and, with v, its values.
func (r *runner) emitQK(emit func(b int, name string, t *tensors.Tensor, shape []int, rows, cols int) error, recs []Recorder, b int, p string, outs []*tensors.Tensor, n int, v bool) error {
	h, kvh, hd := r.cfg.Heads, r.a.KVHeads(), r.a.HeadDim()
	err := emit(b, p+"attn.hook_q", outs[2], []int{h, n, hd}, n, hd)
	if err == nil {
		err = emit(b, p+"attn.hook_k", outs[3], []int{kvh, n, hd}, n, hd)
	}
	if err == nil {
		err = r.emitLSE(b, p, outs[1], n, recs)
	}
	if err == nil && v {
		err = emit(b, p+"attn.hook_v", outs[4], []int{kvh, n, hd}, n, hd)
	}
	return err
}

// emitLSE records sample b's float64 log-sum-exps [heads, n] (of lse [B, heads,
// T]) as two float32 tensors whose sum is the float64 value to about 48 bits:
// attn.lse (the rounded value) and attn.lse_lo (the remainder).
func (r *runner) emitLSE(b int, p string, lse *tensors.Tensor, n int, recs []Recorder) error {
	if recs[b] == nil {
		return nil
	}
	h, T := r.cfg.Heads, lse.Shape().Dimensions[2]
	hi, lo := make([]float32, h*n), make([]float32, h*n)
	if err := tensors.ConstFlatData(lse, func(flat []float64) {
		for hh := range h {
			for i := range n {
				v := flat[(b*h+hh)*T+i]
				hi[hh*n+i] = float32(v)
				lo[hh*n+i] = float32(v - float64(float32(v)))
			}
		}
	}); err != nil {
		return err
	}
	if err := recs[b].Record(p+"attn.lse", []int{h, n}, hi); err != nil {
		return fmt.Errorf("record %sattn.lse: %w", p, err)
	}
	if err := recs[b].Record(p+"attn.lse_lo", []int{h, n}, lo); err != nil {
		return fmt.Errorf("record %sattn.lse_lo: %w", p, err)
	}
	return nil
}

// prefill runs a batch of equally long inputs through every layer without a
// cache, in one graph per part, at the bucketed length. recs[b] (nil: none)
// gets sample b's tensors trimmed to its n real positions; keepKV keeps each
// layer's keys and values, keepPattern each layer's attention of sample 0.
func (r *runner) prefill(ctx context.Context, ins []Input, recs []Recorder, opts ForwardOptions, keepKV, keepPattern bool) (*prefillResult, error) {
	n := len(ins[0].IDs)
	T := bucket(n, r.cfg.MaxPositions)
	pos := make([]int, T)
	for i := range pos {
		pos[i] = i
	}
	B := len(ins)
	idRows, typeRows, posRows := make([][]int, B), make([][]int, B), make([][]int, B)
	for b, in := range ins {
		idRows[b], typeRows[b], posRows[b] = in.IDs, in.TokenTypeIDs, pos
	}
	ids, types, posT := int32Batch(idRows, T), int32Batch(typeRows, T), int32Batch(posRows, T)
	defer finalizeAll([]*tensors.Tensor{ids, types, posT})
	// Masks by window; with QK, the key validity [B, T] (the window is in the
	// blockwise graph).
	masks := map[int]*tensors.Tensor{}
	for l := range r.cfg.Layers {
		if w := r.cfg.Window(l); masks[w] == nil {
			if opts.QK {
				masks[w] = r.keyValid(ins, T)
			} else {
				masks[w] = r.batchMask(ins, T, w)
			}
			defer masks[w].FinalizeAll()
		}
	}
	var cosT, sinT *tensors.Tensor
	if r.rope() {
		c, s := r.cfg.RopeTables(pos, r.a.RotaryDim(), n)
		cosT = tensors.FromFlatDataAndDimensions(c, T, r.a.RotaryDim())
		sinT = tensors.FromFlatDataAndDimensions(s, T, r.a.RotaryDim())
		defer finalizeAll([]*tensors.Tensor{cosT, sinT})
	}
	out, err := r.call("embed", r.embedExec, appendAny([]any{ids, types, posT}, r.embedW)...)
	if err != nil {
		return nil, err
	}
	x := out[0]
	width, h := r.cfg.Hidden, r.cfg.Heads
	var buf []float32
	// emit reads sample b's rows of t and hands them to recs[b].
	emit := func(b int, name string, t *tensors.Tensor, shape []int, rows, cols int) error {
		if recs[b] == nil {
			return nil
		}
		var rerr error
		if err := withRows(t, b, rows, cols, &buf, func(data []float32) error {
			rerr = recs[b].Record(name, shape, data)
			return rerr
		}); err != nil {
			if rerr != nil {
				return fmt.Errorf("record %s: %w", name, err)
			}
			return err
		}
		return nil
	}
	if opts.Hidden {
		for b := range B {
			if err := emit(b, "embed", x, []int{n, width}, n, width); err != nil {
				x.FinalizeAll()
				return nil, err
			}
		}
	}
	res := &prefillResult{t: T}
	kvh, hd := r.a.KVHeads(), r.a.HeadDim()
	for l := range r.cfg.Layers {
		if err := ctx.Err(); err != nil {
			x.FinalizeAll()
			res.free()
			return nil, err
		}
		args := []any{x, masks[r.cfg.Window(l)]}
		if r.rope() {
			args = append(args, cosT, sinT)
		}
		args = appendAny(args, r.layerW[l])
		exec, name := r.blockExec, "block"
		switch {
		case !opts.QKV && !keepKV && !opts.PreLN && !opts.QK:
			exec, name = r.attnExec, "block-attn"
		case opts.PreLN:
			exec, name = r.preLNExec, "block_preln"
		case opts.QK:
			exec, name = r.qkExecs[r.cfg.Window(l)], fmt.Sprintf("block-qk-w%d", r.cfg.Window(l))
		}
		var editTs []*tensors.Tensor
		if opts.Intervention != nil || opts.Internals {
			hes, err := opts.Intervention.layerEdits(r.cfg, l, B, n, T)
			if err != nil {
				x.FinalizeAll()
				res.free()
				return nil, err
			}
			if hes != nil || opts.Internals {
				if exec, name, err = r.editBlock(hes, opts.Internals, false); err != nil {
					x.FinalizeAll()
					res.free()
					return nil, err
				}
				for _, he := range hes {
					editTs = append(editTs, he.tensors()...)
				}
				args = appendAny(args, editTs)
			}
		}
		outs, err := r.call(name, exec, args...)
		finalizeAll(editTs)
		x.FinalizeAll()
		if err != nil {
			res.free()
			return nil, err
		}
		for len(outs) < 5 { // attnExec: no Q, K, V
			outs = append(outs, nil)
		}
		x = outs[0]
		if keepPattern {
			p, err := readRows(outs[1], 0, n, n, nil)
			if err != nil {
				finalizeAll(outs)
				res.free()
				return nil, err
			}
			res.layerP = append(res.layerP, p)
		}
		p := fmt.Sprintf("blocks.%d.", l)
		for b := range B {
			if err == nil && opts.QK {
				err = r.emitQK(emit, recs, b, p, outs, n, opts.QKV)
			} else if err == nil {
				err = emit(b, p+"attn.pattern", outs[1], []int{h, n, n}, n, n)
			}
			if err == nil && opts.QKV && !opts.QK {
				err = emit(b, p+"attn.hook_q", outs[2], []int{h, n, hd}, n, hd)
				if err == nil {
					err = emit(b, p+"attn.hook_k", outs[3], []int{kvh, n, hd}, n, hd)
				}
				if err == nil {
					err = emit(b, p+"attn.hook_v", outs[4], []int{kvh, n, hd}, n, hd)
				}
			}
			if err == nil && opts.PreLN {
				err = emit(b, p+"hook_attn_preln", outs[5], []int{n, width}, n, width)
				if err == nil {
					err = emit(b, p+"hook_mlp_preln", outs[6], []int{n, width}, n, width)
				}
			}
			if err == nil && opts.Internals {
				err = emit(b, p+"attn.hook_attn_scores", outs[5], []int{h, n, n}, n, n)
				if err == nil {
					err = emit(b, p+"attn.hook_z", outs[6], []int{h, n, hd}, n, hd)
				}
			}
			if err == nil && opts.Hidden {
				err = emit(b, p+"hook_resid_post", x, []int{n, width}, n, width)
			}
		}
		finalizeAll(outs[5:])
		finalizeAll(outs[1:3])
		if keepKV {
			res.k = append(res.k, outs[3])
			res.v = append(res.v, outs[4])
		} else {
			finalizeAll(outs[3:5])
		}
		if err != nil {
			x.FinalizeAll()
			res.free()
			return nil, err
		}
	}
	res.x = x
	return res, nil
}

func (p *prefillResult) free() {
	if p == nil {
		return
	}
	finalizeAll(p.k)
	finalizeAll(p.v)
	p.k, p.v = nil, nil
	if p.x != nil {
		p.x.FinalizeAll()
		p.x = nil
	}
}

// finalAndHead applies the final norm (recording it) and the head for the
// requested rows of x [B, T, width] (n real rows per sample); recs as prefill.
func (r *runner) finalAndHead(x *tensors.Tensor, n int, recs []Recorder, opts ForwardOptions) ([]*Output, error) {
	width := r.cfg.Hidden
	B := x.Shape().Dimensions[0]
	anyRec := false
	for _, rec := range recs {
		anyRec = anyRec || rec != nil
	}
	y := x
	if len(r.finalW) > 0 && (opts.Hidden && anyRec || opts.Logits != LogitsNone) {
		outs, err := r.call("final_norm", r.finalExec, appendAny([]any{x}, r.finalW)...)
		if err != nil {
			return nil, err
		}
		y = outs[0]
		defer y.FinalizeAll()
		if opts.Hidden {
			var buf []float32
			for b, rec := range recs {
				if rec == nil {
					continue
				}
				var rerr error
				if err := withRows(y, b, n, width, &buf, func(data []float32) error {
					rerr = rec.Record("final_norm", []int{n, width}, data)
					return rerr
				}); err != nil {
					if rerr != nil {
						return nil, fmt.Errorf("record final_norm: %w", err)
					}
					return nil, err
				}
			}
		}
	}
	res := make([]*Output, B)
	for b := range res {
		res[b] = &Output{}
	}
	if opts.Logits == LogitsNone {
		return res, nil
	}
	rows := n
	start := 0
	if opts.Logits == LogitsLast {
		rows, start = 1, n-1
	}
	T := y.Shape().Dimensions[1]
	sub := make([]float32, 0, B*rows*width)
	if err := tensors.ConstFlatData(y, func(flat []float32) {
		for b := range B {
			off := b * T * width
			sub = append(sub, flat[off+start*width:off+(start+rows)*width]...)
		}
	}); err != nil {
		return nil, err
	}
	in := tensors.FromFlatDataAndDimensions(sub, B, rows, width)
	defer in.FinalizeAll()
	outs, err := r.call("head", r.headExec, appendAny([]any{in}, r.headW)...)
	if err != nil {
		return nil, err
	}
	defer outs[0].FinalizeAll()
	logits, err := tensors.CopyFlatData[float32](outs[0])
	if err != nil {
		return nil, err
	}
	v := r.cfg.VocabSize
	for b := range res {
		res[b].Logits = logits[b*rows*v : (b+1)*rows*v : (b+1)*rows*v]
		if opts.Logits == LogitsLast {
			res[b].LogitsShape = []int{v}
		} else {
			res[b].LogitsShape = []int{n, v}
		}
	}
	return res, nil
}

func (r *runner) Forward(ctx context.Context, in Input, rec Recorder, opts ForwardOptions) (*Output, error) {
	outs, err := r.ForwardBatch(ctx, []Input{in}, []Recorder{rec}, opts)
	if err != nil {
		return nil, err
	}
	return outs[0], nil
}

// ForwardBatch runs the inputs as one batch through one graph per part (the
// embedding, each block, the final norm, the head): activations are [B, T,
// width] with T the bucketed common length.
func (r *runner) ForwardBatch(ctx context.Context, in []Input, recs []Recorder, opts ForwardOptions) ([]*Output, error) {
	if len(in) == 0 {
		return nil, errors.New("empty batch")
	}
	if recs == nil {
		recs = make([]Recorder, len(in))
	}
	if len(recs) != len(in) {
		return nil, fmt.Errorf("batch of %d inputs has %d recorders", len(in), len(recs))
	}
	for i, x := range in {
		if i > 0 && len(x.IDs) != len(in[0].IDs) {
			return nil, fmt.Errorf("batch input %d has %d tokens, input 0 has %d: pad them to one length", i, len(x.IDs), len(in[0].IDs))
		}
		if err := r.checkInput(x); err != nil {
			if len(in) == 1 {
				return nil, err
			}
			return nil, fmt.Errorf("batch input %d: %w", i, err)
		}
	}
	if opts.PreLN && r.cfg.ModelType != "bert" {
		return nil, fmt.Errorf("the %s architecture has no pre-LayerNorm residual sums to record (hook_attn_preln and hook_mlp_preln exist in post-norm BERT only)", r.cfg.ModelType)
	}
	if opts.PreLN && (opts.Intervention != nil || opts.Internals) {
		return nil, fmt.Errorf("recording the pre-LayerNorm sums (hook_attn_preln, hook_mlp_preln) cannot be combined with interventions or internal hooks in one pass")
	}
	if err := CheckQK(r.cfg, r.a, opts); err != nil {
		return nil, err
	}
	if opts.Intervention != nil {
		if err := opts.Intervention.Check(r.cfg); err != nil {
			return nil, err
		}
	}
	p, err := r.prefill(ctx, in, recs, opts, false, false)
	if err != nil {
		return nil, err
	}
	defer p.free()
	return r.finalAndHead(p.x, len(in[0].IDs), recs, opts)
}

// editBlock returns the block graph applying edits of hes's structure (compiled
// once per structure): after the layer's weights it takes each edit's tensors
// (hookEdit.tensors), applies hook_resid_pre to the block's input,
// hook_resid_post to its output and the attention hooks through arch.Edits.
// With cache it is the decode step's block (cacheExec's inputs and outputs):
// the returned cache holds the edited keys and values.
func (r *runner) editBlock(hes []*hookEdit, taps, cache bool) (*Exec, string, error) {
	keys := make([]string, len(hes))
	type shape struct {
		hook        string
		min, renorm bool
	}
	st := make([]shape, len(hes))
	for i, he := range hes {
		keys[i] = he.key()
		st[i] = shape{he.hook, he.hasMin, he.renorm != nil}
	}
	if taps {
		keys = append(keys, "taps")
	}
	if cache {
		keys = append(keys, "cache")
	}
	key := strings.Join(keys, ",")
	name := "block+" + key
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.editExec[key]; ok {
		return e, name, nil
	}
	a, layerP := r.a, r.a.LayerParams(0)
	e, err := NewExec(r.backend, func(in []*Node) []*Node {
		x, mask := in[0], in[1]
		ai := arch.AttentionInputs{Mask: mask, Edits: arch.Edits{}, Float64: r.attn64}
		if taps {
			ai.Taps = map[string]*Node{}
		}
		rest := in[2:]
		if r.rope() {
			ai.Cos, ai.Sin = rest[0], rest[1]
			rest = rest[2:]
		}
		if cache {
			ai.PastK, ai.PastV, ai.Past = rest[0], rest[1], rest[2]
			rest = rest[3:]
		}
		w := weightsOf(layerP, rest[:len(layerP)])
		rest = rest[len(layerP):]
		var pre, post *arch.Edit
		for _, s := range st {
			ed := &arch.Edit{Sel: rest[0], Mul: rest[1], Add: rest[2]}
			rest = rest[3:]
			if s.min {
				ed.Min, rest = rest[0], rest[1:]
			}
			if s.renorm {
				ed.Renorm, rest = rest[0], rest[1:]
			}
			switch s.hook {
			case "hook_resid_pre":
				pre = ed
			case "hook_resid_post":
				post = ed
			default:
				ai.Edits[strings.TrimPrefix(s.hook, "attn.")] = ed
			}
		}
		o := a.Block(w, pre.Apply(x), ai)
		// The recorded Q/K/V are the edited ones (the same deterministic edit).
		q, k, v := ai.Edits[arch.HookQ].Apply(o.Q), ai.Edits[arch.HookK].Apply(o.K), ai.Edits[arch.HookV].Apply(o.V)
		outs := []*Node{post.Apply(o.Out), o.Pattern, q, k, v}
		if taps {
			outs = append(outs, ai.Taps[arch.HookScores], ai.Taps[arch.HookZ])
		}
		return outs
	})
	if err != nil {
		return nil, "", err
	}
	if r.editExec == nil {
		r.editExec = map[string]*Exec{}
	}
	r.editExec[key] = e
	return e, name, nil
}
