package store

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/tensor"
)

// QKReader serves tiles of the attention of a sample captured with --store qk
// (qk.safetensors), recomputed exactly from the post-RoPE queries and keys and
// each row's log-sum-exp:
//
//	p[h, i, j] = exp(s(q[h,i]·k[h/g, j]) − lse[h, i])   (0 where masked)
//
// with the dot products accumulated in float64 (g = heads/kv_heads), s the
// recorded scoring (TensorsInfo.Scale, default 1/√head_dim, and SoftCap), and
// masked: j > i for causal models, j ≤ i − Windows[l] in sliding-window layers.
// The products of the stored float32 values are exact in float64, so the dot
// products do not depend on the kernel that sums them (the blocked AVX-512 one
// of qktile_simd.go or the portable tileScalar). Of one layer at a time it reads
// what tiles ask for, in blocks of qkChunk rows: a tile of head h, rows [r0, r1)
// and columns [c0, c1) reads those rows of h's queries and log-sum-exps and those
// keys of h's kv head, once (a file in object storage: ranged reads of those
// bytes only). Tile, Rows and ExactRow may be called concurrently for tiles of
// the layer last read; reading another layer is not safe for concurrent use.
type QKReader struct {
	st    *checkpoint.Safetensors
	info  TensorsInfo
	layer int
	q64   []float64 // queries as float64, [heads, tokens, head_dim]
	kp    []float64 // keys as float64 in panels of qkPanel keys: [kv_heads, panels, head_dim, qkPanel]
	lse   []float64 // lse + lse_lo, [heads, tokens]
	// panels is the number of key panels per kv head (⌈tokens/qkPanel⌉).
	panels int

	mu sync.Mutex // guards the blocks read
	// qRead[h][b] and kRead[kh][b]: block b (rows or keys [b·qkChunk, (b+1)·qkChunk))
	// of head h's queries and log-sum-exps, of kv head kh's keys, is read.
	qRead, kRead [][]bool
}

// qkPanel is the number of keys stored together per head dimension: each panel
// is head_dim × qkPanel float64 values, contiguous, read in order by the kernel.
const qkPanel = 16

// qkChunk is the number of rows (queries) or keys read at a time: a multiple of
// qkPanel, so that a block of keys fills whole panels.
const qkChunk = 64

// OpenQK opens sample id's qk.safetensors. An error wrapping ErrNotCaptured when
// the sample was not captured with --store qk.
func (r *Run) OpenQK(id string) (*QKReader, error) {
	s, err := r.Sample(id)
	if err != nil {
		return nil, err
	}
	if s.QK == nil {
		return nil, fmt.Errorf("run %s: sample %q was not captured with --store qk: %w", r.dir, id, ErrNotCaptured)
	}
	st, err := r.openTensors(id, QKFile)
	if err != nil {
		return nil, err
	}
	return &QKReader{st: st, info: *s.QK, layer: -1}, nil
}

// Info describes the stored tensors (layers, heads, kv heads, tokens, head dim).
func (q *QKReader) Info() TensorsInfo { return q.info }

// Close releases the file.
func (q *QKReader) Close() error { return q.st.Close() }

// qkSpan is what a computation needs of a layer: heads [h0, h1) rows [r0, r1),
// their kv heads' keys [c0, c1).
type qkSpan struct{ h0, h1, r0, r1, c0, c1 int }

// load reads what span s of layer l needs and is not read yet, switching to layer l
// first (forgetting the other layer's blocks) if needed.
func (q *QKReader) load(l int, s qkSpan) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	n, hd := q.info.Tokens, q.info.HeadDim
	if q.layer != l {
		if err := q.checkLayer(l); err != nil {
			return err
		}
		q.q64 = growFloat64(q.q64, q.info.Heads*n*hd)
		q.panels = (n + qkPanel - 1) / qkPanel
		q.kp = growFloat64(q.kp, q.info.KVHeads*q.panels*hd*qkPanel)
		clear(q.kp) // the lanes past the last key stay 0
		q.lse = growFloat64(q.lse, q.info.Heads*n)
		blocks := (n + qkChunk - 1) / qkChunk
		q.qRead, q.kRead = readFlags(q.info.Heads, blocks), readFlags(q.info.KVHeads, blocks)
		q.layer = l
	}
	g := q.info.Heads / q.info.KVHeads
	for h := s.h0; h < s.h1; h++ {
		if err := forMissing(q.qRead[h], s.r0, s.r1, n, func(a, b int) error { return q.readRows(l, h, a, b) }); err != nil {
			q.layer = -1
			return err
		}
	}
	for kh := s.h0 / g; kh <= (s.h1-1)/g; kh++ {
		if err := forMissing(q.kRead[kh], s.c0, s.c1, n, func(a, b int) error { return q.readKeys(l, kh, a, b) }); err != nil {
			q.layer = -1
			return err
		}
	}
	return nil
}

func readFlags(heads, blocks int) [][]bool {
	out := make([][]bool, heads)
	for i := range out {
		out[i] = make([]bool, blocks)
	}
	return out
}

// forMissing calls read(a, b) for each run of consecutive blocks of [from, to)
// not read yet (a, b: their first and end row, b ≤ n), marking them read.
func forMissing(done []bool, from, to, n int, read func(a, b int) error) error {
	for b := from / qkChunk; b*qkChunk < to; {
		if done[b] {
			b++
			continue
		}
		e := b
		for e*qkChunk < to && !done[e] {
			e++
		}
		if err := read(b*qkChunk, min(e*qkChunk, n)); err != nil {
			return err
		}
		for i := b; i < e; i++ {
			done[i] = true
		}
		b = e
	}
	return nil
}

// checkLayer checks the shapes of layer l's tensors.
func (q *QKReader) checkLayer(l int) error {
	n, hd := q.info.Tokens, q.info.HeadDim
	for _, c := range []struct {
		name  string
		shape []int
	}{{QName(l), []int{q.info.Heads, n, hd}}, {KName(l), []int{q.info.KVHeads, n, hd}},
		{LSEName(l), []int{q.info.Heads, n}}, {LSELoName(l), []int{q.info.Heads, n}}} {
		t, ok := q.st.Info(c.name)
		if !ok {
			return fmt.Errorf("read %s: no tensor %q", q.st.Path(), c.name)
		}
		if fmt.Sprint(t.Shape) != fmt.Sprint(c.shape) {
			return fmt.Errorf("read %s: tensor %q has shape %v, %v expected", q.st.Path(), c.name, t.Shape, c.shape)
		}
	}
	return nil
}

// readRows reads rows [a, b) of head h's queries and log-sum-exps of layer l.
func (q *QKReader) readRows(l, h, a, b int) error {
	n, hd := q.info.Tokens, q.info.HeadDim
	qs, err := q.st.Float32Range(QName(l), (h*n+a)*hd, (b-a)*hd)
	if err != nil {
		return err
	}
	for i, v := range qs {
		q.q64[(h*n+a)*hd+i] = float64(v)
	}
	hi, err := q.st.Float32Range(LSEName(l), h*n+a, b-a)
	if err != nil {
		return err
	}
	lo, err := q.st.Float32Range(LSELoName(l), h*n+a, b-a)
	if err != nil {
		return err
	}
	for i := range hi {
		q.lse[h*n+a+i] = float64(hi[i]) + float64(lo[i])
	}
	return nil
}

// readKeys reads keys [a, b) of kv head kh of layer l into their panels.
func (q *QKReader) readKeys(l, kh, a, b int) error {
	n, hd := q.info.Tokens, q.info.HeadDim
	k, err := q.st.Float32Range(KName(l), (kh*n+a)*hd, (b-a)*hd)
	if err != nil {
		return err
	}
	for j := a; j < b; j++ {
		p, lane := j/qkPanel, j%qkPanel
		panel := q.kp[(kh*q.panels+p)*hd*qkPanel:]
		for d, v := range k[(j-a)*hd : (j-a+1)*hd] {
			panel[d*qkPanel+lane] = float64(v)
		}
	}
	return nil
}

func growFloat64(s []float64, n int) []float64 {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]float64, n)
}

func (q *QKReader) check(l, h, r0, r1, c0, c1 int) error {
	n := q.info.Tokens
	switch {
	case l < 0 || l >= q.info.Layers:
		return fmt.Errorf("tile: layer %d is outside the sample's %d layers", l, q.info.Layers)
	case h < 0 || h >= q.info.Heads:
		return fmt.Errorf("tile: head %d is outside the layer's %d heads", h, q.info.Heads)
	case r0 < 0 || r1 > n || r0 >= r1:
		return fmt.Errorf("tile: rows [%d, %d) are not a non-empty range inside the %d×%d attention matrix", r0, r1, n, n)
	case c0 < 0 || c1 > n || c0 >= c1:
		return fmt.Errorf("tile: columns [%d, %d) are not a non-empty range inside the %d×%d attention matrix", c0, c1, n, n)
	}
	return nil
}

// Tile returns rows [r0, r1) × columns [c0, c1) of layer l, head h's attention
// as a [r1−r0, c1−c0] tensor. A tile outside the [tokens, tokens] matrix (or an
// empty one, or a layer or head that does not exist) is an error.
func (q *QKReader) Tile(l, h, r0, r1, c0, c1 int) (*tensor.Tensor, error) {
	if err := q.check(l, h, r0, r1, c0, c1); err != nil {
		return nil, err
	}
	if err := q.load(l, qkSpan{h, h + 1, r0, r1, c0, c1}); err != nil {
		return nil, err
	}
	out := tensor.New(r1-r0, c1-c0)
	q.tileInto(out.Data, c1-c0, h, r0, r1, c0, c1)
	return out, nil
}

// tileInto writes head h's rows [r0, r1) × columns [c0, c1) of the loaded layer
// into dst (row i − r0 at dst[(i−r0)·stride:]), masked weights as 0.
func (q *QKReader) tileInto(dst []float64, stride, h, r0, r1, c0, c1 int) {
	n, hd := q.info.Tokens, q.info.HeadDim
	t := qkTile{
		dst: dst, stride: stride,
		q:   q.q64[h*n*hd : (h+1)*n*hd],
		kp:  q.kp[h/(q.info.Heads/q.info.KVHeads)*q.panels*hd*qkPanel:][:q.panels*hd*qkPanel],
		lse: q.lse[h*n : (h+1)*n], hd: hd, scale: q.info.qkScale(), softCap: q.info.SoftCap,
		r0: r0, r1: r1, c0: c0, c1: c1, causal: q.info.Causal,
	}
	if q.info.Causal {
		for i := r0; i < r1; i++ { // the masked part of each row
			if from := max(c0, i+1); from < c1 {
				clear(dst[(i-r0)*stride+from-c0 : (i-r0)*stride+c1-c0])
			}
		}
	}
	if t.softCap > 0 || !tileVec(&t) {
		tileScalar(&t)
	}
	for i := r0; i < r1; i++ { // keys before a sliding window (the kernels compute them)
		if to := min(c1, q.info.qkFirstKey(q.layer, i)); to > c0 {
			clear(dst[(i-r0)*stride : (i-r0)*stride+to-c0])
		}
	}
}

// qkTile is one tile to compute: head h's queries q ([tokens, head_dim]), its kv
// head's key panels kp and row log-sum-exps lse; scores are scale·q·k, soft-capped
// when softCap > 0 (then by tileScalar only).
type qkTile struct {
	dst            []float64
	stride         int
	q, kp, lse     []float64
	hd             int
	scale, softCap float64
	r0, r1, c0, c1 int
	causal         bool
}

// end is the first column not computed for row i (causal: j ≤ i only).
func (t *qkTile) end(i int) int {
	if t.causal {
		return min(t.c1, i+1)
	}
	return t.c1
}

// tileScalar is the portable kernel: per row, sixteen keys of a panel at a time,
// each dot product summed over d in order (as the vector kernel sums it).
func tileScalar(t *qkTile) {
	hd := t.hd
	var acc [qkPanel]float64
	for i := t.r0; i < t.r1; i++ {
		qi := t.q[i*hd : (i+1)*hd]
		lse := t.lse[i]
		row := t.dst[(i-t.r0)*t.stride:]
		end := t.end(i)
		for p := t.c0 / qkPanel; p*qkPanel < end; p++ {
			panel := t.kp[p*hd*qkPanel : (p+1)*hd*qkPanel]
			acc = [qkPanel]float64{}
			for d, a := range qi {
				kd := panel[d*qkPanel : (d+1)*qkPanel]
				for lane := range acc {
					acc[lane] = math.FMA(a, kd[lane], acc[lane])
				}
			}
			for lane, s := range acc {
				if j := p*qkPanel + lane; j >= t.c0 && j < end {
					if t.softCap > 0 {
						row[j-t.c0] = math.Exp(t.softCap*math.Tanh(s*t.scale/t.softCap) - lse)
					} else {
						row[j-t.c0] = math.Exp(math.FMA(s, t.scale, -lse))
					}
				}
			}
		}
	}
}

// kAt is key j's component d of kv head kh.
func (q *QKReader) kAt(kh, j, d int) float64 {
	hd := q.info.HeadDim
	return q.kp[((kh*q.panels+j/qkPanel)*hd+d)*qkPanel+j%qkPanel]
}

// ExactRow returns row i of layer l, head h, [tokens], with the normaliser summed
// in float64 over the whole row instead of the stored log-sum-exp: O(tokens ·
// head_dim) per row, the float64 reference Tile is checked against.
func (q *QKReader) ExactRow(l, h, i int) ([]float64, error) {
	if err := q.check(l, h, i, i+1, 0, q.info.Tokens); err != nil {
		return nil, err
	}
	if err := q.load(l, qkSpan{h, h + 1, i, i + 1, 0, q.info.Tokens}); err != nil {
		return nil, err
	}
	n, hd := q.info.Tokens, q.info.HeadDim
	kh := h / (q.info.Heads / q.info.KVHeads)
	scale := q.info.qkScale()
	end := n
	if q.info.Causal {
		end = i + 1
	}
	first := q.info.qkFirstKey(l, i)
	s := make([]float64, n)
	m := math.Inf(-1)
	for j := first; j < end; j++ {
		dot := 0.0
		for d := range hd {
			dot += q.q64[(h*n+i)*hd+d] * q.kAt(kh, j, d)
		}
		s[j] = q.info.qkCap(dot * scale)
		m = max(m, s[j])
	}
	sum := 0.0
	for j := first; j < end; j++ {
		sum += math.Exp(s[j] - m)
	}
	out := make([]float64, n)
	for j := first; j < end; j++ {
		out[j] = math.Exp(s[j]-m) / sum
	}
	return out, nil
}

// MaxQKLayerTokens is the longest sample of a --store qk run whose whole attention
// layer AttentionLayer materialises ([heads, N, N] float64: 512 MiB for 8 heads at
// 4,096 tokens).
const MaxQKLayerTokens = 4096

func (r *Run) qkLayer(id string, info *TensorsInfo, l int) (*tensor.Tensor, error) {
	n := info.Tokens
	if n > MaxQKLayerTokens {
		return nil, fmt.Errorf("run %s: sample %q was captured with --store qk at %d tokens; its whole attention layer (%d×%d×%d weights) is only materialised up to %d tokens: use a pass that streams row blocks (attention_entropy, attention_max_weight, attention_received) or read tiles", r.dir, id, n, info.Heads, n, n, MaxQKLayerTokens)
	}
	q, err := r.OpenQK(id)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	out := tensor.New(info.Heads, n, n)
	if err := q.RowsInto(out, l, 0, n); err != nil {
		return nil, err
	}
	return out, nil
}

// Rows returns rows [r0, r1) of every head of layer l, [heads, r1−r0, tokens].
func (q *QKReader) Rows(l, r0, r1 int) (*tensor.Tensor, error) {
	out := tensor.New(q.info.Heads, max(0, r1-r0), q.info.Tokens)
	return out, q.RowsInto(out, l, r0, r1)
}

// RowsInto writes rows [r0, r1) of every head of layer l into dst, whose shape
// must be [heads, r1−r0, tokens] (a buffer reused from block to block: every
// value is overwritten). Heads are computed in parallel, up to GOMAXPROCS at a
// time, each straight into its part of dst.
func (q *QKReader) RowsInto(dst *tensor.Tensor, l, r0, r1 int) error {
	return q.WindowInto(dst, l, Window{Span{r0, r1}, Span{0, q.info.Tokens}})
}

// WindowInto writes window w (rows × columns) of every head of layer l into dst,
// whose shape must be [heads, rows, columns] of w (every value is overwritten),
// reading only w's rows of the queries and log-sum-exps and w's keys. Heads are
// computed in parallel, up to GOMAXPROCS at a time, each straight into its part
// of dst.
func (q *QKReader) WindowInto(dst *tensor.Tensor, l int, w Window) error {
	H := q.info.Heads
	r0, r1, c0, c1 := w.Rows.From, w.Rows.To, w.Cols.From, w.Cols.To
	if err := q.check(l, 0, r0, r1, c0, c1); err != nil {
		return err
	}
	if err := checkWindowBuffer(dst, H, r1-r0, c1-c0); err != nil {
		return err
	}
	if err := q.load(l, qkSpan{0, H, r0, r1, c0, c1}); err != nil {
		return err
	}
	size := (r1 - r0) * (c1 - c0)
	var wg sync.WaitGroup
	next := make(chan int, H)
	for h := range H {
		next <- h
	}
	close(next)
	for range min(H, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for h := range next {
				q.tileInto(dst.Data[h*size:(h+1)*size], c1-c0, h, r0, r1, c0, c1)
			}
		})
	}
	wg.Wait()
	return nil
}

// qkScale is the recorded scale of q·k (1/√head_dim when none was recorded).
func (t *TensorsInfo) qkScale() float64 {
	if t.Scale != 0 {
		return t.Scale
	}
	return 1 / math.Sqrt(float64(t.HeadDim))
}

// qkCap soft-caps a scaled score, SoftCap·tanh(s/SoftCap) (Gemma 2's
// attn_logit_softcapping), when SoftCap > 0.
func (t *TensorsInfo) qkCap(s float64) float64 {
	if t.SoftCap > 0 {
		return t.SoftCap * math.Tanh(s/t.SoftCap)
	}
	return s
}

// qkFirstKey is the first key query i of layer l sees through its sliding
// window, i − Windows[l] + 1 (0 without a window).
func (t *TensorsInfo) qkFirstKey(l, i int) int {
	if l < len(t.Windows) && t.Windows[l] > 0 {
		return max(0, i-t.Windows[l]+1)
	}
	return 0
}
