package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/attnscope/attnscope/checkpoint"
)

// SampleOptions describe what a SampleWriter stores.
type SampleOptions struct {
	// Layers is the model's number of layers.
	Layers int
	// Hidden stores embed, blocks.<l>.hook_resid_post and (with FinalNorm)
	// final_norm in hidden.safetensors.
	Hidden bool
	// FinalNorm is whether the model records "final_norm" (every family but BERT).
	FinalNorm bool
	// QKV stores blocks.<l>.attn.hook_q, hook_k and hook_v, each [heads, tokens,
	// head_dim], in qkv.safetensors. Keys and values that arrive with fewer
	// (grouped-query) heads are repeated so that query head h gets kv head
	// h/(heads/kv_heads), as the attention used them.
	QKV bool
	// FP16 stores tensors as float16 instead of float32.
	FP16 bool
	// QK stores, instead of attention.safetensors, qk.safetensors: per layer
	// blocks.<l>.attn.hook_q [heads, tokens, head_dim], hook_k [KVHeads, tokens,
	// head_dim], attn.lse and attn.lse_lo [heads, tokens] (always float32; their
	// sum is the float64 log-sum-exp) and, with QKValues,
	// hook_v (model.ForwardOptions.QK); Causal is recorded for the tile mask.
	QK, QKValues, Causal bool
	KVHeads              int
	// QKScale, QKSoftCap and QKWindows are recorded as TensorsInfo's Scale,
	// SoftCap and Windows (model.QKScores).
	QKScale, QKSoftCap float64
	QKWindows          []int
}

// SampleWriter streams one sample's tensors to disk as a model produces them. It
// implements the model package's Recorder: Record("blocks.<l>.attn.pattern",
// [heads, q, k], data) copies that layer and hands it to a background goroutine
// that writes it to attention.safetensors while the model computes the next layer;
// at most two copies are held (one being written, one waiting), so memory stays
// about two layers deep. The safetensors headers are fixed when the first tensor
// of each file arrives (every layer has the same shape). With QKV, each layer's
// hook_q, hook_k and hook_v (in that order, after its pattern) go to
// qkv.safetensors the same way. Other names (hook_q/k/v when QKV is off, or
// hidden states when Hidden is off) are ignored.
//
// Nothing is visible until Commit, which commits the tensor files and then writes
// sample.json; Abort (or any error) leaves no file behind.
type SampleWriter struct {
	run  *Run
	id   string
	opts SampleOptions
	dir  string
	// madeDir: NewSample created dir, so Abort removes it (when empty) and an
	// interrupted or failed sample leaves no folder behind.
	madeDir bool

	att, hid, qkv             *checkpoint.SafetensorsWriter
	attNext, hidNext, qkvNext int
	qk                        *checkpoint.SafetensorsWriter
	qkNext                    int
	qkInfo                    *TensorsInfo
	hidNames                  []string
	attInfo, hidInfo, qkvInfo *TensorsInfo
	expand                    []float32 // grouped-query keys/values repeated per query head
	err                       error
	done                      bool

	// Background writing: jobs carries copies to the writer goroutine, free the
	// two reusable buffers, idle is closed when the goroutine has exited.
	jobs  chan writeJob
	free  chan []float32
	idle  chan struct{}
	mu    sync.Mutex
	wrErr error
}

type writeJob struct {
	st   *checkpoint.SafetensorsWriter
	name string
	data []float32
}

// enqueue copies data and queues it for writing to st.
func (w *SampleWriter) enqueue(st *checkpoint.SafetensorsWriter, name string, data []float32) error {
	if w.jobs == nil {
		w.jobs = make(chan writeJob)
		w.free = make(chan []float32, 2)
		w.free <- nil
		w.free <- nil
		w.idle = make(chan struct{})
		go w.loop()
	}
	if err := w.writeErr(); err != nil {
		return w.fail(err)
	}
	buf := append((<-w.free)[:0], data...)
	w.jobs <- writeJob{st, name, buf}
	return nil
}

func (w *SampleWriter) loop() {
	defer close(w.idle)
	for j := range w.jobs {
		if w.writeErr() == nil {
			if err := j.st.Write(j.name, j.data); err != nil {
				w.mu.Lock()
				w.wrErr = err
				w.mu.Unlock()
			}
		}
		w.free <- j.data
	}
}

func (w *SampleWriter) writeErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wrErr
}

// drain waits until every queued tensor is written and stops the goroutine.
func (w *SampleWriter) drain() error {
	if w.jobs != nil {
		close(w.jobs)
		<-w.idle
		w.jobs = nil
	}
	return w.writeErr()
}

// NewSample starts writing sample id. An existing unfinished sample of that id is
// overwritten on Commit.
func (r *Run) NewSample(id string, opts SampleOptions) (*SampleWriter, error) {
	if err := CheckSampleID(id); err != nil {
		return nil, err
	}
	if opts.Layers <= 0 {
		return nil, fmt.Errorf("sample %s: number of layers must be positive, got %d", id, opts.Layers)
	}
	dir := r.SampleDir(id)
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sample %s: %w", id, err)
	}
	if statErr == nil && !r.Finished(id) {
		removeStaleTemps(dir)
	}
	w := &SampleWriter{run: r, id: id, opts: opts, dir: dir, madeDir: os.IsNotExist(statErr)}
	if opts.Hidden {
		w.hidNames = append(w.hidNames, EmbedName)
		for l := range opts.Layers {
			w.hidNames = append(w.hidNames, ResidName(l))
		}
		if opts.FinalNorm {
			w.hidNames = append(w.hidNames, FinalNormName)
		}
	}
	return w, nil
}

// removeStaleTemps deletes the temporary files (internal/atomicfile's ".<name>.tmp-*")
// that a killed writer (kill -9, a node lost) left in an unfinished sample's folder.
func removeStaleTemps(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp-") && e.Type().IsRegular() {
			os.Remove(filepath.Join(dir, n))
		}
	}
}

func (w *SampleWriter) dtype() checkpoint.DType {
	if w.opts.FP16 {
		return checkpoint.F16
	}
	return checkpoint.F32
}

func (w *SampleWriter) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	w.Abort()
	return err
}

// Record implements model.Recorder.
func (w *SampleWriter) Record(name string, shape []int, data []float32) error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return fmt.Errorf("sample %s: Record after Commit or Abort", w.id)
	}
	switch {
	case w.opts.QK && (strings.HasSuffix(name, ".attn.hook_q") || strings.HasSuffix(name, ".attn.hook_k") || strings.HasSuffix(name, ".attn.lse") || strings.HasSuffix(name, ".attn.lse_lo") || strings.HasSuffix(name, ".attn.hook_v")):
		return w.recordQK(name, shape, data)
	case strings.HasSuffix(name, ".attn.pattern"):
		return w.recordAttention(name, shape, data)
	case w.opts.QKV && (strings.HasSuffix(name, ".attn.hook_q") || strings.HasSuffix(name, ".attn.hook_k") || strings.HasSuffix(name, ".attn.hook_v")):
		return w.recordQKV(name, shape, data)
	case w.opts.Hidden && (name == EmbedName || name == FinalNormName || strings.HasSuffix(name, ".hook_resid_post")):
		return w.recordHidden(name, shape, data)
	}
	return nil
}

func (w *SampleWriter) recordAttention(name string, shape []int, data []float32) error {
	if w.att == nil {
		if len(shape) != 3 || shape[1] != shape[2] {
			return w.fail(fmt.Errorf("sample %s: %s has shape %v, [heads, query, key] with query = key expected", w.id, name, shape))
		}
		infos := make([]checkpoint.TensorInfo, w.opts.Layers)
		for l := range infos {
			infos[l] = checkpoint.TensorInfo{Name: AttentionName(l), DType: w.dtype(), Shape: append([]int{}, shape...)}
		}
		st, err := checkpoint.CreateSafetensors(w.run.AttentionPath(w.id), infos, map[string]string{"format": "attnscope-attention", "layout": "[heads, query, key]"})
		if err != nil {
			return w.fail(err)
		}
		w.att = st
		w.attInfo = &TensorsInfo{Layers: w.opts.Layers, Heads: shape[0], Query: shape[1], Key: shape[2], DType: string(w.dtype())}
	}
	if name != AttentionName(w.attNext) {
		return w.fail(fmt.Errorf("sample %s: got %s, expected %s next", w.id, name, AttentionName(w.attNext)))
	}
	if err := w.enqueue(w.att, name, data); err != nil {
		return err
	}
	w.attNext++
	return nil
}

func (w *SampleWriter) recordHidden(name string, shape []int, data []float32) error {
	if w.hid == nil {
		if len(shape) != 2 {
			return w.fail(fmt.Errorf("sample %s: %s has shape %v, [tokens, width] expected", w.id, name, shape))
		}
		infos := make([]checkpoint.TensorInfo, len(w.hidNames))
		for i, n := range w.hidNames {
			infos[i] = checkpoint.TensorInfo{Name: n, DType: w.dtype(), Shape: append([]int{}, shape...)}
		}
		st, err := checkpoint.CreateSafetensors(w.run.HiddenPath(w.id), infos, map[string]string{"format": "attnscope-hidden", "layout": "[tokens, width]"})
		if err != nil {
			return w.fail(err)
		}
		w.hid = st
		w.hidInfo = &TensorsInfo{Layers: w.opts.Layers, Tokens: shape[0], Width: shape[1], DType: string(w.dtype())}
	}
	if w.hidNext >= len(w.hidNames) || name != w.hidNames[w.hidNext] {
		want := "nothing more"
		if w.hidNext < len(w.hidNames) {
			want = w.hidNames[w.hidNext]
		}
		return w.fail(fmt.Errorf("sample %s: got hidden state %s, expected %s next", w.id, name, want))
	}
	if err := w.enqueue(w.hid, name, data); err != nil {
		return err
	}
	w.hidNext++
	return nil
}

// qkvNames lists qkv.safetensors' tensors in the order they arrive.
func qkvNames(layers int) []string {
	names := make([]string, 0, 3*layers)
	for l := range layers {
		names = append(names, QName(l), KName(l), VName(l))
	}
	return names
}

func (w *SampleWriter) recordQKV(name string, shape []int, data []float32) error {
	if w.qkv == nil {
		if len(shape) != 3 || !strings.HasSuffix(name, ".attn.hook_q") {
			return w.fail(fmt.Errorf("sample %s: %s has shape %v, hook_q [heads, tokens, head_dim] expected first", w.id, name, shape))
		}
		names := qkvNames(w.opts.Layers)
		infos := make([]checkpoint.TensorInfo, len(names))
		for i, n := range names {
			infos[i] = checkpoint.TensorInfo{Name: n, DType: w.dtype(), Shape: append([]int{}, shape...)}
		}
		st, err := checkpoint.CreateSafetensors(w.run.QKVPath(w.id), infos, map[string]string{"format": "attnscope-qkv", "layout": "[heads, tokens, head_dim]"})
		if err != nil {
			return w.fail(err)
		}
		w.qkv = st
		w.qkvInfo = &TensorsInfo{Layers: w.opts.Layers, Heads: shape[0], Tokens: shape[1], HeadDim: shape[2], DType: string(w.dtype())}
	}
	names := qkvNames(w.opts.Layers)
	if w.qkvNext >= len(names) || name != names[w.qkvNext] {
		want := "nothing more"
		if w.qkvNext < len(names) {
			want = names[w.qkvNext]
		}
		return w.fail(fmt.Errorf("sample %s: got %s, expected %s next", w.id, name, want))
	}
	heads, tokens, hd := w.qkvInfo.Heads, w.qkvInfo.Tokens, w.qkvInfo.HeadDim
	if len(shape) != 3 || shape[1] != tokens || shape[2] != hd || shape[0] <= 0 || heads%shape[0] != 0 || len(data) != shape[0]*tokens*hd {
		return w.fail(fmt.Errorf("sample %s: %s has shape %v (%d values), [kv_heads, %d, %d] with kv_heads dividing %d expected", w.id, name, shape, len(data), tokens, hd, heads))
	}
	if g := heads / shape[0]; g > 1 {
		w.expand = repeatHeads(w.expand[:0], data, shape[0], g, tokens*hd)
		data = w.expand
	}
	if err := w.enqueue(w.qkv, name, data); err != nil {
		return err
	}
	w.qkvNext++
	return nil
}

// repeatHeads appends src [kv, size] with each kv head repeated g times
// (transformers' repeat_kv: query head h uses kv head h/g).
func repeatHeads(dst, src []float32, kv, g, size int) []float32 {
	for j := range kv {
		for range g {
			dst = append(dst, src[j*size:(j+1)*size]...)
		}
	}
	return dst
}

// Commit checks that every layer arrived, commits the tensor files and writes
// sample.json (with its Attention and Hidden fields filled in), marking the sample
// finished.
func (w *SampleWriter) Commit(s *Sample) error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return fmt.Errorf("sample %s: Commit after Commit or Abort", w.id)
	}
	if s.ID != w.id {
		return w.fail(fmt.Errorf("sample %s: Commit of a record for sample %q", w.id, s.ID))
	}
	if err := w.drain(); err != nil {
		return w.fail(err)
	}
	if w.opts.QK && w.qkNext != len(qkNames(w.opts.Layers, w.opts.QKValues)) {
		return w.fail(fmt.Errorf("sample %s: %d of %d query/key/lse tensors recorded", w.id, w.qkNext, len(qkNames(w.opts.Layers, w.opts.QKValues))))
	}
	if !w.opts.QK && w.attNext != w.opts.Layers {
		return w.fail(fmt.Errorf("sample %s: %d of %d attention layers recorded", w.id, w.attNext, w.opts.Layers))
	}
	if w.hidNext != len(w.hidNames) {
		return w.fail(fmt.Errorf("sample %s: %d of %d hidden states recorded", w.id, w.hidNext, len(w.hidNames)))
	}
	if w.opts.QKV && w.qkvNext != 3*w.opts.Layers {
		return w.fail(fmt.Errorf("sample %s: %d of %d query/key/value tensors recorded", w.id, w.qkvNext, 3*w.opts.Layers))
	}
	// Stale optional files from an earlier, different attempt must not stay.
	if !w.opts.Hidden {
		os.Remove(w.run.HiddenPath(w.id))
	}
	if !w.opts.QKV {
		os.Remove(w.run.QKVPath(w.id))
	}
	if w.opts.QK {
		os.Remove(w.run.AttentionPath(w.id))
	} else {
		os.Remove(w.run.QKPath(w.id))
	}
	for _, st := range []*checkpoint.SafetensorsWriter{w.att, w.hid, w.qkv, w.qk} {
		if st != nil {
			if err := st.Commit(); err != nil {
				return w.fail(err)
			}
		}
	}
	w.done = true
	s.Attention = w.attInfo
	s.Hidden = w.hidInfo
	s.QKV = w.qkvInfo
	s.QK = w.qkInfo
	return w.run.WriteSample(s)
}

// Abort discards whatever was written; it is safe to call after Commit.
func (w *SampleWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.drain()
	if w.att != nil {
		w.att.Abort()
	}
	if w.hid != nil {
		w.hid.Abort()
	}
	if w.qkv != nil {
		w.qkv.Abort()
	}
	if w.qk != nil {
		w.qk.Abort()
	}
	if w.madeDir {
		os.Remove(w.dir) // only when empty: never a file this writer did not write
	}
}

// qkNames lists qk.safetensors' tensors in the order they arrive.
func qkNames(layers int, values bool) []string {
	var names []string
	for l := range layers {
		names = append(names, QName(l), KName(l), LSEName(l), LSELoName(l))
		if values {
			names = append(names, VName(l))
		}
	}
	return names
}

func (w *SampleWriter) recordQK(name string, shape []int, data []float32) error {
	names := qkNames(w.opts.Layers, w.opts.QKValues)
	if w.qk == nil {
		if len(shape) != 3 || !strings.HasSuffix(name, ".attn.hook_q") || w.opts.KVHeads <= 0 || shape[0]%w.opts.KVHeads != 0 {
			return w.fail(fmt.Errorf("sample %s: %s has shape %v, hook_q [heads, tokens, head_dim] with heads a multiple of kv_heads %d expected first", w.id, name, shape, w.opts.KVHeads))
		}
		heads, n, hd := shape[0], shape[1], shape[2]
		infos := make([]checkpoint.TensorInfo, len(names))
		for i, nm := range names {
			info := checkpoint.TensorInfo{Name: nm, DType: w.dtype(), Shape: []int{w.opts.KVHeads, n, hd}}
			switch {
			case strings.HasSuffix(nm, ".attn.hook_q"):
				info.Shape = []int{heads, n, hd}
			case strings.HasSuffix(nm, ".attn.lse"), strings.HasSuffix(nm, ".attn.lse_lo"):
				info.DType, info.Shape = checkpoint.F32, []int{heads, n}
			}
			infos[i] = info
		}
		st, err := checkpoint.CreateSafetensors(w.run.QKPath(w.id), infos, map[string]string{"format": "attnscope-qk", "layout": "hook_q [heads, tokens, head_dim], hook_k/hook_v [kv_heads, tokens, head_dim], lse [heads, tokens]"})
		if err != nil {
			return w.fail(err)
		}
		w.qk = st
		w.qkInfo = &TensorsInfo{Layers: w.opts.Layers, Heads: heads, KVHeads: w.opts.KVHeads, Tokens: n, HeadDim: hd, DType: string(w.dtype()), Causal: w.opts.Causal, Values: w.opts.QKValues,
			Scale: w.opts.QKScale, SoftCap: w.opts.QKSoftCap, Windows: w.opts.QKWindows}
	}
	if w.qkNext >= len(names) || name != names[w.qkNext] {
		want := "nothing more"
		if w.qkNext < len(names) {
			want = names[w.qkNext]
		}
		return w.fail(fmt.Errorf("sample %s: got %s, expected %s next", w.id, name, want))
	}
	size := 1
	for _, d := range shape {
		size *= d
	}
	if size != len(data) || (len(shape) == 2 && (shape[0] != w.qkInfo.Heads || shape[1] != w.qkInfo.Tokens)) || (len(shape) == 3 && (shape[1] != w.qkInfo.Tokens || shape[2] != w.qkInfo.HeadDim)) {
		return w.fail(fmt.Errorf("sample %s: %s has shape %v (%d values), which does not match hook_q's [%d, %d, %d]", w.id, name, shape, len(data), w.qkInfo.Heads, w.qkInfo.Tokens, w.qkInfo.HeadDim))
	}
	if err := w.enqueue(w.qk, name, data); err != nil {
		return err
	}
	w.qkNext++
	return nil
}
