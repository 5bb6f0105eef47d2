package derive

import (
	"time"
)

// PassEvent reports one pass on one sample, when it starts (Done false) and when it
// finishes or is found already done (Done true).
type PassEvent struct {
	Pass, Function, Sample string
	Done                   bool
	Skipped                bool          // Done: the output existed, nothing was computed
	Elapsed                time.Duration // Done: time the pass took on the sample
	// Expected is the cost model's time for the pass on this sample (ExpectedTime), set at
	// the start of the passes that have one; Layers, Heads and Tokens are the sizes used.
	Expected              time.Duration
	Layers, Heads, Tokens int
}

// costModels holds, for the passes whose cost grows fast with the number of tokens N, the
// time per unit of their asymptotic cost, measured on the 2-core development machine
// (one sample, GOMAXPROCS 2): attention flow, one max-flow per (token, layer ≥ 3, input
// token), ≈ (L−2)·N⁴ (BenchmarkFlowFourLayer: L = 4, N = 456, 26 CPU-s on one thread
// under load since the bitset Dinic); head collapse, N²/2 row
// pairs of N elements per head, ≈ L·H·N³ (BenchmarkHeadCollapse: 12 × 12 heads, N = 450);
// follow-up attention over all layer pairs, ≈ L²·N³ (BenchmarkFollowup: L = 12, N = 1000).
// They are rough (±2×): enough to warn that a pass will take minutes.
var costModels = map[string]func(L, H, N float64) float64{
	"compute_attention_flow_from_tensor": func(L, H, N float64) float64 { return 1.5e-10 * max(L-2, 0) * N * N * N * N },
	"attention_flow_values":              func(L, H, N float64) float64 { return 1.5e-10 * max(L-2, 0) * N * N * N * N },
	"head_collapse":                      func(L, H, N float64) float64 { return 4e-10 * L * H * N * N * N },
	"compute_followup_attention":         func(L, H, N float64) float64 { return 2.5e-11 * L * L * N * N * N },
	"compute_followup_attention_all_layers": func(L, H, N float64) float64 {
		return 2.5e-11 * L * L * N * N * N
	},
	"compute_followup_attention_scaled": func(L, H, N float64) float64 { return 2.5e-11 * L * L * N * N * N },
}

// ExpectedTime is the cost model's time for function on a sample of L layers, H heads
// and N tokens; ok is false for functions without a model (linear or quadratic in N).
func ExpectedTime(function string, L, H, N int) (d time.Duration, ok bool) {
	f, ok := costModels[function]
	if !ok {
		return 0, false
	}
	return time.Duration(f(float64(L), float64(H), float64(N)) * float64(time.Second)), true
}

// startEvent is the event of pass p starting on sample, with the cost model's expected
// time when the pass has one and reads the attention (sizes from layer 0; a sample that
// cannot be read gets no estimate, and the pass reports the error).
func startEvent(att *sampleAttention, p *PassConfig, sample string) PassEvent {
	ev := PassEvent{Pass: p.Name, Function: p.Function, Sample: sample}
	if _, ok := costModels[p.Function]; !ok || p.Input != InputAttention {
		return ev
	}
	L, err := att.numLayers()
	if err != nil || L == 0 {
		return ev
	}
	t, err := att.layer(0)
	if err != nil || len(t.Shape) < 3 {
		return ev
	}
	H, N := t.Shape[len(t.Shape)-3], t.Shape[len(t.Shape)-1] // a layer is [head, query, key]
	ev.Layers, ev.Heads, ev.Tokens = L, H, N
	ev.Expected, _ = ExpectedTime(p.Function, L, H, N)
	return ev
}
