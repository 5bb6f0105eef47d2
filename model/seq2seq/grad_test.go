package seq2seq

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/core/tensors"
)

func testBackend(t testing.TB) compute.Backend {
	t.Helper()
	b, err := compute.NewWithConfig("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tinyConfig(kind string) Config {
	return Config{Kind: kind, SrcVocab: 9, TrgVocab: 8, Embed: 3, Hidden: 4, Layers: 2, MaxSrcLen: 6, MaxTrgLen: 6}
}

// float64Params returns random float64 weights (scale 0.5, PAD rows too, so that
// every entry has a gradient).
func float64Params(cfg Config, seed uint64) []*tensors.Tensor {
	rng := rand.New(rand.NewPCG(seed, 1))
	var out []*tensors.Tensor
	for _, s := range cfg.Params() {
		n := 1
		for _, d := range s.Shape {
			n *= d
		}
		v := make([]float64, n)
		for i := range v {
			v[i] = rng.Float64() - 0.5
		}
		out = append(out, tensors.FromFlatDataAndDimensions(v, s.Shape...))
	}
	return out
}

// TestGradientsFiniteDifferences checks GoMLX's reverse-mode gradients of the
// teacher-forced loss (LSTM cells, bidirectional encoder, Bahdanau attention, output
// layer) against central finite differences in float64, for every kind of model.
func TestGradientsFiniteDifferences(t *testing.T) {
	backend := testBackend(t)
	src := IDMatrix([][]int{{1, 4, 5, 6, 2, 0}, {1, 7, 8, 2, 0, 0}}, 9)
	trg := IDMatrix([][]int{{1, 4, 5, 3, 2}, {1, 6, 7, 2, 0}}, 8)
	tf := tensors.FromValue([]float64{1, 1, 1, 1, 1})
	for _, kind := range []string{KindAttention, KindLSTM, KindRNN} {
		for _, mask := range []bool{false, true} {
			if mask && kind != KindAttention {
				continue
			}
			cfg := tinyConfig(kind)
			cfg.MaskPadding = mask
			params := float64Params(cfg, 7)
			np := len(params)
			lossExec := MustNewExec(backend, func(in []*Node) *Node {
				lg, _ := cfg.Forward(cfg.bind(in[:np]), in[np], in[np+1], in[np+2], nil)
				return Loss(lg, in[np+1])
			})
			gradExec := MustNewExec(backend, func(in []*Node) []*Node {
				lg, _ := cfg.Forward(cfg.bind(in[:np]), in[np], in[np+1], in[np+2], nil)
				return Gradient(Loss(lg, in[np+1]), in[:np]...)
			})
			args := func(ps []*tensors.Tensor) []any {
				a := make([]any, 0, np+3)
				for _, p := range ps {
					a = append(a, p)
				}
				return append(a, src, trg, tf)
			}
			grads := gradExec.MustExec(args(params)...)
			rng := rand.New(rand.NewPCG(3, 3))
			checked := 0
			for i, s := range cfg.Params() {
				base := tensors.MustCopyFlatData[float64](params[i])
				g := tensors.MustCopyFlatData[float64](grads[i])
				for range 3 {
					k := rng.IntN(len(base))
					eval := func(delta float64) float64 {
						v := append([]float64(nil), base...)
						v[k] += delta
						ps := append([]*tensors.Tensor(nil), params...)
						ps[i] = tensors.FromFlatDataAndDimensions(v, s.Shape...)
						return lossExec.MustExec(args(ps)...)[0].Value().(float64)
					}
					const h = 1e-6
					fd := (eval(h) - eval(-h)) / (2 * h)
					if diff := math.Abs(fd - g[k]); diff > 1e-7+1e-5*math.Abs(fd) {
						t.Errorf("%s mask=%v: d loss / d %s[%d]: autodiff %.10g, finite difference %.10g", kind, mask, s.Name, k, g[k], fd)
					}
					checked++
				}
			}
			if checked < 3*np {
				t.Fatalf("%s: checked %d entries", kind, checked)
			}
		}
	}
}
