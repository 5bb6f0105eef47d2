package train

import (
	"context"
	"fmt"

	"github.com/gomlx/compute"

	"github.com/attnscope/attnscope/evaluate"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/tasks"
	"github.com/attnscope/attnscope/tokenizer"
)

// EvalOptions are the non-config settings of an evaluation.
type EvalOptions struct {
	Backend compute.Backend
	// ModelBackend is the GoMLX backend configuration of EvaluateModel ("": default).
	ModelBackend string
	DropLast     bool // the original's DataLoader(drop_last=True)
	// OnSample receives every evaluated sample of dataset1 ("dataset1") and dataset2.
	OnSample func(dataset string, i int, s *tasks.Sample, preds []int, attn [][][]float32) error
	// Batch, when set, says which batches b of dataset ("dataset1", "dataset2") to
	// evaluate (a shard; see evaluate.Options.Batch).
	Batch func(dataset string, b int) bool
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
	return evaluateWith(ctx, e, p, tok, tok.Pad(), cfg.NPositions, "n_positions", tok.Decode, opt)
}

// evaluateWith evaluates dataset1 and dataset2 of e with f, the samples drawn with tok.
func evaluateWith(ctx context.Context, e *Experiment, f evaluate.Forwarder, tok tasks.Tokenizer, pad, maxPos int, posName string, decode func([]int) string, opt EvalOptions) (*evaluate.Report, error) {
	ev := e.Evaluation
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
			if maxPos > 0 && len(s.InputIDs) > maxPos {
				return nil, fmt.Errorf("evaluation.%s sample %d has %d tokens, more than the model's %s %d", d.key, i, len(s.InputIDs), posName, maxPos)
			}
		}
		o := evaluate.Options{BatchSize: ev.BatchSize, Pad: pad, DropLast: opt.DropLast}
		if opt.Batch != nil {
			key := d.key
			o.Batch = func(b int) bool { return opt.Batch(key, b) }
		}
		if opt.OnSample != nil {
			key := d.key
			o.OnSample = func(i int, s *tasks.Sample, preds []int, attn [][][]float32) error {
				return opt.OnSample(key, i, s, preds, attn)
			}
		}
		r, err := evaluate.Dataset(ctx, f, d.key, samples, o, decode)
		if err != nil {
			return nil, err
		}
		*d.dst = r
	}
	rep.Compare()
	return rep, nil
}

// EvaluateModel runs the experiment's evaluation section on a Hugging Face causal LM
// folder (config.json, model.safetensors, tokenizer.json, tokenizer_config.json), as
// evaluate_transformers_model.py does with model.is_pretrained: the task samples are
// tokenized with the model's own tokenizer (BOS and EOS from tokenizer_config.json;
// with apply_chat_template, the parts of its rendered chat template) and the model
// runs with its own weights. The config must have training: null.
func EvaluateModel(ctx context.Context, e *Experiment, dir string, opt EvalOptions) (*evaluate.Report, error) {
	if e.Evaluation == nil {
		return nil, fmt.Errorf("evaluate: the config has no evaluation section")
	}
	if e.Training != nil {
		return nil, fmt.Errorf("evaluate: training a Hugging Face model is not supported; set training=null to evaluate %s", dir)
	}
	hf, err := tokenizer.Load(dir)
	if err != nil {
		return nil, err
	}
	tok, err := tasks.NewHFTokenizer(hf, -1, -1)
	if err != nil {
		return nil, err
	}
	if usesChatTemplate(e) {
		if err := tok.UseChatTemplate(dir); err != nil {
			return nil, err
		}
	}
	m, err := model.Load(dir, model.LoadOptions{Backend: opt.ModelBackend})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	decode := func(ids []int) string {
		s, _ := hf.Decode(ids, true)
		return s
	}
	return evaluateWith(ctx, e, evaluate.ModelForwarder{Model: m}, tok, 0, m.Config().MaxPositions, "max_position_embeddings", decode, opt)
}

// usesChatTemplate reports whether a dataset asks for apply_chat_template without
// giving the rendered parts itself.
func usesChatTemplate(e *Experiment) bool {
	for _, d := range []*DatasetCfg{e.Evaluation.Dataset1, e.Evaluation.Dataset2} {
		if d == nil {
			continue
		}
		if v, ok := d.GeneratorParameters["apply_chat_template"].(bool); ok && v {
			if _, given := d.GeneratorParameters["chat_template"]; !given {
				return true
			}
		}
	}
	return false
}
