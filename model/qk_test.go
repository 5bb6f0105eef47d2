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
// error, before any graph is compiled, with the options that need the
// materialised scores (interventions, internal hooks, pre-LayerNorm sums).
func TestQKRefusals(t *testing.T) {
	ctx := context.Background()
	ids := []int{5, 17, 30, 42, 7, 12, 9, 8}
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

// TestQKNewFamilies: every family added alongside blockwise attention records,
// with QK, queries, keys and log-sum-exps from which exp(s − lse) (float64; s
// = q·k·scale, soft-capped, with the scale, cap and windows of QKScores)
// equals the pattern a materialised pass records within 1e-5 — sliding
// windows shorter than the input (Mistral, Qwen2's upper layers, Phi-3,
// Gemma 2's alternate layers, GPT-Neo's local layers), GPT-Neo's unscaled
// scores, Gemma 2's query_pre_attn_scalar (a power of four and not) and
// soft-capping tight enough to bend the scores — and the materialised pass's
// queries, keys and hidden states within 1e-5 (relative to the largest
// value; hidden states of every layer and the final norm).
func TestQKNewFamilies(t *testing.T) {
	ctx := context.Background()
	ids := []int{5, 17, 30, 42, 7, 12, 9, 8, 60, 3, 77, 21}
	for _, c := range []struct {
		name, config string
		set          map[string]any
		causal       bool
		windows      int // layers with a window shorter than the input
	}{
		{"gpt-j", "gpt-j-6b.json", gptjTiny(4), true, 0},
		{"codegen", "codegen-350M-mono.json", gptjTiny(8), true, 0},
		{"roberta", "roberta-base.json", tiny(map[string]any{"hidden_size": 96}), false, 0},
		{"gemma", "gemma-2b.json", tiny(nil), true, 0},
		{"phi-2", "phi-2.json", tiny(map[string]any{"head_dim": 80}), true, 0},
		{"phi3-no-window", "Phi-3-mini-4k-instruct.json", tiny(map[string]any{"head_dim": 96, "sliding_window": nil}), true, 0},
		{"phi3-window", "Phi-3-mini-4k-instruct.json", tiny(map[string]any{"head_dim": 96, "sliding_window": 7}), true, 2},
		{"mistral-window", "Mistral-7B-v0.1.json", tiny(map[string]any{"head_dim": 128, "sliding_window": 5}), true, 2},
		{"qwen2-window-layers", "Qwen2-7B-Instruct.json", tiny(map[string]any{"head_dim": 128, "num_hidden_layers": 3, "use_sliding_window": true, "sliding_window": 4, "max_window_layers": 1}), true, 2},
		{"gpt-neo-local", "gpt-neo-125m.json", neo(5), true, 1},
		{"gemma2", "gemma-2-2b.json", tiny(nil), true, 0},
		{"gemma2-window-softcap", "gemma-2-2b.json", tiny(map[string]any{"sliding_window": 5, "num_hidden_layers": 3, "attn_logit_softcapping": 0.5}), true, 2},
		{"gemma2-scale-144", "gemma-2-2b.json", tiny(map[string]any{"sliding_window": 6, "query_pre_attn_scalar": 144, "attn_logit_softcapping": 1.0}), true, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := Load(writeRandomModel(t, c.config, c.set, 2), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			a, err := Architecture(m.Config())
			if err != nil {
				t.Fatal(err)
			}
			scale, softCap, windows := QKScores(m.Config(), a)
			n, short := len(ids), 0
			for _, w := range windows {
				if w > 0 && w < n {
					short++
				}
			}
			if short != c.windows {
				t.Fatalf("%d layers with a window shorter than %d tokens (windows %v), want %d", short, n, windows, c.windows)
			}
			full, qk := Activations{}, Activations{}
			if _, err := m.Forward(ctx, Input{IDs: ids}, full, ForwardOptions{QKV: true, Hidden: true}); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Forward(ctx, Input{IDs: ids}, qk, ForwardOptions{QK: true, Hidden: true}); err != nil {
				t.Fatal(err)
			}
			hiddenNames := []string{"embed"}
			for l := range m.Config().Layers {
				hiddenNames = append(hiddenNames, "blocks."+strconv.Itoa(l)+".hook_resid_post")
			}
			if _, ok := full["final_norm"]; ok {
				hiddenNames = append(hiddenNames, "final_norm")
			}
			for _, name := range hiddenNames {
				f, okF := full[name]
				q, okQ := qk[name]
				if !okF || !okQ {
					t.Fatalf("%s: recorded by the full pass %v, by the QK pass %v", name, okF, okQ)
				}
				top := 0.0
				for _, v := range f.Data {
					top = max(top, math.Abs(float64(v)))
				}
				if d := maxAbs(f.Data, q.Data); d > 1e-5*max(1, top) {
					t.Fatalf("%s: QK pass differs from the full pass by %g (largest value %g)", name, d, top)
				}
			}
			for l := range m.Config().Layers {
				first := func(i int) int { return 0 }
				if windows != nil && windows[l] > 0 {
					first = func(i int) int { return i - windows[l] + 1 }
				}
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
							if (!c.causal || j <= i) && j >= first(i) {
								dot := 0.0
								for d := range hd {
									dot += float64(q.Data[(h*n+i)*hd+d]) * float64(k.Data[(kh*n+j)*hd+d])
								}
								s := dot * scale
								if softCap > 0 {
									s = softCap * math.Tanh(s/softCap)
								}
								w = math.Exp(s - lse)
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
