package diagnose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/attnscope/attnscope/capture"
	"github.com/attnscope/attnscope/internal/buildinfo"
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
	// Shard, when set, computes only the examples (jacobian) or batches (layernorm)
	// whose id (ex00000, b00000) hashes to it, into the run folder Out with a shard
	// manifest; attnscope merge joins the shards' run folders (package jobs).
	Shard shard.Shard
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

// create writes the run into a temporary folder beside opts.Out, renamed to
// Out by commit: a failed run leaves nothing half-written.
type pending struct {
	run  *store.Run
	tmp  string
	dest string
}

func (s *Setup) create(ctx context.Context) (*pending, error) {
	o := s.opts
	if o.Out == "" {
		return nil, errors.New("--out is required (the run folder to write)")
	}
	if _, err := os.Stat(o.Out); err == nil {
		return nil, fmt.Errorf("output folder %s already exists (choose a new --out)", o.Out)
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(o.Out)), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(o.Out)), "."+filepath.Base(o.Out)+".partial-")
	if err != nil {
		return nil, err
	}
	files, err := capture.HashModel(ctx, o.ModelDir)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	cfg, _ := json.Marshal(s.Net.Cfg.Raw)
	backend := o.Backend
	if backend == "" {
		backend = os.Getenv("GOMLX_BACKEND")
	}
	if backend == "" {
		backend = "go"
	}
	meta := store.Meta{
		Version: buildinfo.Version(), Command: o.Command, Kind: "diagnose",
		Model: &store.ModelInfo{Dir: o.ModelDir, ModelType: s.Net.Cfg.ModelType, Files: files, Config: cfg},
		DType: "float64", ComputeDType: "float32", Backend: backend,
		Inputs:    nonEmpty(o.GLUE, o.Text, o.Generator),
		StartTime: time.Now().UTC(),
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	r, err := store.Create(tmp, meta)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	if s.Map.Table != nil {
		if err := WriteTable(filepath.Join(tmp, "token_table.npy"), s.Map.Table); err != nil {
			os.RemoveAll(tmp)
			return nil, err
		}
	}
	return &pending{run: r, tmp: tmp, dest: o.Out}, nil
}

func nonEmpty(xs ...string) []string {
	var out []string
	for _, x := range xs {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

func (p *pending) abort() { os.RemoveAll(p.tmp) }

// commitShard commits the run, with, for a sharded run, the shard manifest of
// command (ids format(0) … format(n-1), those of sh assigned and finished).
func (p *pending) commitShard(command string, n int, format string, sh shard.Shard) error {
	if sh.Sharded() {
		m := store.ShardManifest{Command: command, Index: sh.Index, Count: sh.Count}
		for i := range n {
			if id := fmt.Sprintf(format, i); sh.Has(id) {
				m.Assigned = append(m.Assigned, id)
			}
		}
		m.Finished = m.Assigned
		if err := p.run.WriteShardManifest(m); err != nil {
			p.abort()
			return err
		}
	}
	return p.commit()
}

// commitSummarized commits the run as commitShard does, an unsharded run with its
// run-level outputs (Summarize; a sharded run gets them when merge joins the shards).
func (p *pending) commitSummarized(command string, n int, format string, sh shard.Shard) error {
	if !sh.Sharded() {
		if err := Summarize(p.run); err != nil {
			p.abort()
			return err
		}
	}
	return p.commitShard(command, n, format, sh)
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

// shardFinished reports whether Out holds this shard of command finished (a rerun of a
// finished shard does nothing); Out existing otherwise is left to create to refuse.
func (s *Setup) shardFinished(command string) (bool, error) {
	if !s.opts.Shard.Sharded() {
		return false, nil
	}
	r, err := store.Open(s.opts.Out)
	if err != nil {
		return false, nil
	}
	ms, err := r.ShardManifests()
	if err != nil {
		return false, err
	}
	for _, m := range ms {
		if m.Command == command && m.Index == s.opts.Shard.Index && m.Count == s.opts.Shard.Count && m.Complete() {
			return true, nil
		}
	}
	return false, nil
}

func (p *pending) commit() error {
	now := time.Now().UTC()
	p.run.Meta.EndTime = &now
	if err := p.run.WriteMeta(); err != nil {
		p.abort()
		return err
	}
	if err := os.Rename(p.tmp, p.dest); err != nil {
		p.abort()
		return fmt.Errorf("move the finished run to %s: %w", p.dest, err)
	}
	return nil
}

// Axis names of the diagnostics' outputs.
const (
	AxisToken    = "token"    // input positions of an example
	AxisSingular = "singular" // singular values, descending
)

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
	p, err := s.create(ctx)
	if err != nil {
		return "", err
	}
	kw := s.settings()
	kw["chunk"] = j.opts.Chunk
	kw["output_position"] = "uniform over the example's tokens, seeded"
	if err := p.run.PreparePass("jacobian", store.PassSettings{Function: "diagnose.Jacobians.SingularValues", Input: "model", Kwargs: kw,
		Axes: []store.Axis{{Name: AxisToken}, {Name: AxisSingular}}}); err != nil {
		p.abort()
		return "", err
	}
	rng := rand.New(rand.NewPCG(s.opts.Seed, 0xa0761d6478bd642f))
	d := s.Net.Cfg.Hidden
	done := 0
	for i, b := range exs {
		if err := ctx.Err(); err != nil {
			p.abort()
			return "", err
		}
		ex := b[0]
		pos := rng.IntN(len(ex.IDs)) // drawn for every example: a shard draws what the whole run does
		id := fmt.Sprintf("ex%05d", i)
		if !s.opts.Shard.Has(id) {
			continue
		}
		j.calls = uint64(i) // dropout masks keyed by the example, sharded or not
		sv, err := j.SingularValues(ex, pos)
		if err != nil {
			p.abort()
			return "", fmt.Errorf("example %d: %w", i, err)
		}
		t, err := tensor.FromFloat64([]int{len(ex.IDs), d}, sv)
		if err != nil {
			p.abort()
			return "", err
		}
		rows := []store.MetricRow{{Sample: id, Pass: "jacobian", Layer: -1, Head: -1, Metric: "position", Value: float64(pos)}}
		if err := p.run.WriteDerived("jacobian", id, t, rows); err != nil {
			p.abort()
			return "", err
		}
		if progress != nil {
			done++
			progress(done, s.shardCount(len(exs), "ex%05d"))
		}
	}
	return p.dest, p.commitSummarized("diagnose-jacobian", len(exs), "ex%05d", s.opts.Shard)
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
	p, err := s.create(ctx)
	if err != nil {
		return "", err
	}
	if err := p.run.PreparePass("layernorm", store.PassSettings{Function: "diagnose.LayerNormStd", Input: "model", Kwargs: s.settings(),
		Axes: []store.Axis{{Name: store.AxisLayer}, {Name: store.AxisCriterion, Labels: []string{"attn", "mlp"}}, {Name: AxisToken}}}); err != nil {
		p.abort()
		return "", err
	}
	done := 0
	for i, b := range bs {
		if !s.opts.Shard.Has(fmt.Sprintf("b%05d", i)) {
			continue
		}
		l.b.calls = uint64(i) // dropout masks keyed by the batch, sharded or not
		v, shape, err := l.Batch(b, s.opts.MaxLen)
		if err == nil {
			var t *tensor.Tensor
			if t, err = tensor.FromFloat64([]int{shape[0] / 2, 2, shape[1]}, v); err == nil {
				err = p.run.WriteDerived("layernorm", fmt.Sprintf("b%05d", i), t, nil)
			}
		}
		if err != nil {
			p.abort()
			return "", fmt.Errorf("batch %d: %w", i, err)
		}
		if progress != nil {
			done++
			progress(done, s.shardCount(len(bs), "b%05d"))
		}
	}
	return p.dest, p.commitSummarized("diagnose-layernorm", len(bs), "b%05d", s.opts.Shard)
}

// RunPerturb writes ‖o₁ − o₂‖₂ per example of every batch as
// derived/perturb/<bNNNNN>.npy [record].
func RunPerturb(ctx context.Context, s *Setup, sigma float64, progress func(done, total int)) (string, error) {
	bs, err := s.batches(s.opts.Batches, s.opts.BatchSize)
	if err != nil {
		return "", err
	}
	pt, err := NewPerturbation(s.Net, s.Mode, s.opts.Backend, sigma, s.opts.Seed)
	if err != nil {
		return "", err
	}
	defer pt.Close()
	p, err := s.create(ctx)
	if err != nil {
		return "", err
	}
	kw := s.settings()
	kw["std"] = sigma
	if err := p.run.PreparePass("perturb", store.PassSettings{Function: "diagnose.Perturbation", Input: "model", Kwargs: kw,
		Axes: []store.Axis{{Name: store.AxisRecord}}}); err != nil {
		p.abort()
		return "", err
	}
	var dists []float64
	for i, b := range bs {
		v, err := pt.Batch(b)
		dists = append(dists, v...)
		if err == nil {
			var t *tensor.Tensor
			if t, err = tensor.FromFloat64([]int{len(v)}, v); err == nil {
				err = p.run.WriteDerived("perturb", fmt.Sprintf("b%05d", i), t, nil)
			}
		}
		if err != nil {
			p.abort()
			return "", fmt.Errorf("batch %d: %w", i, err)
		}
		if progress != nil {
			progress(i+1, len(bs))
		}
	}
	if err := writeDensity(p.run, PerturbDensity, "diagnose.Perturbation density", "‖o₁ − o₂‖₂ of the last [CLS] vector, per example", kw, dists); err != nil {
		p.abort()
		return "", err
	}
	return p.dest, p.commit()
}

// RunConfusion accumulates the loss gradient of every parameter over
// accumulation mini-batches of BatchSize/accumulation examples (g_t = mean of
// the accumulation gradients), for Batches steps t, and writes every pair's
// comparison as derived/confusion/pairs.npy [record, column(i, j, cosine, dot, l2)].
func RunConfusion(ctx context.Context, s *Setup, accumulation int, progress func(done, total int)) (string, error) {
	if accumulation < 1 || s.opts.BatchSize%accumulation != 0 {
		return "", fmt.Errorf("--accumulation %d must be positive and divide --batch-size %d", accumulation, s.opts.BatchSize)
	}
	if s.opts.Batches < 2 {
		return "", fmt.Errorf("--batches %d: gradient confusion compares at least 2 gradients", s.opts.Batches)
	}
	mini := s.opts.BatchSize / accumulation
	bs, err := s.batches(s.opts.Batches*accumulation, mini)
	if err != nil {
		return "", err
	}
	if len(bs) < 2*accumulation {
		return "", fmt.Errorf("the inputs hold %d examples, fewer than 2 steps of %d", len(s.Examples), s.opts.BatchSize)
	}
	g, err := NewGradients(s.Net, s.Mode, s.opts.Backend)
	if err != nil {
		return "", err
	}
	defer g.Close()
	var gs [][]float64
	var acc []float64
	for i, b := range bs {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		v, err := g.Batch(b)
		if err != nil {
			return "", fmt.Errorf("mini-batch %d: %w", i, err)
		}
		if acc == nil {
			acc = v
		} else {
			for k := range acc {
				acc[k] += v[k]
			}
		}
		if (i+1)%accumulation == 0 {
			for k := range acc {
				acc[k] /= float64(accumulation)
			}
			gs, acc = append(gs, acc), nil
		}
		if progress != nil {
			progress(i+1, len(bs))
		}
	}
	ps := ComparePairs(gs)
	rows := make([]float64, 0, 5*len(ps.I))
	for k := range ps.I {
		rows = append(rows, float64(ps.I[k]), float64(ps.J[k]), ps.Cosine[k], ps.Dot[k], ps.Dist[k])
	}
	t, err := tensor.FromFloat64([]int{len(ps.I), 5}, rows)
	if err != nil {
		return "", err
	}
	p, err := s.create(ctx)
	if err != nil {
		return "", err
	}
	kw := s.settings()
	kw["accumulation"] = accumulation
	kw["loss"] = map[bool]string{true: "mean squared error (regression)", false: "cross-entropy"}[s.Labels == 1]
	kw["gradient_steps"] = len(gs)
	if err := p.run.PreparePass("confusion", store.PassSettings{Function: "diagnose.ComparePairs", Input: "model", Kwargs: kw,
		Axes: []store.Axis{{Name: store.AxisRecord}, {Name: store.AxisColumn, Labels: []string{"i", "j", "cosine", "dot", "l2"}}}}); err != nil {
		p.abort()
		return "", err
	}
	if err := p.run.WriteDerived("confusion", "pairs", t, nil); err != nil {
		p.abort()
		return "", err
	}
	if err := writeDensity(p.run, ConfusionDensity, "diagnose.ComparePairs density", "cosine between the gradients of every pair of steps", kw, ps.Cosine); err != nil {
		p.abort()
		return "", err
	}
	return p.dest, p.commit()
}
