package model

import (
	"context"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
)

// TestQKRefusals: a blockwise pass (ForwardOptions.QK) is refused with one
// error, before any graph is compiled, for scores other than q·kᵀ/√head_dim
// (GPT-Neo, Gemma 2), sliding-window layers (Mistral, Phi-3 as published) and
// options that need the materialised scores (interventions, internal hooks,
// pre-LayerNorm sums).
func TestQKRefusals(t *testing.T) {
	ctx := context.Background()
	ids := []int{5, 17, 30, 42, 7, 12, 9, 8}
	for _, c := range []struct {
		name, config string
		set          map[string]any
		want         string
	}{
		{"gpt-neo", "gpt-neo-125m.json", neo(256), "gpt_neo architecture's attention scores are not q·kᵀ/√head_dim (scale 1"},
		{"gemma2", "gemma-2-2b.json", tiny(nil), "gemma2 architecture's attention scores are not q·kᵀ/√head_dim"},
		{"mistral", "Mistral-7B-v0.1.json", tiny(map[string]any{"head_dim": 128}), "mistral model uses sliding-window attention (a window of 4096 keys on 2 of 2 layers)"},
		{"phi3", "Phi-3-mini-4k-instruct.json", tiny(map[string]any{"head_dim": 96}), "phi3 model uses sliding-window attention"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := Load(writeRandomModel(t, c.config, c.set, 1), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			_, err = m.Forward(ctx, Input{IDs: ids}, Activations{}, ForwardOptions{QK: true})
			if err == nil || !strings.Contains(err.Error(), "blockwise attention (--store qk) is not available: ") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if n := m.CompiledGraphs(); n != 0 {
				t.Errorf("%d graphs ran before the refusal", n)
			}
		})
	}
	llama, err := Load(refdata.Path(t, "models", "tiny-llama"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer llama.Close()
	bert, err := Load(refdata.Path(t, "models", "tiny-bert"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer bert.Close()
	for _, c := range []struct {
		name string
		m    Model
		opts ForwardOptions
		want string
	}{
		{"intervention", llama, ForwardOptions{QK: true, Intervention: &Intervention{Edits: []Edit{{Hook: "attn.hook_z", Op: OpZero}}}}, "interventions edit the attention scores and pattern"},
		{"internals", llama, ForwardOptions{QK: true, Internals: true}, "internal hooks hook_attn_scores and hook_z"},
		{"preln", bert, ForwardOptions{QK: true, PreLN: true}, "pre-LayerNorm sums"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := c.m.CompiledGraphs()
			_, err := c.m.Forward(ctx, Input{IDs: ids}, Activations{}, c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if n := c.m.CompiledGraphs(); n != before {
				t.Errorf("%d graphs ran before the refusal", n-before)
			}
		})
	}
}

// TestQKNewFamilies: the families added alongside blockwise attention that it
// supports (default scores, no windows) record, with QK, queries, keys and
// log-sum-exps from which exp(q·k/√head_dim − lse) (float64) equals the pattern
// a materialised pass records within 1e-5, and the materialised pass's
// queries and keys within 1e-5.
func TestQKNewFamilies(t *testing.T) {
	ctx := context.Background()
	ids := []int{5, 17, 30, 42, 7, 12, 9, 8, 60, 3, 77, 21}
	for _, c := range []struct {
		name, config string
		set          map[string]any
		causal       bool
	}{
		{"gpt-j", "gpt-j-6b.json", gptjTiny(4), true},
		{"codegen", "codegen-350M-mono.json", gptjTiny(8), true},
		{"roberta", "roberta-base.json", tiny(map[string]any{"hidden_size": 96}), false},
		{"gemma", "gemma-2b.json", tiny(nil), true},
		{"phi-2", "phi-2.json", tiny(map[string]any{"head_dim": 80}), true},
		{"phi3-no-window", "Phi-3-mini-4k-instruct.json", tiny(map[string]any{"head_dim": 96, "sliding_window": nil}), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := Load(writeRandomModel(t, c.config, c.set, 2), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			full, qk := Activations{}, Activations{}
			if _, err := m.Forward(ctx, Input{IDs: ids}, full, ForwardOptions{QKV: true}); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Forward(ctx, Input{IDs: ids}, qk, ForwardOptions{QK: true}); err != nil {
				t.Fatal(err)
			}
			n := len(ids)
			for l := range m.Config().Layers {
				p := "blocks." + strconv.Itoa(l) + ".attn."
				for _, name := range []string{"hook_q", "hook_k"} {
					if d := maxAbs(full[p+name].Data, qk[p+name].Data); d > 1e-5 {
						t.Fatalf("layer %d %s: QK pass differs from the full pass by %g", l, name, d)
					}
				}
				if _, ok := qk[p+"pattern"]; ok {
					t.Fatalf("layer %d: the QK pass recorded a pattern", l)
				}
				q, k, hi, lo := qk[p+"hook_q"], qk[p+"hook_k"], qk[p+"lse"], qk[p+"lse_lo"]
				heads, kvh, hd := q.Shape[0], k.Shape[0], q.Shape[2]
				pat := full[p+"pattern"].Data
				worst := 0.0
				for h := range heads {
					kh := h / (heads / kvh)
					for i := range n {
						lse := float64(hi.Data[h*n+i]) + float64(lo.Data[h*n+i])
						for j := range n {
							w := 0.0
							if !c.causal || j <= i {
								dot := 0.0
								for d := range hd {
									dot += float64(q.Data[(h*n+i)*hd+d]) * float64(k.Data[(kh*n+j)*hd+d])
								}
								w = math.Exp(dot/math.Sqrt(float64(hd)) - lse)
							}
							worst = max(worst, math.Abs(w-float64(pat[(h*n+i)*n+j])))
						}
					}
				}
				if worst > 1e-5 {
					t.Fatalf("layer %d: weights recomputed from the QK pass differ from the pattern by %g", l, worst)
				}
				t.Logf("layer %d: largest difference %.3g", l, worst)
			}
		})
	}
}

func maxAbs(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	worst := 0.0
	for i := range a {
		worst = max(worst, math.Abs(float64(a[i]-b[i])))
	}
	return worst
}
