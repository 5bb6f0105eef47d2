package diagnose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"

	"github.com/attnscope/attnscope/internal/shard"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tasks"
	"github.com/attnscope/attnscope/tensor"
	"github.com/attnscope/attnscope/tokenizer"
)

// Options select the model, inputs and mode of a diagnostic run.
type Options struct {
	ModelDir string // checkpoint folder (its config.json also defines a scratch model)
	Scratch  bool   // freshly initialise the architecture from Seed
	InitHead bool   // draw a classification head missing from the checkpoint from Seed
	Seed     uint64 // initialisation, example order, output positions, noise

	// Inputs: exactly one of GLUE (with Task), Text, Generator.
	GLUE, Task      string
	Text            string
	Generator       string
	GeneratorParams map[string]any
	MaxLen          int // tokens per example (BERT-non-text: max_seq_length 128)

	// Token map: Table (a file), else RandomTable (seeded, saved with the run), else Shift.
	Shift       int
	Table       string
	RandomTable bool
	TableSeed   uint64
	Reserved    int // ids kept in place at the end of a random table (1000 for BERT)

	Train     bool // training mode: dropout on (seeded by Seed)
	Batches   int  // number of (mini-)batches; Jacobian: examples
	BatchSize int
	Backend   string
	Out       string
	Command   []string
	// Shard, when set, computes only the examples (jacobian), batches (layernorm,
	// perturb) or gradient steps (confusion) whose id (ex00000, b00000, s00000) hashes
	// to it, into the run folder Out with a shard manifest, resuming an interrupted
	// run item by item (pending.go); attnscope merge joins the shards' run folders
	// (package jobs) and Summarize writes their run-level outputs.
	Shard shard.Shard
	// Log, when set, is told when a sharded run resumes an unfinished shard.
	Log io.Writer
}

// Setup is a loaded model with its encoded inputs.
type Setup struct {
	Net      *Net
	Examples []Example
	Map      TokenMap
	Mode     Mode
	Labels   int
	opts     Options
}

// Prepare loads the model and inputs of opts; labels > 0 asks for a
// classification head of that many outputs (0: the task's, when the
// diagnostic needs one, is set by the caller).
func Prepare(opts Options, needHead bool) (*Setup, error) {
	if opts.ModelDir == "" {
		return nil, errors.New("--model is required (a checkpoint folder; with --scratch its config.json defines the fresh model)")
	}
	labels := 0
	if needHead {
		if opts.GLUE == "" {
			return nil, errors.New("this diagnostic trains a classification head's loss: give a GLUE file (--glue FILE --task MNLI|SST-2|STS-B)")
		}
		var err error
		if labels, err = GLUELabels(opts.Task); err != nil {
			return nil, err
		}
	}
	var n *Net
	var err error
	if opts.Scratch {
		cfg, cerr := readConfig(opts.ModelDir)
		if cerr != nil {
			return nil, cerr
		}
		n, err = ScratchNet(cfg, labels, opts.Seed)
	} else {
		n, err = LoadNet(opts.ModelDir, HeadOptions{Labels: labels, InitMissing: opts.InitHead, Seed: opts.Seed})
	}
	if err != nil {
		return nil, err
	}
	s := &Setup{Net: n, Mode: Mode{Train: opts.Train, Seed: opts.Seed}, Labels: labels, opts: opts}
	v := n.Cfg.VocabSize
	switch {
	case opts.Table != "":
		if s.Map.Table, err = ReadTable(opts.Table, v); err != nil {
			return nil, err
		}
	case opts.RandomTable:
		if s.Map.Table, err = RandomTable(v, opts.Reserved, opts.TableSeed); err != nil {
			return nil, err
		}
	default:
		s.Map.Shift = opts.Shift
	}
	texts, err := readInputs(opts)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(filepath.Join(opts.ModelDir, "tokenizer.json"))
	if err != nil {
		return nil, err
	}
	// BERT-non-text draws examples with a seeded RandomSampler: a seeded order here.
	rng := rand.New(rand.NewPCG(opts.Seed, 0x853c49e6748fea9b))
	rng.Shuffle(len(texts), func(i, j int) { texts[i], texts[j] = texts[j], texts[i] })
	if s.Examples, err = Encode(tok, texts, opts.MaxLen, v, s.Map); err != nil {
		return nil, err
	}
	return s, nil
}

func readInputs(o Options) ([]TextPair, error) {
	count := 0
	for _, s := range []string{o.GLUE, o.Text, o.Generator} {
		if s != "" {
			count++
		}
	}
	if count != 1 {
		return nil, errors.New("give exactly one input: --glue FILE (with --task), --text FILE or --generator NAME")
	}
	switch {
	case o.GLUE != "":
		if o.Task == "" {
			return nil, errors.New("--glue needs --task (MNLI, SST-2 or STS-B)")
		}
		return ReadGLUE(o.GLUE, o.Task)
	case o.Text != "":
		return ReadLines(o.Text)
	}
	g, err := tasks.New(o.Generator, o.GeneratorParams, tasks.NewCharTokenizer(tasks.DefaultChars()))
	if err != nil {
		return nil, err
	}
	want := max(o.Batches*max(o.BatchSize, 1), 1)
	samples, err := tasks.Take(g, want)
	if err != nil {
		return nil, err
	}
	out := make([]TextPair, len(samples))
	for i, s := range samples {
		out[i] = TextPair{A: s.Text}
	}
	return out, nil
}

// batches returns the first count batches of size bs (fewer when the inputs
// run out; an error when there is not one).
func (s *Setup) batches(count, bs int) ([][]Example, error) {
	var out [][]Example
	for i := 0; i+bs <= len(s.Examples) && len(out) < count; i += bs {
		out = append(out, s.Examples[i:i+bs])
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the inputs hold %d examples, fewer than one batch of %d", len(s.Examples), bs)
	}
	return out, nil
}

// settings are the kwargs every pass records.
func (s *Setup) settings() map[string]any {
	src := "pretrained"
	if s.opts.Scratch {
		src = "scratch"
	}
	m := map[string]any{
		"model": src, "mode": s.Mode.String(), "seed": s.opts.Seed, "token_map": s.Map.String(),
		"max_len": s.opts.MaxLen, "batches": s.opts.Batches, "batch_size": s.opts.BatchSize,
	}
	switch {
	case s.opts.GLUE != "":
		m["input"] = "glue " + s.opts.Task + ": " + s.opts.GLUE
	case s.opts.Text != "":
		m["input"] = "text: " + s.opts.Text
	default:
		m["input"] = "generator: " + s.opts.Generator
	}
	if s.Net.HeadInitialised {
		m["classifier_head"] = "initialised from the seed (absent from the checkpoint)"
	}
	return m
}

// Axis names of the diagnostics' outputs.
const (
	AxisToken    = "token"    // input positions of an example
	AxisSingular = "singular" // singular values, descending
)

// counter tells progress (nil: none) after each item computed of the total to do.
type counter struct {
	done, total int
	fn          func(done, total int)
}

func (c *counter) tick() {
	if c.fn != nil {
		c.done++
		c.fn(c.done, c.total)
	}
}

// RunJacobian writes, for each of opts.Batches examples, the singular values
// of every J_w at one output position p drawn uniformly (seeded) as
// derived/jacobian/<exNNNNN>.npy [token, singular]; the position is the
// example's metric "position". Progress (nil: none) is told after each example.
func RunJacobian(ctx context.Context, s *Setup, chunk int, progress func(done, total int)) (string, error) {
	exs, err := s.batches(s.opts.Batches, 1)
	if err != nil {
		return "", err
	}
	if done, err := s.shardFinished("diagnose-jacobian"); done || err != nil {
		return s.opts.Out, err
	}
	j, err := NewJacobians(s.Net, JacobianOptions{Mode: s.Mode, Chunk: chunk, Backend: s.opts.Backend})
	if err != nil {
		return "", err
	}
	defer j.Close()
	p, err := s.create(ctx, "diagnose-jacobian", len(exs), "ex%05d")
	if err != nil {
		return "", err
	}
	kw := s.settings()
	kw["chunk"] = j.opts.Chunk
	kw["output_position"] = "uniform over the example's tokens, seeded"
	if err := p.run.PreparePass("jacobian", store.PassSettings{Function: "diagnose.Jacobians.SingularValues", Input: "model", Kwargs: kw,
		Axes: []store.Axis{{Name: AxisToken}, {Name: AxisSingular}}}); err != nil {
		return "", p.fail(err)
	}
	rng := rand.New(rand.NewPCG(s.opts.Seed, 0xa0761d6478bd642f))
	d := s.Net.Cfg.Hidden
	c := counter{total: p.todo(s.shardCount(len(exs), "ex%05d")), fn: progress}
	for i, b := range exs {
		if err := ctx.Err(); err != nil {
			return "", p.fail(err)
		}
		ex := b[0]
		pos := rng.IntN(len(ex.IDs)) // drawn for every example: a shard draws what the whole run does
		id := fmt.Sprintf("ex%05d", i)
		if p.done(s.opts.Shard, id) {
			continue
		}
		j.calls = uint64(i) // dropout masks keyed by the example, sharded or not
		sv, err := j.SingularValues(ex, pos)
		if err != nil {
			return "", p.fail(fmt.Errorf("example %d: %w", i, err))
		}
		t, err := tensor.FromFloat64([]int{len(ex.IDs), d}, sv)
		if err == nil {
			rows := []store.MetricRow{{Sample: id, Pass: "jacobian", Layer: -1, Head: -1, Metric: "position", Value: float64(pos)}}
			if err = p.run.WriteDerived("jacobian", id, t, rows); err == nil {
				err = p.finish(id)
			}
		}
		if err != nil {
			return "", p.fail(err)
		}
		c.tick()
	}
	return p.dest, p.commitSummarized()
}

// RunLayerNorm writes, per batch, the per-token std of the pre-LayerNorm
// residual sums as derived/layernorm/<bNNNNN>.npy [layer, criterion(attn,
// mlp), token] (every token of the batch padded to max_len, padding included,
// as the original pads GLUE inputs to max_seq_length).
func RunLayerNorm(ctx context.Context, s *Setup, progress func(done, total int)) (string, error) {
	bs, err := s.batches(s.opts.Batches, s.opts.BatchSize)
	if err != nil {
		return "", err
	}
	if done, err := s.shardFinished("diagnose-layernorm"); done || err != nil {
		return s.opts.Out, err
	}
	l, err := NewLayerNormStd(s.Net, s.Mode, s.opts.Backend)
	if err != nil {
		return "", err
	}
	defer l.Close()
	p, err := s.create(ctx, "diagnose-layernorm", len(bs), "b%05d")
	if err != nil {
		return "", err
	}
	if err := p.run.PreparePass("layernorm", store.PassSettings{Function: "diagnose.LayerNormStd", Input: "model", Kwargs: s.settings(),
		Axes: []store.Axis{{Name: store.AxisLayer}, {Name: store.AxisCriterion, Labels: []string{"attn", "mlp"}}, {Name: AxisToken}}}); err != nil {
		return "", p.fail(err)
	}
	c := counter{total: p.todo(s.shardCount(len(bs), "b%05d")), fn: progress}
	for i, b := range bs {
		id := fmt.Sprintf("b%05d", i)
		if p.done(s.opts.Shard, id) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return "", p.fail(err)
		}
		l.b.calls = uint64(i) // dropout masks keyed by the batch, sharded or not
		v, shape, err := l.Batch(b, s.opts.MaxLen)
		if err == nil {
			var t *tensor.Tensor
			if t, err = tensor.FromFloat64([]int{shape[0] / 2, 2, shape[1]}, v); err == nil {
				if err = p.run.WriteDerived("layernorm", id, t, nil); err == nil {
					err = p.finish(id)
				}
			}
		}
		if err != nil {
			return "", p.fail(fmt.Errorf("batch %d: %w", i, err))
		}
		c.tick()
	}
	return p.dest, p.commitSummarized()
}

// RunPerturb writes ‖o₁ − o₂‖₂ per example of every batch as
// derived/perturb/<bNNNNN>.npy [record]. Each batch draws its noise from its own
// stream (seed, batch index) and its dropout masks keyed by its index, so a shard
// computes its batches exactly as the whole run does.
func RunPerturb(ctx context.Context, s *Setup, sigma float64, progress func(done, total int)) (string, error) {
	bs, err := s.batches(s.opts.Batches, s.opts.BatchSize)
	if err != nil {
		return "", err
	}
	if done, err := s.shardFinished("diagnose-perturb"); done || err != nil {
		return s.opts.Out, err
	}
	pt, err := NewPerturbation(s.Net, s.Mode, s.opts.Backend, sigma, s.opts.Seed)
	if err != nil {
		return "", err
	}
	defer pt.Close()
	p, err := s.create(ctx, "diagnose-perturb", len(bs), "b%05d")
	if err != nil {
		return "", err
	}
	kw := s.settings()
	kw["std"] = sigma
	kw["noise"] = "drawn per batch from ChaCha8 keyed by (seed, batch)"
	if err := p.run.PreparePass("perturb", store.PassSettings{Function: "diagnose.Perturbation", Input: "model", Kwargs: kw,
		Axes: []store.Axis{{Name: store.AxisRecord}}}); err != nil {
		return "", p.fail(err)
	}
	c := counter{total: p.todo(s.shardCount(len(bs), "b%05d")), fn: progress}
	for i, b := range bs {
		id := fmt.Sprintf("b%05d", i)
		if p.done(s.opts.Shard, id) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return "", p.fail(err)
		}
		v, err := pt.Batch(b, i)
		if err == nil {
			var t *tensor.Tensor
			if t, err = tensor.FromFloat64([]int{len(v)}, v); err == nil {
				if err = p.run.WriteDerived("perturb", id, t, nil); err == nil {
					err = p.finish(id)
				}
			}
		}
		if err != nil {
			return "", p.fail(fmt.Errorf("batch %d: %w", i, err))
		}
		c.tick()
	}
	return p.dest, p.commitSummarized()
}

// shardCount is how many of the n ids format(0) … format(n-1) the shard computes.
func (s *Setup) shardCount(n int, format string) int {
	c := 0
	for i := range n {
		if s.opts.Shard.Has(fmt.Sprintf(format, i)) {
			c++
		}
	}
	return c
}
