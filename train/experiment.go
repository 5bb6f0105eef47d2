package train

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/gomlx/compute"

	"github.com/attnscope/attnscope/evaluate"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/model/arch"
	"github.com/attnscope/attnscope/store"
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
	// Intervention, when set, edits activations in every evaluated forward pass
	// (model.Intervention; no patch edits); the report records the file. The
	// model then runs on package model's runtime (Evaluate saves it to a
	// temporary checkpoint first).
	Intervention *model.InterventionFile
	// Batch, when set, says which batches b of dataset ("dataset1", "dataset2") to
	// evaluate (a shard; see evaluate.Options.Batch).
	Batch func(dataset string, b int) bool
	// Store, when set, keeps the evaluated batches (see evaluate.Options.Store).
	Store evaluate.BatchStore
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
	if opt.Intervention != nil {
		return evaluateIntervened(ctx, e, cfg, weights, tok, opt)
	}
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
		o := evaluate.Options{BatchSize: ev.BatchSize, Pad: pad, DropLast: opt.DropLast, Store: opt.Store}
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
	var info *store.InterventionInfo
	if info, err = interventionInfo(opt.Intervention, m.Config()); err != nil {
		return nil, err
	}
	f := evaluate.ModelForwarder{Model: m}
	if info != nil {
		f.Intervention = opt.Intervention.Intervention
	}
	rep, err := evaluateWith(ctx, e, f, tok, 0, m.Config().MaxPositions, "max_position_embeddings", decode, opt)
	if rep != nil {
		rep.Intervention = info
	}
	return rep, err
}

// evaluateIntervened is Evaluate with opt.Intervention: the model is saved
// to a temporary checkpoint and evaluated on package model's runtime, which
// applies interventions.
func evaluateIntervened(ctx context.Context, e *Experiment, cfg ModelConfig, weights [][]float32, tok *tasks.CharTokenizer, opt EvalOptions) (*evaluate.Report, error) {
	dir, err := os.MkdirTemp("", "attnscope-evaluate-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := Save(dir, cfg, weights, SpecialIDs{BOS: tok.BOS(), EOS: tok.EOS(), Pad: tok.Pad()}, nil); err != nil {
		return nil, err
	}
	m, err := model.Load(dir, model.LoadOptions{Backend: opt.ModelBackend})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	info, err := interventionInfo(opt.Intervention, m.Config())
	if err != nil {
		return nil, err
	}
	f := evaluate.ModelForwarder{Model: m, Intervention: opt.Intervention.Intervention}
	rep, err := evaluateWith(ctx, e, f, tok, tok.Pad(), cfg.NPositions, "n_positions", tok.Decode, opt)
	if rep != nil {
		rep.Intervention = info
	}
	return rep, err
}

// interventionInfo checks f against the model (no patch edits: evaluation
// samples have many lengths, a patch source one) and returns the report's
// record of the file; nil for nil.
func interventionInfo(f *model.InterventionFile, cfg *arch.Config) (*store.InterventionInfo, error) {
	if f == nil {
		return nil, nil
	}
	for i, ed := range f.Edits {
		if ed.Op == model.OpPatch {
			return nil, f.Explain(&model.EditError{Index: i, Field: "op", Msg: "op patch cannot be used in evaluate: a patch source has one length, the evaluation samples have many"})
		}
	}
	if err := f.Explain(f.Check(cfg)); err != nil {
		return nil, err
	}
	yaml, err := os.ReadFile(f.Path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(yaml)
	return &store.InterventionInfo{File: f.Path, Name: f.Name, SHA256: hex.EncodeToString(sum[:]), YAML: string(yaml)}, nil
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
