package seq2seq

import (
	"fmt"
	"math"
)

// goStep is Config.Encode and Config.Step (the graph definitions, which training uses
// and which stay the source of truth) written as plain float32 loops for decoding: a
// decoding step is a few matrix–vector products of at most TrgVocab × (3H+E), and the
// encoder's are of 4H × 2H, where a compiled graph's small matrix products cost more
// than the arithmetic. TestGoStepMatchesGraph and TestGoEncodeMatchesGraph check them
// against the graphs on every model kind.
type goStep struct {
	cfg Config
	w   map[string][]float32
	// scratch for one batch row
	q, in, z, zh, feat []float32
	e                  []float64
}

func newGoStep(cfg Config, w [][]float32) *goStep {
	s := &goStep{cfg: cfg, w: map[string][]float32{}}
	for i, p := range cfg.Params() {
		s.w[p.Name] = w[i]
	}
	H, E := cfg.Hidden, cfg.Embed
	s.q = make([]float32, H)
	s.in = make([]float32, max(E+2*H, H))
	s.z = make([]float32, cfg.gates()*H)
	s.zh = make([]float32, cfg.gates()*H)
	s.feat = make([]float32, 3*H+E)
	return s
}

// goState is the decoder state of a batch in the graph's layout: h and c are
// [Layers, B, H] (c unused by RNN models); out [B, S, 2H] and keys [B, S, H] (W_h h_j)
// are the encoder's, mask [B, S] the non-PAD source positions.
type goState struct {
	B, S      int
	h, c      []float32
	out, keys []float32
	mask      []bool
}

// step runs one decoder step for the previous tokens y [B]: it returns log p [B][V], the
// attention [B][S] (nil rows without attention) and updates st.h and st.c.
func (s *goStep) step(st *goState, y []int) (logp, att [][]float32, err error) {
	cfg := s.cfg
	H, E, L, V := cfg.Hidden, cfg.Embed, cfg.Layers, cfg.TrgVocab
	B := st.B
	logp = make([][]float32, B)
	att = make([][]float32, B)
	emb := s.w["decoder.embedding.weight"]
	for b := range B {
		if y[b] < 0 || y[b] >= V {
			return nil, nil, fmt.Errorf("seq2seq: token id %d outside the target vocabulary of %d", y[b], V)
		}
		e := emb[y[b]*E : (y[b]+1)*E]
		in := s.in[:E]
		copy(in, e)
		var ctx []float32
		if cfg.Attention() {
			att[b], ctx = s.attend(st, b, st.h[((L-1)*B+b)*H:((L-1)*B+b+1)*H])
			in = append(in, ctx...)
		}
		for l := range L {
			p := fmt.Sprintf("decoder.rnn.%%s_l%d", l)
			h := st.h[(l*B+b)*H : (l*B+b+1)*H]
			var c []float32
			if cfg.Kind != KindRNN {
				c = st.c[(l*B+b)*H : (l*B+b+1)*H]
			}
			s.cell(p, in, h, c)
			in = s.in[:H]
			copy(in, h)
		}
		feat := append(append(append(s.feat[:0], in...), ctx...), e...)
		lg := make([]float32, V)
		matVec(lg, s.w["decoder.fc_out.weight"], feat)
		addTo(lg, s.w["decoder.fc_out.bias"])
		logSoftmax(lg)
		logp[b] = lg
	}
	return logp, att, nil
}

// cell is Config.cell for the weights named by p (a format with one %s for
// weight_ih, …): it updates h and c (nil for RNN) in place from the input x.
func (s *goStep) cell(p string, x, h, c []float32) {
	H := s.cfg.Hidden
	z, zh := s.z, s.zh
	matVec(z, s.w[fmt.Sprintf(p, "weight_ih")], x)
	addTo(z, s.w[fmt.Sprintf(p, "bias_ih")])
	matVec(zh, s.w[fmt.Sprintf(p, "weight_hh")], h)
	addTo(zh, s.w[fmt.Sprintf(p, "bias_hh")])
	addTo(z, zh)
	if c == nil {
		for k := range H {
			h[k] = float32(math.Tanh(float64(z[k])))
		}
		return
	}
	for k := range H {
		ig, fg := sigmoid(z[k]), sigmoid(z[H+k])
		gg, og := float32(math.Tanh(float64(z[2*H+k]))), sigmoid(z[3*H+k])
		c[k] = fg*c[k] + ig*gg
		h[k] = og * float32(math.Tanh(float64(c[k])))
	}
}

// encode is Config.Encode (without dropout) of a padded source batch: the encoder
// outputs, the attention keys (the outputs themselves without attention, as the graph
// decoder takes them), the decoder's initial state (c = h for RNN models) and the mask.
func (s *goStep) encode(src [][]int) goState {
	cfg := s.cfg
	H, E, L := cfg.Hidden, cfg.Embed, cfg.Layers
	B, S := len(src), len(src[0])
	st := goState{B: B, S: S, h: make([]float32, L*B*H), c: make([]float32, L*B*H)}
	emb := s.w["encoder.embedding.weight"]
	xs := make([]float32, S*max(E, 2*H)) // one row's layer input, [S, in]
	next := make([]float32, S*2*H)
	st.out = make([]float32, B*S*2*H)
	cat := make([]float32, 2*H)
	for b, row := range src {
		in := E
		for t, id := range row {
			st.mask = append(st.mask, id != 0)
			if id < 0 || id >= cfg.SrcVocab {
				id = 3 // as IDMatrix
			}
			copy(xs[t*E:(t+1)*E], emb[id*E:(id+1)*E])
		}
		for l := range L {
			var last [2][2][]float32 // [dir]{h, c}
			for dir, sfx := range []string{"", "_reverse"} {
				p := fmt.Sprintf("encoder.rnn.%%s_l%d%s", l, sfx)
				h, c := make([]float32, H), make([]float32, H)
				if cfg.Kind == KindRNN {
					c = nil
				}
				for k := range S {
					t := k
					if dir == 1 {
						t = S - 1 - k
					}
					s.cell(p, xs[t*in:(t+1)*in], h, c)
					copy(next[t*2*H+dir*H:t*2*H+(dir+1)*H], h)
				}
				last[dir] = [2][]float32{h, c}
			}
			for k, name := range []string{"encoder.fc_hidden", "encoder.fc_cell"} {
				dst := st.h[(l*B+b)*H : (l*B+b+1)*H]
				if k == 1 {
					if cfg.Kind == KindRNN {
						copy(st.c[(l*B+b)*H:(l*B+b+1)*H], dst)
						break
					}
					dst = st.c[(l*B+b)*H : (l*B+b+1)*H]
				}
				copy(cat, last[0][k])
				copy(cat[H:], last[1][k])
				matVec(dst, s.w[name+".weight"], cat)
				addTo(dst, s.w[name+".bias"])
				for j := range dst {
					dst[j] = float32(math.Tanh(float64(dst[j])))
				}
			}
			in = 2 * H
			copy(xs, next[:S*in])
		}
		copy(st.out[b*S*2*H:(b+1)*S*2*H], xs[:S*2*H])
	}
	st.keys = st.out
	if cfg.Attention() {
		st.keys = make([]float32, B*S*H)
		Wh := s.w["decoder.attention.W_h.weight"]
		for j := range B * S {
			matVec(st.keys[j*H:(j+1)*H], Wh, st.out[j*2*H:(j+1)*2*H])
		}
	}
	return st
}

// attend is Config.Attend for batch row b and the top layer's state top [H].
func (s *goStep) attend(st *goState, b int, top []float32) (a, ctx []float32) {
	H, S := s.cfg.Hidden, st.S
	matVec(s.q, s.w["decoder.attention.W_s.weight"], top)
	v := s.w["decoder.attention.v.weight"]
	if cap(s.e) < S {
		s.e = make([]float64, S)
	}
	e := s.e[:S]
	mx := math.Inf(-1)
	for j := range S {
		keys := st.keys[(b*S+j)*H : (b*S+j+1)*H]
		sum := float32(0)
		for k := range H {
			sum += v[k] * float32(math.Tanh(float64(s.q[k]+keys[k])))
		}
		e[j] = float64(sum)
		if (!s.cfg.MaskPadding || st.mask[b*S+j]) && e[j] > mx {
			mx = e[j]
		}
	}
	a = make([]float32, S)
	total := 0.0
	for j := range S {
		if s.cfg.MaskPadding && !st.mask[b*S+j] {
			e[j] = 0
			continue
		}
		e[j] = math.Exp(e[j] - mx)
		total += e[j]
	}
	ctx = make([]float32, 2*H)
	for j := range S {
		a[j] = float32(e[j] / total)
		out := st.out[(b*S+j)*2*H : (b*S+j+1)*2*H]
		for k := range ctx {
			ctx[k] += a[j] * out[k]
		}
	}
	return a, ctx
}

func sigmoid(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }

func addTo(dst, x []float32) {
	for i := range dst {
		dst[i] += x[i]
	}
}

// logSoftmax replaces x by x − max − log Σ exp(x − max).
func logSoftmax(x []float32) {
	mx := x[0]
	for _, v := range x {
		mx = max(mx, v)
	}
	sum := 0.0
	for _, v := range x {
		sum += math.Exp(float64(v - mx))
	}
	lse := mx + float32(math.Log(sum))
	for i := range x {
		x[i] -= lse
	}
}

// matVec sets dst[o] = Σ_i W[o, i] x[i] for W [len(dst), len(x)] row-major.
func matVec(dst, W, x []float32) {
	n := len(x)
	for o := range dst {
		dst[o] = dot(W[o*n:(o+1)*n], x)
	}
}

// dotScalar is a dot product in four float32 partial sums.
func dotScalar(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}
