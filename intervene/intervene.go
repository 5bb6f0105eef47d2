// Package intervene runs experiments that edit attention during the forward
// pass (model.Intervention) on AttentionSpan task samples: the attention
// reinforcement of AttentionSpan's notebooks (+1 on the labelled cells of
// chosen heads whose probability passes a threshold, without renormalising,
// and its controls: zeroing, Gaussian noise, random extra cells), the ranking
// of heads by the gain it brings, and head-ablation sweeps (Michel et al.
// 2019, "Are Sixteen Heads Really Better than One?").
//
// Metrics are AttentionSpan's: the mean cross-entropy −log softmax(logits)[target]
// over the positions whose target is not the ignore index, and the token
// accuracy (argmax = target) over the same positions.
package intervene

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/tasks"
)

// Metrics are the scores of a set of samples.
type Metrics struct {
	CrossEntropy  float64 `json:"cross_entropy"`  // mean over scored tokens (nats)
	TokenAccuracy float64 `json:"token_accuracy"` // fraction of scored tokens predicted right
	Tokens        int     `json:"tokens"`         // scored tokens
}

// EditsFor returns the intervention of sample i (nil: none).
type EditsFor func(i int, s *tasks.Sample) *model.Intervention

// Evaluate runs every sample once (teacher-forced) with its intervention and
// returns the metrics over the tokens whose target is not ignore.
func Evaluate(ctx context.Context, m model.Model, samples []*tasks.Sample, edits EditsFor, ignore int) (Metrics, error) {
	var ce float64
	var right, n int
	for i, s := range samples {
		var iv *model.Intervention
		if edits != nil {
			iv = edits(i, s)
		}
		out, err := m.Forward(ctx, model.Input{IDs: s.InputIDs}, nil, model.ForwardOptions{Logits: model.LogitsAll, Intervention: iv})
		if err != nil {
			return Metrics{}, fmt.Errorf("sample %d: %w", i, err)
		}
		v := out.LogitsShape[1]
		for p, t := range s.TargetIDs {
			if t == ignore {
				continue
			}
			row := out.Logits[p*v : (p+1)*v]
			c, ok := crossEntropy(row, t)
			ce += c
			if ok {
				right++
			}
			n++
		}
	}
	if n == 0 {
		return Metrics{}, fmt.Errorf("no scored tokens in %d samples", len(samples))
	}
	return Metrics{CrossEntropy: ce / float64(n), TokenAccuracy: float64(right) / float64(n), Tokens: n}, nil
}

// crossEntropy is −log softmax(row)[t] in float64 and whether t is the argmax
// (the first maximum, as torch.argmax).
func crossEntropy(row []float32, t int) (float64, bool) {
	best := 0
	mx := math.Inf(-1)
	for j, x := range row {
		if float64(x) > mx {
			mx, best = float64(x), j
		}
	}
	var sum float64
	for _, x := range row {
		sum += math.Exp(float64(x) - mx)
	}
	return -(float64(row[t]) - mx - math.Log(sum)), best == t
}

// Variant is one of AttentionSpan's attention edits on the labelled cells.
type Variant string

// The variants of the reinforcement experiment.
const (
	Reinforce Variant = "reinforce" // +Value on labelled cells with p ≥ Threshold, no renormalisation
	Zero      Variant = "zero"      // labelled cells set to 0
	Noise     Variant = "noise"     // N(0, Value²) added to the labelled cells
	Random    Variant = "random"    // +Value on as many random unlabelled causal cells per row (control)
)

// Variants lists the variants.
var Variants = []Variant{Reinforce, Zero, Noise, Random}

// Head is one attention head.
type Head struct{ Layer, Head int }

// Setting is one reinforcement experiment.
type Setting struct {
	Variant   Variant
	Heads     []Head  // heads edited at blocks.<l>.attn.hook_pattern
	Threshold float64 // Reinforce: only cells whose probability is ≥ it (0: all)
	Value     float64 // Reinforce, Random: added value (AttentionSpan: 1); Noise: std
	Seed      uint64  // Noise, Random
}

// labelled returns the (query, key) cells whose label is 1, inside the sample's n inputs.
func labelled(s *tasks.Sample) [][2]int {
	if s.Labels == nil {
		return nil
	}
	n := min(s.Labels.N, len(s.InputIDs))
	var out [][2]int
	for r := range n {
		for c := range n {
			if s.Labels.At(r, c) == 1 {
				out = append(out, [2]int{r, c})
			}
		}
	}
	return out
}

// Edits returns the setting as an EditsFor.
func (st Setting) Edits() EditsFor {
	return func(i int, s *tasks.Sample) *model.Intervention {
		cells := labelled(s)
		if st.Variant == Random {
			cells = randomCells(s, cells, st.Seed+uint64(i))
		}
		if len(cells) == 0 {
			return nil
		}
		iv := &model.Intervention{}
		for _, h := range st.Heads {
			e := model.Edit{Hook: "attn.hook_pattern", Layers: []int{h.Layer}, Heads: []int{h.Head}, Cells: cells}
			switch st.Variant {
			case Reinforce, Random:
				e.Op, e.Value = model.OpAdd, st.Value
				if st.Variant == Reinforce && st.Threshold > 0 {
					thr := st.Threshold
					e.Threshold = &thr
				}
			case Zero:
				e.Op = model.OpZero
			case Noise:
				e.Op, e.Value, e.Seed = model.OpNoise, st.Value, st.Seed+uint64(i)
			}
			iv.Edits = append(iv.Edits, e)
		}
		return iv
	}
}

// randomCells draws, for each row holding labelled cells, as many causal
// (key ≤ query) unlabelled cells of that row at random.
func randomCells(s *tasks.Sample, lab [][2]int, seed uint64) [][2]int {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	perRow := map[int]int{}
	isLab := map[[2]int]bool{}
	for _, c := range lab {
		perRow[c[0]]++
		isLab[c] = true
	}
	rows := make([]int, 0, len(perRow))
	for r := range perRow {
		rows = append(rows, r)
	}
	sort.Ints(rows)
	var out [][2]int
	for _, r := range rows {
		var free []int
		for c := 0; c <= r; c++ {
			if !isLab[[2]int{r, c}] {
				free = append(free, c)
			}
		}
		rng.Shuffle(len(free), func(a, b int) { free[a], free[b] = free[b], free[a] })
		for _, c := range free[:min(perRow[r], len(free))] {
			out = append(out, [2]int{r, c})
		}
	}
	return out
}

// HeadResult is one head's effect: the metrics with the edit and the gain over
// the clean run (cross-entropy decrease, accuracy increase).
type HeadResult struct {
	Head
	Metrics
	CEGain  float64 `json:"ce_gain"`  // clean CE − edited CE (positive: the edit helps)
	AccGain float64 `json:"acc_gain"` // edited accuracy − clean accuracy
}

// PerHead runs the setting on each head alone (st.Heads is ignored) over
// layers × heads, and returns the results ranked by CEGain, best first, with
// the clean metrics. progress (nil: none) hears of each head done.
func PerHead(ctx context.Context, m model.Model, samples []*tasks.Sample, ignore int, st Setting, progress func(done, total int)) (clean Metrics, ranked []HeadResult, err error) {
	one := func(h Head) EditsFor { s := st; s.Heads = []Head{h}; return s.Edits() }
	return sweep(ctx, m, samples, ignore, one, progress)
}

// Ablation zeroes each head's output (blocks.<l>.attn.hook_z) alone and returns
// the results ranked by CEGain (the least harmful first: ablating an important
// head gives a large negative gain).
func Ablation(ctx context.Context, m model.Model, samples []*tasks.Sample, ignore int, progress func(done, total int)) (clean Metrics, ranked []HeadResult, err error) {
	one := func(h Head) EditsFor {
		iv := &model.Intervention{Edits: []model.Edit{{Hook: "attn.hook_z", Layers: []int{h.Layer}, Heads: []int{h.Head}, Op: model.OpZero}}}
		return func(int, *tasks.Sample) *model.Intervention { return iv }
	}
	return sweep(ctx, m, samples, ignore, one, progress)
}

func sweep(ctx context.Context, m model.Model, samples []*tasks.Sample, ignore int, one func(Head) EditsFor, progress func(done, total int)) (Metrics, []HeadResult, error) {
	clean, err := Evaluate(ctx, m, samples, nil, ignore)
	if err != nil {
		return Metrics{}, nil, err
	}
	cfg := m.Config()
	total := cfg.Layers * cfg.Heads
	var out []HeadResult
	for l := range cfg.Layers {
		for h := range cfg.Heads {
			hd := Head{l, h}
			met, err := Evaluate(ctx, m, samples, one(hd), ignore)
			if err != nil {
				return Metrics{}, nil, fmt.Errorf("layer %d head %d: %w", l, h, err)
			}
			out = append(out, HeadResult{Head: hd, Metrics: met, CEGain: clean.CrossEntropy - met.CrossEntropy, AccGain: met.TokenAccuracy - clean.TokenAccuracy})
			if progress != nil {
				progress(len(out), total)
			}
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].CEGain > out[b].CEGain })
	return clean, out, nil
}

// Grid lays a value of each result out as [layer][head].
func Grid(res []HeadResult, layers, heads int, value func(HeadResult) float64) [][]float64 {
	g := make([][]float64, layers)
	for l := range g {
		g[l] = make([]float64, heads)
	}
	for _, r := range res {
		g[r.Layer][r.Head.Head] = value(r)
	}
	return g
}
