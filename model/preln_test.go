package model

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/refdata"
)

// layerNorm64 is torch.nn.LayerNorm over one row in float64.
func layerNorm64(x []float32, g, b []float32, eps float64) []float64 {
	mean := 0.0
	for _, v := range x {
		mean += float64(v)
	}
	mean /= float64(len(x))
	vr := 0.0
	for _, v := range x {
		vr += (float64(v) - mean) * (float64(v) - mean)
	}
	vr /= float64(len(x))
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = (float64(v)-mean)/math.Sqrt(vr+eps)*float64(g[i]) + float64(b[i])
	}
	return out
}

// TestBertPreLNHooks checks the recorded pre-LayerNorm residual sums of BERT
// against PyTorch's hidden states and an independent float64 evaluation of the
// feed-forward sub-layer: with a = hook_attn_preln and m = hook_mlp_preln of
// layer l, x = LN1(a) and m − x = W₂·gelu(W₁x + b₁) + b₂, and LN2(m) equals
// the reference hidden_states[l+1].
func TestBertPreLNHooks(t *testing.T) {
	for _, name := range []string{"tiny-bert", "code-bert-mini"} {
		t.Run(name, func(t *testing.T) {
			dir := refdata.Path(t, "models", name)
			m, err := Load(dir, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ref := loadRef(t, dir)
			w, err := checkpoint.OpenWeights(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			idsRaw, _, err := ref.Int64("case0.input_ids")
			if err != nil {
				t.Fatal(err)
			}
			ids := toInts(idsRaw)
			rec := newMemRecorder()
			if _, err := m.Forward(context.Background(), Input{IDs: ids}, rec, ForwardOptions{PreLN: true}); err != nil {
				t.Fatal(err)
			}
			cfg := m.Config()
			n, d, mm := len(ids), cfg.Hidden, cfg.Intermediate
			hs, _ := mustF32(t, ref, "case0.hidden_states")
			get := func(suffix string, l int, shape ...int) []float32 {
				v, err := w.Float32(fmt.Sprintf("bert.encoder.layer.%d.%s", l, suffix), shape)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			var worstOut, worstFFN float64
			for l := range cfg.Layers {
				a := rec.t[fmt.Sprintf("blocks.%d.hook_attn_preln", l)]
				mv := rec.t[fmt.Sprintf("blocks.%d.hook_mlp_preln", l)]
				if len(a) != n*d || len(mv) != n*d {
					t.Fatalf("layer %d: hooks have %d and %d values, want %d", l, len(a), len(mv), n*d)
				}
				g1, b1 := get("attention.output.LayerNorm.weight", l, d), get("attention.output.LayerNorm.bias", l, d)
				g2, b2 := get("output.LayerNorm.weight", l, d), get("output.LayerNorm.bias", l, d)
				up, upb := get("intermediate.dense.weight", l, mm, d), get("intermediate.dense.bias", l, mm)
				down, downb := get("output.dense.weight", l, d, mm), get("output.dense.bias", l, d)
				for i := range n {
					y := layerNorm64(mv[i*d:(i+1)*d], g2, b2, cfg.NormEps)
					for k := range d {
						worstOut = math.Max(worstOut, math.Abs(y[k]-float64(hs[((l+1)*n+i)*d+k])))
					}
					x := layerNorm64(a[i*d:(i+1)*d], g1, b1, cfg.NormEps)
					h := make([]float64, mm)
					for j := range mm {
						s := float64(upb[j])
						for k := range d {
							s += float64(up[j*d+k]) * x[k]
						}
						h[j] = 0.5 * s * (1 + math.Erf(s/math.Sqrt2))
					}
					for k := range d {
						s := float64(downb[k])
						for j := range mm {
							s += float64(down[k*mm+j]) * h[j]
						}
						worstFFN = math.Max(worstFFN, math.Abs(float64(mv[i*d+k])-x[k]-s))
					}
				}
			}
			t.Logf("%s: LN2(mlp_preln) vs reference hidden %.2g; mlp_preln − LN1(attn_preln) vs float64 FFN %.2g", name, worstOut, worstFFN)
			if worstOut > 1e-4 || worstFFN > 1e-4 {
				t.Errorf("pre-LayerNorm sums disagree: output %.3g, FFN %.3g (tolerance 1e-4)", worstOut, worstFFN)
			}
		})
	}
}

// TestPreLNRefusedForPreNorm: a pre-norm family has no such hook; asking is an error.
func TestPreLNRefusedForPreNorm(t *testing.T) {
	m, err := Load(refdata.Path(t, "models", "tiny-gpt2"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	_, err = m.Forward(context.Background(), Input{IDs: []int{1, 2, 3}}, newMemRecorder(), ForwardOptions{PreLN: true})
	if err == nil {
		t.Fatal("PreLN on GPT-2 succeeded")
	}
}
