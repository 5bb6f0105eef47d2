package train

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/gomlx/compute"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/internal/buildinfo"
	"github.com/attnscope/attnscope/tasks"
)

// LogRecord is one line of the training log (train_log.jsonl).
type LogRecord struct {
	Step     int      `json:"step"`
	Epoch    int      `json:"epoch"`
	Loss     float64  `json:"train_loss"`
	GradNorm float64  `json:"grad_norm"`
	LR       float64  `json:"lr"`
	Elapsed  float64  `json:"elapsed_s"`
	ValAcc   *float64 `json:"val_acc,omitempty"` // percent, exact match (teacher-forced)
}

// RunResult is what RunTraining produced.
type RunResult struct {
	Config  ModelConfig
	Weights [][]float32
	Log     []LogRecord
	Elapsed time.Duration
	Steps   int
}

// Tokenizer returns the character tokenizer models of this package use.
func Tokenizer() *tasks.CharTokenizer { return tasks.NewCharTokenizer(tasks.DefaultChars()) }

// NewModel returns the config and initial (or loaded) weights the experiment asks for.
func NewModel(e *Experiment, tok *tasks.CharTokenizer) (ModelConfig, [][]float32, error) {
	if e.Model.LoadFromCheckpoint {
		cfg, w, err := Load(e.Model.CheckpointDir)
		if err != nil {
			return ModelConfig{}, nil, err
		}
		if cfg.VocabSize != tok.VocabSize() {
			return ModelConfig{}, nil, fmt.Errorf("load %s: vocab_size %d does not match the character tokenizer (%d)", e.Model.CheckpointDir, cfg.VocabSize, tok.VocabSize())
		}
		return cfg, w, nil
	}
	cfg := ModelConfig{Arch: e.Model.Architecture, VocabSize: tok.VocabSize(), NPositions: e.Model.NPositions, NEmbd: e.Model.NEmbd,
		NLayer: e.Model.NLayer, NHead: e.Model.NHead, NKVHead: e.Model.NKVHead, NInner: e.Model.NInner, RopeTheta: e.Model.RopeTheta}
	if err := cfg.validate(); err != nil {
		return ModelConfig{}, nil, err
	}
	return cfg, cfg.InitParams(e.Seed), nil
}

// Samples draws the first num_samples samples of a dataset config.
func Samples(d *DatasetCfg, tok tasks.Tokenizer, keepLabels bool) ([]*tasks.Sample, error) {
	g, err := tasks.New(d.Generator, d.GeneratorParameters, tok)
	if err != nil {
		return nil, err
	}
	ss, err := tasks.Take(g, d.NumSamples)
	if err != nil {
		return nil, err
	}
	if !keepLabels {
		for _, s := range ss {
			s.Labels = nil
		}
	}
	return ss, nil
}

// RunOptions are the non-config settings of a training run.
type RunOptions struct {
	Backend compute.Backend
	// Log receives plain progress lines (nil: none). When it is a terminal, a
	// progress bar is drawn instead of per-step lines.
	Log io.Writer
	// MaxTime stops training early (0: no limit); the run still saves.
	MaxTime time.Duration
}

// RunTraining trains the experiment's model on its train_dataset (AdamW,
// warm-up + cosine decay, gradient clipping), logging train_loss and grad_norm
// every log_every steps and val/acc every val_every steps, and writes the
// checkpoint (model.safetensors, config.json, tokenizer files, train_log.jsonl,
// experiment.json) when save_checkpoint is set.
func RunTraining(ctx context.Context, e *Experiment, opt RunOptions) (*RunResult, error) {
	t := e.Training
	if t == nil {
		return nil, fmt.Errorf("train: the config has training: null")
	}
	tok := Tokenizer()
	cfg, w, err := NewModel(e, tok)
	if err != nil {
		return nil, err
	}
	data, err := Samples(&t.TrainDataset, tok, false)
	if err != nil {
		return nil, fmt.Errorf("training.train_dataset: %w", err)
	}
	for i, s := range data {
		if len(s.InputIDs) > cfg.NPositions {
			return nil, fmt.Errorf("training.train_dataset sample %d has %d tokens, more than model.n_positions %d", i, len(s.InputIDs), cfg.NPositions)
		}
	}
	var val []*tasks.Sample
	if t.ValDataset != nil {
		if val, err = Samples(t.ValDataset, tok, false); err != nil {
			return nil, fmt.Errorf("training.val_dataset: %w", err)
		}
	}
	perEpoch := (len(data) + t.BatchSize - 1) / t.BatchSize
	steps := t.Steps
	if steps <= 0 {
		steps = t.Epochs * perEpoch
	}
	h := Hyper{LearningRate: t.LearningRate, WarmupSteps: t.WarmupSteps, TotalSteps: steps, MinLRRatio: t.MinLRRatio,
		Beta1: t.OptimizerParameters.Beta1, Beta2: t.OptimizerParameters.Beta2, WeightDecay: t.OptimizerParameters.WeightDecay,
		ClipNorm: t.GradClip, IgnoreIndex: t.ignoreIndex()}
	backend := opt.Backend
	if backend == nil {
		if backend, err = Backend(""); err != nil {
			return nil, err
		}
	}
	tr, err := NewTrainer(backend, cfg, h, w)
	if err != nil {
		return nil, err
	}
	logEvery := max(t.LogEvery, 1)
	var bar *progressbar.ProgressBar
	logw := opt.Log
	if f, ok := opt.Log.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar = progressbar.NewOptions(steps, progressbar.OptionSetWriter(f), progressbar.OptionShowCount(),
			progressbar.OptionSetDescription("training"), progressbar.OptionThrottle(200*time.Millisecond))
		logw = nil
	}
	say := func(format string, a ...any) {
		if logw != nil {
			fmt.Fprintf(logw, format+"\n", a...)
		}
	}
	say("training %s: %d layers × %d heads × %d wide, %d steps of %d samples (%d training samples)",
		e.Name, cfg.NLayer, cfg.NHead, cfg.NEmbd, steps, t.BatchSize, len(data))
	rng := rand.New(rand.NewPCG(e.Seed, 1))
	order := make([]int, len(data))
	res := &RunResult{Config: cfg}
	start := time.Now()
	pos, epoch := len(order), 0
	for step := 1; step <= steps; step++ {
		if opt.MaxTime > 0 && time.Since(start) > opt.MaxTime {
			say("stopping at step %d: max time %s reached", step-1, opt.MaxTime)
			break
		}
		if pos >= len(order) { // a new epoch: generation order first, then shuffled
			for i := range order {
				order[i] = i
			}
			if epoch > 0 {
				rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			}
			pos = 0
			epoch++
		}
		end := min(pos+t.BatchSize, len(order))
		batch := make([]*tasks.Sample, 0, end-pos)
		for _, i := range order[pos:end] {
			batch = append(batch, data[i])
		}
		pos = end
		ids, targets := padBatch(batch, tok.Pad(), h.IgnoreIndex, cfg.NPositions)
		r, err := tr.Step(ctx, ids, targets)
		if err != nil {
			return nil, err
		}
		res.Steps = step
		if bar != nil {
			bar.Describe(fmt.Sprintf("loss %.4f", r.Loss))
			bar.Add(1)
		}
		if step%logEvery == 0 || step == steps {
			rec := LogRecord{Step: step, Epoch: epoch, Loss: r.Loss, GradNorm: r.GradNorm, LR: r.LR, Elapsed: time.Since(start).Seconds()}
			if val != nil && t.ValEvery > 0 && (step%t.ValEvery == 0 || step == steps) {
				acc, err := exactMatch(ctx, backend, tr, val, tok.Pad(), h.IgnoreIndex)
				if err != nil {
					return nil, err
				}
				rec.ValAcc = &acc
				say("step %d: train_loss %.4f grad_norm %.3f lr %.2e val/acc %.1f%% (%.0fs)", step, r.Loss, r.GradNorm, r.LR, acc, rec.Elapsed)
			} else {
				say("step %d: train_loss %.4f grad_norm %.3f lr %.2e (%.0fs)", step, r.Loss, r.GradNorm, r.LR, rec.Elapsed)
			}
			res.Log = append(res.Log, rec)
		}
	}
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(opt.Log)
	}
	res.Elapsed = time.Since(start)
	if res.Weights, err = tr.Weights(); err != nil {
		return nil, err
	}
	if t.SaveCheckpoint {
		if err := SaveRun(t.CheckpointFilepath, e, res, tok); err != nil {
			return nil, err
		}
		say("saved %s", t.CheckpointFilepath)
	}
	return res, nil
}

// SaveRun writes a trained model folder: model.safetensors + config.json
// (Hugging Face GPT-2), tokenizer.json + tokenizer_config.json, the training
// log and the experiment config it came from.
func SaveRun(dir string, e *Experiment, res *RunResult, tok *tasks.CharTokenizer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	md := map[string]string{"attnscope_version": buildinfo.Version(), "experiment": e.Name, "steps": fmt.Sprint(res.Steps)}
	if err := Save(dir, res.Config, res.Weights, SpecialIDs{BOS: tok.BOS(), EOS: tok.EOS(), Pad: tok.Pad()}, md); err != nil {
		return err
	}
	if err := tok.WriteFiles(dir); err != nil {
		return err
	}
	err := atomicfile.WriteWith(filepath.Join(dir, "train_log.jsonl"), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for _, r := range res.Log {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save training log: %w", err)
	}
	js, _ := json.MarshalIndent(map[string]any{"experiment": e, "elapsed_s": res.Elapsed.Seconds(), "steps": res.Steps}, "", "  ")
	return atomicfile.WriteFile(filepath.Join(dir, "training.json"), append(js, '\n'))
}

// padBatch right-pads a batch to a multiple of 8 tokens (capped at maxLen),
// so a run compiles a handful of graphs.
func padBatch(batch []*tasks.Sample, pad, ignore, maxLen int) (ids, targets [][]int) {
	n := 0
	for _, s := range batch {
		n = max(n, len(s.InputIDs))
	}
	n = min((n+7)/8*8, max(maxLen, n))
	for _, s := range batch {
		in := make([]int, n)
		tg := make([]int, n)
		for i := range in {
			in[i], tg[i] = pad, ignore
		}
		copy(in, s.InputIDs)
		copy(tg, s.TargetIDs)
		ids = append(ids, in)
		targets = append(targets, tg)
	}
	return ids, targets
}

// exactMatch returns the percentage of samples whose scored targets are all
// predicted (teacher-forced argmax), as the original's val/acc.
func exactMatch(ctx context.Context, backend compute.Backend, tr *Trainer, samples []*tasks.Sample, pad, ignore int) (float64, error) {
	w, err := tr.Weights()
	if err != nil {
		return 0, err
	}
	p, err := NewPredictor(backend, tr.Config, w)
	if err != nil {
		return 0, err
	}
	ok := 0
	for start := 0; start < len(samples); start += 64 {
		batch := samples[start:min(start+64, len(samples))]
		ids, targets := padBatch(batch, pad, ignore, tr.Config.NPositions)
		pr, err := p.Predict(ctx, ids, false)
		if err != nil {
			return 0, err
		}
		for i := range batch {
			good := true
			for j, tg := range targets[i] {
				if tg != ignore && pr.IDs[i][j] != tg {
					good = false
					break
				}
			}
			if good {
				ok++
			}
		}
	}
	return 100 * float64(ok) / float64(len(samples)), nil
}
