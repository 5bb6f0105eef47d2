package diagnose

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

// ConfusionGradients is the pass of a sharded confusion run: the gradient g_t of each
// of its steps, derived/confusion-gradients/<sNNNNN>.npy [parameter]. The pairs need
// every step's gradient, so a shard stores its own and merge (Summarize) compares them
// all and removes the pass: the merged run holds what the unsharded run writes.
const ConfusionGradients = "confusion-gradients"

// RunConfusion accumulates the loss gradient of every parameter over
// accumulation mini-batches of BatchSize/accumulation examples (g_t = mean of
// the accumulation gradients), for Batches steps t, and writes every pair's
// comparison as derived/confusion/pairs.npy [record, column(i, j, cosine, dot, l2)].
// A sharded run computes the steps s00000, … that hash to its shard (mini-batch m of
// the run keys its dropout masks, sharded or not) and stores their gradients
// (ConfusionGradients).
func RunConfusion(ctx context.Context, s *Setup, accumulation int, progress func(done, total int)) (string, error) {
	if accumulation < 1 || s.opts.BatchSize%accumulation != 0 {
		return "", fmt.Errorf("--accumulation %d must be positive and divide --batch-size %d", accumulation, s.opts.BatchSize)
	}
	if s.opts.Batches < 2 {
		return "", fmt.Errorf("--batches %d: gradient confusion compares at least 2 gradients", s.opts.Batches)
	}
	bs, err := s.batches(s.opts.Batches*accumulation, s.opts.BatchSize/accumulation)
	if err != nil {
		return "", err
	}
	if len(bs) < 2*accumulation {
		return "", fmt.Errorf("the inputs hold %d examples, fewer than 2 steps of %d", len(s.Examples), s.opts.BatchSize)
	}
	steps := len(bs) / accumulation
	if done, err := s.shardFinished("diagnose-confusion"); done || err != nil {
		return s.opts.Out, err
	}
	g, err := NewGradients(s.Net, s.Mode, s.opts.Backend)
	if err != nil {
		return "", err
	}
	defer g.Close()
	p, err := s.create(ctx, "diagnose-confusion", steps, "s%05d")
	if err != nil {
		return "", err
	}
	kw := s.settings()
	kw["accumulation"] = accumulation
	kw["loss"] = map[bool]string{true: "mean squared error (regression)", false: "cross-entropy"}[s.Labels == 1]
	kw["gradient_steps"] = steps
	if p.sharded {
		if err := p.run.PreparePass(ConfusionGradients, store.PassSettings{Function: "diagnose.Gradients", Input: "model", Kwargs: kw,
			Axes: []store.Axis{{Name: "parameter"}}}); err != nil {
			return "", p.fail(err)
		}
	}
	gs := make([][]float64, steps)
	c := counter{total: p.todo(s.shardCount(steps, "s%05d")), fn: progress}
	for t := range steps {
		id := fmt.Sprintf("s%05d", t)
		if p.done(s.opts.Shard, id) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return "", p.fail(err)
		}
		if gs[t], err = stepGradient(g, bs[t*accumulation:(t+1)*accumulation], t*accumulation); err == nil && p.sharded {
			if err = p.run.WriteDerived(ConfusionGradients, id, &tensor.Tensor{Shape: []int{len(gs[t])}, Data: gs[t]}, nil); err == nil {
				err = p.finish(id)
			}
			gs[t] = nil
		}
		if err != nil {
			return "", p.fail(err)
		}
		c.tick()
	}
	if p.sharded {
		return p.dest, p.commitSummarized()
	}
	if err := writeConfusion(p.run, kw, gs); err != nil {
		return "", p.fail(err)
	}
	return p.dest, p.commit()
}

// stepGradient is the mean of the gradients of the mini-batches mbs, the first of
// which is mini-batch first of the run.
func stepGradient(g *Gradients, mbs [][]Example, first int) ([]float64, error) {
	var acc []float64
	for k, b := range mbs {
		g.calls = uint64(first + k) // dropout masks keyed by the mini-batch, sharded or not
		v, err := g.Batch(b)
		if err != nil {
			return nil, fmt.Errorf("mini-batch %d: %w", first+k, err)
		}
		if acc == nil {
			acc = v
		} else {
			for i := range acc {
				acc[i] += v[i]
			}
		}
	}
	for i := range acc {
		acc[i] /= float64(len(mbs))
	}
	return acc, nil
}

// writeConfusion compares every pair of the step gradients gs and writes the pairs
// (pass confusion) and the density of their cosines (ConfusionDensity).
func writeConfusion(r *store.Run, kw map[string]any, gs [][]float64) error {
	// kwargs as JSON gives them back, so that a merged run (which reads them from
	// the shards' pass.json) writes the same bytes.
	b, err := json.Marshal(kw)
	if err != nil {
		return err
	}
	kw = nil
	if err := json.Unmarshal(b, &kw); err != nil {
		return err
	}
	ps := ComparePairs(gs)
	rows := make([]float64, 0, 5*len(ps.I))
	for k := range ps.I {
		rows = append(rows, float64(ps.I[k]), float64(ps.J[k]), ps.Cosine[k], ps.Dot[k], ps.Dist[k])
	}
	t, err := tensor.FromFloat64([]int{len(ps.I), 5}, rows)
	if err != nil {
		return err
	}
	if err := r.PreparePass("confusion", store.PassSettings{Function: "diagnose.ComparePairs", Input: "model", Kwargs: kw,
		Axes: []store.Axis{{Name: store.AxisRecord}, {Name: store.AxisColumn, Labels: []string{"i", "j", "cosine", "dot", "l2"}}}}); err != nil {
		return err
	}
	if err := r.WriteDerived("confusion", "pairs", t, nil); err != nil {
		return err
	}
	return writeDensity(r, ConfusionDensity, "diagnose.ComparePairs density", "cosine between the gradients of every pair of steps", kw, ps.Cosine)
}

// summarizeConfusion compares the step gradients of a merged confusion run (every
// step s00000, … of gradient_steps present) and removes them.
func summarizeConfusion(r *store.Run, set store.PassSettings) error {
	steps, ok := set.Kwargs["gradient_steps"].(float64)
	if !ok {
		return fmt.Errorf("%s: pass.json of %s has no gradient_steps", r.Dir(), ConfusionGradients)
	}
	gs := make([][]float64, int(steps))
	for t := range gs {
		g, err := r.Derived(ConfusionGradients, fmt.Sprintf("s%05d", t))
		if err != nil {
			return fmt.Errorf("%s: step %d of %d: %w", r.Dir(), t, len(gs), err)
		}
		gs[t] = g.Data
	}
	if err := writeConfusion(r, set.Kwargs, gs); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(r.Dir(), store.DerivedDir, ConfusionGradients))
}
