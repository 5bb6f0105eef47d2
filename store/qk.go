package store

import (
	"errors"
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
// masked: j > i for causal models, j ≤ i − Windows[l] in sliding-window layers. One layer's q, k and lse are kept in memory, loaded
// when a tile of another layer is asked for. Not safe for concurrent use.
type QKReader struct {
	st    *checkpoint.Safetensors
	info  TensorsInfo
	layer int
	q     []float32
	k64   []float64 // keys as float64
	lse   []float64 // lse + lse_lo
}

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

func (q *QKReader) load(l int) error {
	if q.layer == l {
		return nil
	}
	n, hd := q.info.Tokens, q.info.HeadDim
	read := func(name string, want []int) ([]float32, error) {
		data, shape, err := q.st.Float32(name)
		if err != nil {
			return nil, err
		}
		if fmt.Sprint(shape) != fmt.Sprint(want) {
			return nil, fmt.Errorf("read %s: tensor %q has shape %v, %v expected", q.st.Path(), name, shape, want)
		}
		return data, nil
	}
	var err error
	q.layer = -1
	if q.q, err = read(QName(l), []int{q.info.Heads, n, hd}); err != nil {
		return err
	}
	k, err := read(KName(l), []int{q.info.KVHeads, n, hd})
	if err != nil {
		return err
	}
	q.k64 = make([]float64, len(k))
	for i, v := range k {
		q.k64[i] = float64(v)
	}
	hi, err := read(LSEName(l), []int{q.info.Heads, n})
	if err != nil {
		return err
	}
	lo, err := read(LSELoName(l), []int{q.info.Heads, n})
	if err != nil {
		return err
	}
	q.lse = make([]float64, len(hi))
	for i := range hi {
		q.lse[i] = float64(hi[i]) + float64(lo[i])
	}
	q.layer = l
	return nil
}

// Tile returns rows [r0, r1) × columns [c0, c1) of layer l, head h's attention
// as a [r1−r0, c1−c0] tensor. A tile outside the [tokens, tokens] matrix (or an
// empty one, or a layer or head that does not exist) is an error.
func (q *QKReader) Tile(l, h, r0, r1, c0, c1 int) (*tensor.Tensor, error) {
	n := q.info.Tokens
	switch {
	case l < 0 || l >= q.info.Layers:
		return nil, fmt.Errorf("tile: layer %d is outside the sample's %d layers", l, q.info.Layers)
	case h < 0 || h >= q.info.Heads:
		return nil, fmt.Errorf("tile: head %d is outside the layer's %d heads", h, q.info.Heads)
	case r0 < 0 || r1 > n || r0 >= r1:
		return nil, fmt.Errorf("tile: rows [%d, %d) are not a non-empty range inside the %d×%d attention matrix", r0, r1, n, n)
	case c0 < 0 || c1 > n || c0 >= c1:
		return nil, fmt.Errorf("tile: columns [%d, %d) are not a non-empty range inside the %d×%d attention matrix", c0, c1, n, n)
	}
	if err := q.load(l); err != nil {
		return nil, err
	}
	hd := q.info.HeadDim
	kh := h / (q.info.Heads / q.info.KVHeads)
	scale := q.info.qkScale()
	out := tensor.New(r1-r0, c1-c0)
	qi := make([]float64, hd)
	for i := r0; i < r1; i++ {
		for d, v := range q.q[(h*n+i)*hd : (h*n+i+1)*hd] {
			qi[d] = float64(v)
		}
		lse := q.lse[h*n+i]
		row := out.Data[(i-r0)*(c1-c0) : (i-r0+1)*(c1-c0)]
		end := c1
		if q.info.Causal {
			end = min(c1, i+1)
		}
		for j := max(c0, q.info.qkFirstKey(l, i)); j < end; j++ {
			row[j-c0] = math.Exp(q.info.qkCap(dot64(qi, q.k64[(kh*n+j)*hd:(kh*n+j+1)*hd])*scale) - lse)
		}
	}
	return out, nil
}

// dot64 is Σ a_d·b_d in float64, four accumulators.
func dot64(a, b []float64) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	d := 0
	for ; d+4 <= len(a); d += 4 {
		s0 += a[d] * b[d]
		s1 += a[d+1] * b[d+1]
		s2 += a[d+2] * b[d+2]
		s3 += a[d+3] * b[d+3]
	}
	for ; d < len(a); d++ {
		s0 += a[d] * b[d]
	}
	return (s0 + s1) + (s2 + s3)
}

// ExactRow returns row i of layer l, head h, [tokens], with the normaliser summed
// in float64 over the whole row instead of the stored log-sum-exp: O(tokens ·
// head_dim) per row, the float64 reference Tile is checked against.
func (q *QKReader) ExactRow(l, h, i int) ([]float64, error) {
	if err := q.load(l); err != nil {
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
			dot += float64(q.q[(h*n+i)*hd+d]) * q.k64[(kh*n+j)*hd+d]
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
	for h := range info.Heads {
		t, err := q.Tile(l, h, 0, n, 0, n)
		if err != nil {
			return nil, err
		}
		copy(out.Data[h*n*n:], t.Data)
	}
	return out, nil
}

// Rows returns rows [r0, r1) of every head of layer l, [heads, r1−r0, tokens].
func (q *QKReader) Rows(l, r0, r1 int) (*tensor.Tensor, error) {
	n := q.info.Tokens
	out := tensor.New(q.info.Heads, r1-r0, n)
	if _, err := q.Tile(l, 0, r0, r1, 0, 1); err != nil { // checks the range, loads the layer
		return nil, err
	}
	errs := make([]error, q.info.Heads)
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for h := range q.info.Heads {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			t, err := q.Tile(l, h, r0, r1, 0, n)
			if err != nil {
				errs[h] = err
				return
			}
			copy(out.Data[h*(r1-r0)*n:], t.Data)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
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
