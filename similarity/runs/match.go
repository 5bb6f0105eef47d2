package runs

import (
	"context"
	"fmt"

	"github.com/attnscope/attnscope/similarity"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

// MatchResult is the head matching of run B's heads to run A's, per layer and sample.
type MatchResult struct {
	Layers  int
	Samples []string
	// Totals[l][s] is the intended statistic Σ_a C[a, π(a)] of layer l, sample s.
	Totals [][]float64
	// Quirk[l][s] is BERT-non-text's value (see similarity.QuirkTotals); nil when
	// the samples are fewer than the heads (the original fails there).
	Quirk [][]float64
	// QuirkErr says why Quirk is nil.
	QuirkErr error
	// Matched[l][s][a] is C[a, π(a)] for head a of run B; Assignment[l][s][a] is π(a)
	// (the head of run A, −1 if unmatched).
	Matched    [][][]float64
	Assignment [][][]int
	HeadsA     int
	HeadsB     int
}

// MatchHeads computes, for every layer and sample, the L1 cost between run B's heads
// (rows) and run A's heads (columns), the minimum-cost assignment and its total.
func MatchHeads(ctx context.Context, p *Pair, progress func(done, total int)) (*MatchResult, error) {
	la, err := p.A.NumLayers(p.Samples[0])
	if err != nil {
		return nil, err
	}
	lb, err := p.B.NumLayers(p.Samples[0])
	if err != nil {
		return nil, err
	}
	if la != lb {
		return nil, fmt.Errorf("run %s has %d layers and run %s %d: head matching pairs layer l with layer l and needs the same number", p.A.Dir(), la, p.B.Dir(), lb)
	}
	res := &MatchResult{Layers: la, Samples: p.Samples}
	costs := make([][]*tensor.Tensor, la)
	perms := make([][][]int, la)
	for l := range la {
		res.Totals = append(res.Totals, make([]float64, len(p.Samples)))
		res.Matched = append(res.Matched, make([][]float64, len(p.Samples)))
		res.Assignment = append(res.Assignment, make([][]int, len(p.Samples)))
		costs[l] = make([]*tensor.Tensor, len(p.Samples))
		perms[l] = make([][]int, len(p.Samples))
		for s, id := range p.Samples {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			x, err := p.A.AttentionLayer(id, l)
			if err != nil {
				return nil, err
			}
			y, err := p.B.AttentionLayer(id, l)
			if err != nil {
				return nil, err
			}
			c, err := similarity.HeadCosts(x, y)
			if err != nil {
				return nil, fmt.Errorf("layer %d, sample %s: %w", l, id, err)
			}
			perm, total, err := similarity.MatchHeads(c)
			if err != nil {
				return nil, fmt.Errorf("layer %d, sample %s: %w", l, id, err)
			}
			if (l > 0 || s > 0) && (x.Shape[0] != res.HeadsA || y.Shape[0] != res.HeadsB) {
				return nil, fmt.Errorf("layer %d, sample %s: %d and %d heads, %d and %d before: every layer needs the same heads", l, id, x.Shape[0], y.Shape[0], res.HeadsA, res.HeadsB)
			}
			res.HeadsA, res.HeadsB = x.Shape[0], y.Shape[0]
			matched := make([]float64, len(perm))
			for a, b := range perm {
				if b >= 0 {
					matched[a] = c.Data[a*c.Shape[1]+b]
				}
			}
			costs[l][s], perms[l][s] = c, perm
			res.Totals[l][s], res.Matched[l][s], res.Assignment[l][s] = total, matched, perm
			if progress != nil {
				progress(l*len(p.Samples)+s+1, la*len(p.Samples))
			}
		}
	}
	for l := range la {
		q, err := similarity.QuirkTotals(costs[l], perms[l])
		if err != nil {
			res.Quirk, res.QuirkErr = nil, err
			break
		}
		res.Quirk = append(res.Quirk, q)
	}
	return res, nil
}

// Summary returns per layer the mean and population std over samples of the
// intended totals, or of the original's value when quirk is set.
func (r *MatchResult) Summary(quirk bool) (mean, std []float64, err error) {
	src := r.Totals
	if quirk {
		if r.Quirk == nil {
			return nil, nil, r.QuirkErr
		}
		src = r.Quirk
	}
	mean, std = make([]float64, r.Layers), make([]float64, r.Layers)
	for l, v := range src {
		if mean[l], std[l], err = similarity.MeanStd(v); err != nil {
			return nil, nil, err
		}
	}
	return mean, std, nil
}

// WriteMatch stores the matching in run A: as derived outputs, one per sample, pass
// holds [layer, head of B] = C[a, π(a)] (the matched L1 cost of each of run B's heads;
// its sum over heads is the sample's total) and pass+"_assignment" holds [layer, head
// of B] = π(a), the head of run A matched to it; as run-level outputs, pass+"_totals"
// holds [record (sample), layer] the intended totals and pass+"_summary" [layer,
// column(mean, std)] their mean and population std over the samples (Summary(false)).
func WriteMatch(p *Pair, pass string, r *MatchResult, kwargs map[string]any) error {
	if err := writeMatchSamples(p, pass, r, kwargs); err != nil {
		return err
	}
	totals := tensor.New(len(r.Samples), r.Layers)
	for l := range r.Layers {
		for s := range r.Samples {
			totals.Data[s*r.Layers+l] = r.Totals[l][s]
		}
	}
	if err := p.A.WriteRunOutput(pass+"_totals", store.PassSettings{Function: "match_heads_totals", Input: "attention", Kwargs: kwargs,
		Axes: []store.Axis{{Name: store.AxisRecord, Labels: r.Samples}, {Name: store.AxisLayer}}}, totals); err != nil {
		return err
	}
	mean, std, err := r.Summary(false)
	if err != nil {
		return err
	}
	sum := tensor.New(r.Layers, 2)
	for l := range r.Layers {
		sum.Data[2*l], sum.Data[2*l+1] = mean[l], std[l]
	}
	return p.A.WriteRunOutput(pass+"_summary", store.PassSettings{Function: "match_heads_summary", Input: "attention", Kwargs: kwargs,
		Axes: []store.Axis{{Name: store.AxisLayer}, {Name: store.AxisColumn, Labels: []string{"mean", "std"}}}}, sum)
}

func writeMatchSamples(p *Pair, pass string, r *MatchResult, kwargs map[string]any) error {
	axes := []store.Axis{{Name: store.AxisLayer}, {Name: store.AxisHead}}
	for _, w := range []struct {
		pass, fn string
		value    func(l, s, a int) float64
	}{
		{pass, "match_heads_cost", func(l, s, a int) float64 { return r.Matched[l][s][a] }},
		{pass + "_assignment", "match_heads_assignment", func(l, s, a int) float64 { return float64(r.Assignment[l][s][a]) }},
	} {
		if err := p.A.PreparePass(w.pass, store.PassSettings{Function: w.fn, Input: "attention", Kwargs: kwargs, Axes: axes}); err != nil {
			return err
		}
		for s, id := range r.Samples {
			t := tensor.New(r.Layers, r.HeadsB)
			for l := range r.Layers {
				for a := range r.HeadsB {
					t.Data[l*r.HeadsB+a] = w.value(l, s, a)
				}
			}
			if err := p.A.WriteDerived(w.pass, id, t, nil); err != nil {
				return err
			}
		}
	}
	return nil
}
