package web

import (
	"context"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

// testCode is the prompt of the code fixture.
const testCode = `def mean(xs):
    # average of a list
    total = 0
    for x in xs:
        total += x
    return total / len(xs)

print(mean([1, 2, 3]))
`

// fixture describes one synthetic sample.
type fixture struct {
	layers, heads int
	text          string // tokenised by tokenRE; empty: n placeholder tokens
	n             int
	language      string
	dim           int // head_dim of the stored Q/K (0: no qkv.safetensors)
	dtype         checkpoint.DType
	generated     int // the last tokens are marked generated
}

var tokenRE = regexp.MustCompile(`[A-Za-z_]+|[0-9]+|\s+|.`)

// tokens cuts text into tokens with code-point offsets.
func tokens(text string) ([]string, [][2]int) {
	var toks []string
	var offs [][2]int
	runes := 0
	for _, m := range tokenRE.FindAllStringIndex(text, -1) {
		s := text[m[0]:m[1]]
		n := len([]rune(s))
		toks = append(toks, s)
		offs = append(offs, [2]int{runes, runes + n})
		runes += n
	}
	return toks, offs
}

// writeSample writes sample id of run r: attention softmax(q·k/√d) with a causal
// mask from random Q/K (kept in qkv.safetensors when f.dim > 0, in the layout of
// the Q/K/V contract: blocks.<l>.attn.hook_q|hook_k|hook_v, [heads, tokens, dim]).
func writeSample(t testing.TB, r *store.Run, id string, f fixture, seed uint64) {
	t.Helper()
	s := &store.Sample{ID: id, Text: f.text, PromptText: f.text, Language: f.language}
	if f.text != "" {
		s.Tokens, s.Offsets = tokens(f.text)
		f.n = len(s.Tokens)
	} else {
		for i := range f.n {
			s.Tokens = append(s.Tokens, "t"+strconv.Itoa(i))
		}
	}
	s.PromptLen = f.n - f.generated
	for i := s.PromptLen; i < f.n; i++ {
		s.Generated = append(s.Generated, store.GeneratedToken{Token: s.Tokens[i], Prob: 0.5})
	}
	dim := max(f.dim, 8)
	rng := rand.New(rand.NewPCG(seed, 7))
	dir := r.SampleDir(id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dt := f.dtype
	if dt == "" {
		dt = checkpoint.F32
	}
	var att, qkv []checkpoint.TensorInfo
	var attData, qkvData [][]float32
	for l := range f.layers {
		q, k := make([]float32, f.heads*f.n*dim), make([]float32, f.heads*f.n*dim)
		for i := range q {
			q[i], k[i] = float32(rng.NormFloat64()*1.5), float32(rng.NormFloat64()*1.5)
		}
		a := make([]float32, f.heads*f.n*f.n)
		for h := range f.heads {
			for i := range f.n {
				row := a[(h*f.n+i)*f.n : (h*f.n+i+1)*f.n]
				mx := math.Inf(-1)
				sc := make([]float64, i+1)
				for j := 0; j <= i; j++ {
					var dot float64
					for c := range dim {
						dot += float64(q[(h*f.n+i)*dim+c]) * float64(k[(h*f.n+j)*dim+c])
					}
					sc[j] = dot / math.Sqrt(float64(dim))
					mx = max(mx, sc[j])
				}
				var sum float64
				for j := range sc {
					sc[j] = math.Exp(sc[j] - mx)
					sum += sc[j]
				}
				for j := range sc {
					row[j] = float32(sc[j] / sum)
				}
			}
		}
		att = append(att, checkpoint.TensorInfo{Name: store.AttentionName(l), DType: dt, Shape: []int{f.heads, f.n, f.n}})
		attData = append(attData, a)
		if f.dim > 0 {
			v := make([]float32, len(q))
			for i, name := range []string{"hook_q", "hook_k", "hook_v"} {
				qkv = append(qkv, checkpoint.TensorInfo{Name: fmt.Sprintf("blocks.%d.attn.%s", l, name), DType: checkpoint.F32, Shape: []int{f.heads, f.n, dim}})
				qkvData = append(qkvData, [][]float32{q, k, v}[i])
			}
		}
	}
	if err := checkpoint.WriteSafetensors(filepath.Join(dir, store.AttentionFile), att, attData, nil); err != nil {
		t.Fatal(err)
	}
	if f.dim > 0 {
		if err := checkpoint.WriteSafetensors(filepath.Join(dir, store.QKVFile), qkv, qkvData, nil); err != nil {
			t.Fatal(err)
		}
	}
	s.Attention = &store.TensorsInfo{Layers: f.layers, Heads: f.heads, Query: f.n, Key: f.n, DType: string(dt)}
	if err := r.WriteSample(s); err != nil {
		t.Fatal(err)
	}
}

func newRun(t testing.TB, dir string) *store.Run {
	t.Helper()
	r, err := store.Create(dir, store.Meta{Kind: "capture", DType: "float32", AttentionImplementation: "eager: softmax(QK^T/sqrt(d) + causal mask)",
		Model: &store.ModelInfo{Dir: "models/tiny-gpt2", ModelType: "gpt2"}, StartTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// demoRuns writes two runs for the browser tests: "alpha" with a code sample
// (Q/K captured), a 1,500-token sample, derived outputs and a metrics table; "beta"
// with the same code prompt (for the comparison).
func demoRuns(t testing.TB, root string) (alpha, beta string) {
	t.Helper()
	alpha, beta = filepath.Join(root, "alpha"), filepath.Join(root, "beta")
	ra := newRun(t, alpha)
	writeSample(t, ra, "code", fixture{layers: 3, heads: 4, text: testCode, language: "python", dim: 16}, 1)
	writeSample(t, ra, "long", fixture{layers: 2, heads: 2, n: 1500, generated: 100}, 2)
	rb := newRun(t, beta)
	writeSample(t, rb, "code", fixture{layers: 2, heads: 3, text: testCode, language: "python"}, 3)

	// Derived outputs, with the axes their pass declares: a [layer, head] table, a
	// per-token vector, a [query, key] matrix.
	nCode := len(tokenRE.FindAllString(testCode, -1))
	for _, d := range []struct {
		pass  string
		axes  []string
		shape []int
	}{{"entropy", []string{store.AxisLayer, store.AxisHead}, []int{3, 4}}, {"received", []string{store.AxisKey}, []int{nCode}},
		{"rollout", []string{store.AxisQuery, store.AxisKey}, []int{nCode, nCode}}} {
		n := 1
		for _, s := range d.shape {
			n *= s
		}
		v := make([]float64, n)
		for i := range v {
			v[i] = math.Sin(float64(i)*0.37)*0.5 + 0.5
		}
		writeDerived(t, ra, d.pass, "code", d.axes, d.shape, v)
	}
	var rows []store.MetricRow
	for l := range 3 {
		for h := range 4 {
			rows = append(rows, store.MetricRow{Sample: "code", Pass: "entropy", Layer: int64(l), Head: int64(h), Metric: "entropy", Value: 1 + float64(l*4+h)/10})
		}
	}
	rows = append(rows, store.MetricRow{Sample: "long", Pass: "stats", Layer: 1, Head: 1, Metric: "max_weight", Value: 0.93})
	if err := store.WriteMetrics(alpha, rows); err != nil {
		t.Fatal(err)
	}
	return alpha, beta
}

// writeDerived stores the output v (shape) of pass for sample id, the pass
// declaring axes (names) in its pass.json, as derive writes it.
func writeDerived(t testing.TB, r *store.Run, pass, id string, axes []string, shape []int, v []float64) {
	t.Helper()
	ps := store.PassSettings{Function: pass, Input: "attention", Kwargs: map[string]any{}}
	for _, a := range axes {
		ps.Axes = append(ps.Axes, store.Axis{Name: a})
	}
	if err := r.PreparePass(pass, ps); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteDerived(pass, id, &tensor.Tensor{Shape: shape, Data: v}, nil); err != nil {
		t.Fatal(err)
	}
}

// startServer serves dirs on 127.0.0.1 (a real listener) and returns the base URL;
// the server stops when the test ends.
func startServer(t testing.TB, dirs ...string) (string, *Server) {
	t.Helper()
	s, err := New(dirs, Options{Log: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx, "127.0.0.1:0", func(a net.Addr) { addrc <- a }) }()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start in 10 s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop in 10 s")
		}
	})
	return "http://" + addr.String(), s
}

var client = &http.Client{Timeout: 30 * time.Second}
