// Package intervenebench times interventions: the overhead of a full capture
// (every attention matrix and hidden state) with an intervention hook against
// the same capture without one, and a head-ablation sweep (package
// intervene's Ablation: each head's output zeroed alone, cross-entropy and
// token accuracy on the targets) with the time per head. `attnscope bench
// intervene` is its command line.
package intervenebench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/attnscope/attnscope/internal/procstat"
	"github.com/attnscope/attnscope/intervene"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/tasks"
)

// Options configures Run.
type Options struct {
	Model   string // model folder; MakeGPT2Small writes one where it has no config.json
	Backend string // GoMLX backend config ("": model.DefaultBackend)
	// CaptureTokens is the prompt length of the capture-overhead passes and
	// Repeats the timed passes per variant (interleaved, median reported).
	CaptureTokens, Repeats int
	// Prompts random prompts of Tokens tokens are the sweep's samples (the
	// targets are the next tokens); Heads is how many heads the sweep times
	// (spread evenly over layers; 0 or ≥ layers·heads: all), the rest being
	// extrapolated and labelled so.
	Prompts, Tokens, Heads int
	Seed                   uint64
}

// MakeGPT2Small writes a GPT-2-small-shaped checkpoint (12 layers × 12 heads,
// width 768, vocabulary 50,257, 1,024 positions) with random weights
// (model.WriteRandomWeights) into dir.
func MakeGPT2Small(dir string, seed uint64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfg := `{"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_layer": 12, "n_head": 12, "n_embd": 768, "vocab_size": 50257, "n_positions": 1024, "n_ctx": 1024, "bos_token_id": 50256, "eos_token_id": 50256}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		return err
	}
	return model.WriteRandomWeights(dir, seed)
}

// Timing is the median wall and mean process CPU time of timed runs.
type Timing struct {
	Wall, CPU time.Duration
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// variant is one capture setting of the overhead table.
type variant struct {
	name string
	iv   *model.Intervention
}

// captureVariants: no intervention, one head's output zeroed in one layer
// (only that layer runs the edited graph), and the pattern of every head of
// every layer scaled (every layer edited, on the largest hook tensor).
func captureVariants(layers int) []variant {
	return []variant{
		{"no intervention", nil},
		{"hook_z zero, 1 head of layer 0", &model.Intervention{Edits: []model.Edit{{Hook: "attn.hook_z", Layers: []int{0}, Heads: []int{0}, Op: model.OpZero}}}},
		{fmt.Sprintf("hook_pattern scale, all heads × %d layers", layers), &model.Intervention{Edits: []model.Edit{{Hook: "attn.hook_pattern", Op: model.OpScale, Value: 1.5}}}},
	}
}

// sink copies every recorded tensor, as a capture hands them to its writer.
type sink struct{ buf []float32 }

func (s *sink) Record(_ string, _ []int, data []float32) error {
	s.buf = append(s.buf[:0], data...)
	return nil
}

// Run measures the capture overhead and the sweep, writing the tables to w.
func Run(ctx context.Context, w io.Writer, o Options) error {
	m, err := model.Load(o.Model, model.LoadOptions{Backend: o.Backend})
	if err != nil {
		return err
	}
	defer m.Close()
	cfg := m.Config()
	fmt.Fprintf(w, "model %s (%d layers × %d heads, width %d, vocabulary %d), backend %s\n", o.Model, cfg.Layers, cfg.Heads, cfg.Hidden, cfg.VocabSize, backendName(o.Backend))
	fmt.Fprintf(w, "load average at start: %s\n", loadAverage())
	if err := captureOverhead(ctx, w, m, o); err != nil {
		return err
	}
	if err := ablationSweep(ctx, w, m, o); err != nil {
		return err
	}
	fmt.Fprintf(w, "load average at end: %s (on a busy machine wall times are not comparable across runs; CPU time is less affected)\n", loadAverage())
	return nil
}

func backendName(b string) string {
	if b == "" {
		return model.DefaultBackend
	}
	return b
}

// randomIDs draws n token ids in [0, vocab).
func randomIDs(rng *rand.Rand, n, vocab int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = rng.IntN(vocab)
	}
	return ids
}

// captureOverhead times a full capture (attention, hidden states, Q/K/V; no
// LM head) of one prompt under each variant, interleaved so that load
// changes hit every variant alike.
func captureOverhead(ctx context.Context, w io.Writer, m model.Model, o Options) error {
	ids := randomIDs(rand.New(rand.NewPCG(o.Seed, 1)), o.CaptureTokens, m.Config().VocabSize)
	vs := captureVariants(m.Config().Layers)
	wall := make([][]time.Duration, len(vs))
	cpu := make([][]time.Duration, len(vs))
	rec := &sink{}
	for r := -1; r < o.Repeats; r++ { // r = −1: untimed warm-up (graph compilation)
		for i, v := range vs {
			c0, t0 := procstat.CPUTime(), time.Now()
			if _, err := m.Forward(ctx, model.Input{IDs: ids}, rec, model.ForwardOptions{Hidden: true, QKV: true, Intervention: v.iv}); err != nil {
				return fmt.Errorf("capture %s: %w", v.name, err)
			}
			if r >= 0 {
				wall[i] = append(wall[i], time.Since(t0))
				cpu[i] = append(cpu[i], procstat.CPUTime()-c0)
			}
		}
	}
	fmt.Fprintf(w, "\ncapture of %d tokens (attention + hidden states + Q/K/V, no LM head), median of %d interleaved passes\n", o.CaptureTokens, o.Repeats)
	fmt.Fprintf(w, "%-40s %10s %8s %10s %8s\n", "intervention", "wall ms", "ratio", "CPU ms", "ratio")
	base := Timing{median(wall[0]), median(cpu[0])}
	for i, v := range vs {
		t := Timing{median(wall[i]), median(cpu[i])}
		fmt.Fprintf(w, "%-40s %10.1f %8.3f %10.1f %8.3f\n", v.name, ms(t.Wall), ms(t.Wall)/ms(base.Wall), ms(t.CPU), ms(t.CPU)/ms(base.CPU))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// sweepHeads picks k heads spread evenly over the layers·heads grid (all when
// k ≤ 0 or k ≥ the total).
func sweepHeads(layers, heads, k int) []intervene.Head {
	total := layers * heads
	if k <= 0 || k >= total {
		k = total
	}
	var out []intervene.Head
	for i := range k {
		j := i * total / k
		out = append(out, intervene.Head{Layer: j / heads, Head: j % heads})
	}
	return out
}

// ablationSweep times intervene.Evaluate on the clean model and with each
// chosen head's output zeroed (the edit intervene.Ablation applies), on
// Prompts random prompts.
func ablationSweep(ctx context.Context, w io.Writer, m model.Model, o Options) error {
	cfg := m.Config()
	rng := rand.New(rand.NewPCG(o.Seed, 2))
	samples := make([]*tasks.Sample, o.Prompts)
	for i := range samples {
		ids := randomIDs(rng, o.Tokens+1, cfg.VocabSize)
		samples[i] = &tasks.Sample{InputIDs: ids[:o.Tokens], TargetIDs: ids[1:]}
	}
	ablate := func(h intervene.Head) *model.Intervention {
		return &model.Intervention{Edits: []model.Edit{{Hook: "attn.hook_z", Layers: []int{h.Layer}, Heads: []int{h.Head}, Op: model.OpZero}}}
	}
	timed := func(iv *model.Intervention, ss []*tasks.Sample) (Timing, intervene.Metrics, error) {
		c0, t0 := procstat.CPUTime(), time.Now()
		var edits intervene.EditsFor
		if iv != nil {
			edits = func(int, *tasks.Sample) *model.Intervention { return iv }
		}
		met, err := intervene.Evaluate(ctx, m, ss, edits, tasks.DefaultIgnoreIndex)
		return Timing{time.Since(t0), procstat.CPUTime() - c0}, met, err
	}
	// Warm-up on one prompt: compile the clean and the edited graphs.
	for _, iv := range []*model.Intervention{nil, ablate(intervene.Head{})} {
		if _, _, err := timed(iv, samples[:1]); err != nil {
			return err
		}
	}
	cleanT, clean, err := timed(nil, samples)
	if err != nil {
		return err
	}
	heads := sweepHeads(cfg.Layers, cfg.Heads, o.Heads)
	total := cfg.Layers * cfg.Heads
	fmt.Fprintf(w, "\nhead-ablation sweep: %d random prompts of %d tokens (cross-entropy on every next token, LM head on every position)\n", o.Prompts, o.Tokens)
	fmt.Fprintf(w, "clean pass: wall %.2f s, CPU %.2f s, cross-entropy %.4f\n", cleanT.Wall.Seconds(), cleanT.CPU.Seconds(), clean.CrossEntropy)
	fmt.Fprintf(w, "%-12s %10s %10s %12s\n", "head", "wall s", "CPU s", "CE gain")
	var sumW, sumC time.Duration
	for _, h := range heads {
		t, met, err := timed(ablate(h), samples)
		if err != nil {
			return fmt.Errorf("layer %d head %d: %w", h.Layer, h.Head, err)
		}
		sumW += t.Wall
		sumC += t.CPU
		fmt.Fprintf(w, "L%-2d H%-7d %10.2f %10.2f %12.3g\n", h.Layer, h.Head, t.Wall.Seconds(), t.CPU.Seconds(), clean.CrossEntropy-met.CrossEntropy)
	}
	k := len(heads)
	perW, perC := sumW/time.Duration(k), sumC/time.Duration(k)
	fmt.Fprintf(w, "time per head (mean of %d measured): wall %.2f s, CPU %.2f s; %.1f ms wall per prompt\n", k, perW.Seconds(), perC.Seconds(), ms(perW)/float64(o.Prompts))
	label := "measured"
	sweepW, sweepC := cleanT.Wall+sumW, cleanT.CPU+sumC
	if k < total {
		label = fmt.Sprintf("EXTRAPOLATED from %d of %d heads", k, total)
		sweepW, sweepC = cleanT.Wall+perW*time.Duration(total), cleanT.CPU+perC*time.Duration(total)
	}
	fmt.Fprintf(w, "full sweep (clean + %d heads), %s: wall %.1f s, CPU %.1f s\n", total, label, sweepW.Seconds(), sweepC.Seconds())
	return nil
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
