package train

import (
	"context"
	"fmt"

	"github.com/gomlx/compute"

	"github.com/attnscope/attnscope/evaluate"
	"github.com/attnscope/attnscope/tasks"
)

// EvalOptions are the non-config settings of an evaluation.
type EvalOptions struct {
	Backend  compute.Backend
	DropLast bool // the original's DataLoader(drop_last=True)
	// OnSample receives every evaluated sample of dataset1 ("dataset1") and dataset2.
	OnSample func(dataset string, i int, s *tasks.Sample, preds []int, attn [][][]float32) error
}

// Evaluate runs the experiment's evaluation section on a model:
// teacher-forced accuracy, piecewise accuracy and error positions, rollout
// attention on reference tokens and its correlation with correctness for
// dataset1 (in distribution) and dataset2 (out of distribution), and the
// Welch test between the two (spec §2.5).
func Evaluate(ctx context.Context, e *Experiment, cfg ModelConfig, weights [][]float32, opt EvalOptions) (*evaluate.Report, error) {
	ev := e.Evaluation
	if ev == nil {
		return nil, fmt.Errorf("evaluate: the config has no evaluation section")
	}
	backend := opt.Backend
	if backend == nil {
		var err error
		if backend, err = Backend(""); err != nil {
			return nil, err
		}
	}
	tok := Tokenizer()
	p, err := NewPredictor(backend, cfg, weights)
	if err != nil {
		return nil, err
	}
	rep := &evaluate.Report{Name: ev.Name}
	for _, d := range []struct {
		key string
		cfg *DatasetCfg
		dst **evaluate.DatasetResult
	}{{"dataset1", ev.Dataset1, &rep.ID}, {"dataset2", ev.Dataset2, &rep.OOD}} {
		samples, err := Samples(d.cfg, tok, true)
		if err != nil {
			return nil, fmt.Errorf("evaluation.%s: %w", d.key, err)
		}
		for i, s := range samples {
			if len(s.InputIDs) > cfg.NPositions {
				return nil, fmt.Errorf("evaluation.%s sample %d has %d tokens, more than the model's n_positions %d", d.key, i, len(s.InputIDs), cfg.NPositions)
			}
		}
		o := evaluate.Options{BatchSize: ev.BatchSize, Pad: tok.Pad(), DropLast: opt.DropLast}
		if opt.OnSample != nil {
			key := d.key
			o.OnSample = func(i int, s *tasks.Sample, preds []int, attn [][][]float32) error {
				return opt.OnSample(key, i, s, preds, attn)
			}
		}
		r, err := evaluate.Dataset(ctx, p, d.key, samples, o, tok.Decode)
		if err != nil {
			return nil, err
		}
		*d.dst = r
	}
	rep.Compare()
	return rep, nil
}
