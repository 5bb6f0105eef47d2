package report

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

// memRun is an in-memory Run for tests: causal softmax attention of random logits and
// optional hidden states.
type memRun struct {
	dir     string
	prov    map[string]any
	samples []*store.Sample
	att     map[string][]*tensor.Tensor
	hidden  map[string]map[string]*tensor.Tensor
	metrics []store.MetricRow
	reads   int // attention layers read
	passes  []store.PassInfo
	derived map[string]map[string]*tensor.Tensor // pass → sample → output
	outs    []store.RunOutputInfo                // run-level outputs
	outData map[string]*tensor.Tensor
}

func (r *memRun) Dir() string                              { return r.dir }
func (r *memRun) Provenance() (map[string]any, error)      { return r.prov, nil }
func (r *memRun) Metrics() ([]store.MetricRow, error)      { return r.metrics, nil }
func (r *memRun) NumLayers(id string) (int, error)         { return len(r.att[id]), nil }
func (r *memRun) DerivedPasses() ([]store.PassInfo, error) { return r.passes, nil }
func (r *memRun) HasDerived(pass, id string) bool          { return r.derived[pass][id] != nil }
func (r *memRun) Derived(pass, id string) (*tensor.Tensor, error) {
	if t := r.derived[pass][id]; t != nil {
		return t, nil
	}
	return nil, fmt.Errorf("no pass %s", pass)
}

// addDerived records a derive pass's output for a sample.
func (r *memRun) addDerived(pass, id string, t *tensor.Tensor, axes ...string) {
	if r.derived[pass] == nil {
		if r.derived == nil {
			r.derived = map[string]map[string]*tensor.Tensor{}
		}
		r.derived[pass] = map[string]*tensor.Tensor{}
		info := store.PassInfo{Name: pass, PassSettings: store.PassSettings{Function: pass}}
		for _, a := range axes {
			info.Axes = append(info.Axes, store.Axis{Name: a})
		}
		r.passes = append(r.passes, info)
	}
	r.derived[pass][id] = t
}

func (r *memRun) Samples() ([]string, error) {
	var ids []string
	for _, s := range r.samples {
		ids = append(ids, s.ID)
	}
	return ids, nil
}

func (r *memRun) Sample(id string) (*store.Sample, error) {
	for _, s := range r.samples {
		if s.ID == id {
			return s, nil
		}
	}
	return nil, fmt.Errorf("run %s: no sample %q", r.dir, id)
}

func (r *memRun) AttentionLayer(id string, l int) (*tensor.Tensor, error) {
	r.reads++
	return r.att[id][l], nil
}

func (r *memRun) Hidden(id, name string) (*tensor.Tensor, error) {
	h, ok := r.hidden[id][name]
	if !ok {
		return nil, fmt.Errorf("sample %s: hidden state %s: %w", id, name, ErrNotCaptured)
	}
	return h, nil
}

// newMemRun builds a run with one sample of the given text split into tokens at
// spaces and newlines (a word-level stand-in for BPE with character offsets), L layers
// and H heads, hidden states of width D when D > 0.
func newMemRun(text string, L, H, D int, promptLen int) *memRun {
	var toks []string
	var offs [][2]int
	rs := []rune(text)
	start := 0
	for i := 0; i <= len(rs); i++ {
		if i == len(rs) || rs[i] == ' ' || rs[i] == '\n' {
			if i > start {
				toks = append(toks, string(rs[start:i]))
				offs = append(offs, [2]int{start, i})
			}
			if i < len(rs) {
				toks = append(toks, string(rs[i]))
				offs = append(offs, [2]int{i, i + 1})
			}
			start = i + 1
		}
	}
	n := len(toks)
	r := &memRun{dir: "/runs/mem", prov: map[string]any{"model": "tiny-gpt2", "seed": 1.0, "config": map[string]any{"n_layer": L}},
		att: map[string][]*tensor.Tensor{}, hidden: map[string]map[string]*tensor.Tensor{}}
	s := &store.Sample{ID: "s0", Text: text, Tokens: toks, Offsets: offs, PromptLen: promptLen, Language: "python"}
	r.samples = append(r.samples, s)
	rng := rand.New(rand.NewPCG(1, 2))
	for range L {
		a := tensor.New(H, n, n)
		for h := range H {
			for i := range n {
				row := a.Data[(h*n+i)*n : (h*n+i+1)*n]
				sum := 0.0
				for j := 0; j <= i; j++ {
					v := math.Exp(2 * rng.NormFloat64())
					row[j] = float64(float32(v))
					sum += v
				}
				for j := 0; j <= i; j++ {
					row[j] = float64(float32(row[j] / sum))
				}
			}
		}
		r.att["s0"] = append(r.att["s0"], a)
	}
	if D > 0 {
		hs := map[string]*tensor.Tensor{}
		mk := func(scale float64) *tensor.Tensor {
			h := tensor.New(n, D)
			for i := range h.Data {
				h.Data[i] = float64(float32(scale * rng.NormFloat64()))
			}
			return h
		}
		hs["embed"] = mk(1)
		for l := range L {
			hs[fmt.Sprintf("blocks.%d.hook_resid_post", l)] = mk(1 + 0.5*float64(l+1))
		}
		r.hidden["s0"] = hs
	}
	for l := range L {
		for h := range H {
			r.metrics = append(r.metrics, store.MetricRow{Sample: "s0", Pass: "entropy", Layer: int64(l), Head: int64(h), Metric: "mean_row_entropy", Value: 1 + 0.1*float64(l*H+h)})
		}
		r.metrics = append(r.metrics, store.MetricRow{Sample: "s0", Pass: "js", Layer: int64(l), Head: store.MetricAll, Metric: "head_diversity", Value: 0.3 + 0.01*float64(l)})
	}
	return r
}

func nan() float64 { return math.NaN() }

func (r *memRun) RunOutputs() ([]store.RunOutputInfo, error) { return r.outs, nil }

func (r *memRun) RunOutput(name string) (store.RunOutputInfo, *tensor.Tensor, error) {
	for _, o := range r.outs {
		if o.Name == name {
			return o, r.outData[name], nil
		}
	}
	return store.RunOutputInfo{}, nil, fmt.Errorf("in-memory run: no run output %q", name)
}

// addRunOutput records a run-level output.
func (r *memRun) addRunOutput(name string, t *tensor.Tensor, axes ...store.Axis) {
	r.outs = append(r.outs, store.RunOutputInfo{Name: name, PassSettings: store.PassSettings{Function: "test", Axes: axes}, Shape: t.Shape})
	if r.outData == nil {
		r.outData = map[string]*tensor.Tensor{}
	}
	r.outData[name] = t
}
