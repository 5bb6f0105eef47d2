package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/internal/progress"
	"github.com/attnscope/attnscope/intervene"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/tasks"
	"github.com/attnscope/attnscope/tokenizer"
	"github.com/attnscope/attnscope/viz"
)

// interveneFlags are the settings shared by the intervene subcommands.
type interveneFlags struct {
	modelDir, task, out, backend, variant string
	params                                []string
	n                                     int
	seed                                  int64
	threshold, value                      float64
}

func newInterveneCmd() *cobra.Command {
	f := &interveneFlags{}
	cmd := &cobra.Command{
		Use:   "intervene (sweep|reinforce) --model DIR --task GENERATOR --out DIR",
		Short: "Edit attention during the forward pass over AttentionSpan task samples: head-ablation sweeps and attention reinforcement",
		Long: `intervene sweep zeroes each head's output (blocks.<l>.attn.hook_z) alone and measures
cross-entropy on the targets and token accuracy; intervene reinforce edits each head's
pattern (blocks.<l>.attn.hook_pattern) on the sample's labelled reference cells, as
AttentionSpan's notebooks do: --variant reinforce adds --value (1) where the probability
is at least --threshold, without renormalising; zero sets the cells to 0; noise adds
N(0, value²); random adds value to as many random unlabelled causal cells per row (a
control). Both rank the heads by gain (clean cross-entropy − edited) and write
OUT/<name>.csv, OUT/<name>.json and the layer × head heatmap OUT/<name>.svg.`,
		Example: `  attnscope intervene sweep --model models/default --task LongAdditionGenerator \
      --param length=1,4 --param num_of_nums=2,2 --n 100 --out out/ablation
  attnscope intervene reinforce --model models/default --task LongAdditionGenerator \
      --param length=5,10 --param num_of_nums=2,2 --threshold 0.003 --out out/reinforce`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"sweep", "reinforce"},
		RunE:      func(cmd *cobra.Command, args []string) error { return f.run(cmd, args[0]) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.modelDir, "model", "", "model folder (config.json, model.safetensors, tokenizer.json)")
	fl.StringVar(&f.task, "task", "", "AttentionSpan generator (attnscope tasks list)")
	fl.StringArrayVar(&f.params, "param", nil, "generator parameter NAME=VALUE (repeatable; ranges as lo,hi)")
	fl.IntVar(&f.n, "n", 100, "number of samples")
	fl.Int64Var(&f.seed, "seed", 42, "generator seed")
	fl.StringVar(&f.out, "out", "", "output folder")
	fl.StringVar(&f.variant, "variant", "reinforce", "reinforce: reinforce | zero | noise | random")
	fl.Float64Var(&f.threshold, "threshold", 0.003, "reinforce: edit only cells whose probability is at least this")
	fl.Float64Var(&f.value, "value", 1, "reinforce/random: added value; noise: standard deviation")
	fl.StringVar(&f.backend, "backend", "", "GoMLX backend (default: $GOMLX_BACKEND, else the pure-Go backend)")
	return cmd
}

func (f *interveneFlags) run(cmd *cobra.Command, what string) error {
	if what != "sweep" && what != "reinforce" {
		return usagef(cmd, "the experiment must be sweep or reinforce, got %q", what)
	}
	if f.modelDir == "" || f.task == "" || f.out == "" {
		return usagef(cmd, "--model, --task and --out are required")
	}
	if what == "reinforce" && !containsVariant(intervene.Variant(f.variant)) {
		return usagef(cmd, "--variant must be reinforce, zero, noise or random, got %q", f.variant)
	}
	m, samples, err := f.load()
	if err != nil {
		return err
	}
	defer m.Close()
	cfg := m.Config()
	tr := progress.New(cmd.ErrOrStderr(), "intervene "+what, "heads", cfg.Layers*cfg.Heads)
	last := 0
	report := func(done, _ int) { tr.Finish(fmt.Sprintf("head %d", done-1), done-last, ""); last = done }
	res := &intervene.Result{Samples: len(samples)}
	if what == "sweep" {
		res.Experiment = "head ablation (hook_z zeroed)"
		res.Clean, res.Heads, err = intervene.Ablation(cmd.Context(), m, samples, tasks.DefaultIgnoreIndex, report)
	} else {
		st := intervene.Setting{Variant: intervene.Variant(f.variant), Threshold: f.threshold, Value: f.value, Seed: uint64(f.seed)}
		res.Experiment, res.Setting = "attention "+f.variant+" on labelled cells, per head", &st
		res.Clean, res.Heads, err = intervene.PerHead(cmd.Context(), m, samples, tasks.DefaultIgnoreIndex, st, report)
	}
	tr.Close()
	if err != nil {
		return err
	}
	name := "ablation"
	if what == "reinforce" {
		name = "reinforce_" + f.variant
	}
	return f.write(cmd, res, filepath.Join(f.out, name), cfg.Layers, cfg.Heads)
}

func containsVariant(v intervene.Variant) bool {
	for _, x := range intervene.Variants {
		if x == v {
			return true
		}
	}
	return false
}

// load loads the model and draws the samples with the model folder's tokenizer.
func (f *interveneFlags) load() (model.Model, []*tasks.Sample, error) {
	params := map[string]any{"seed": f.seed}
	for _, p := range f.params {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, nil, fmt.Errorf("--param %q: expected NAME=VALUE", p)
		}
		params[k] = v
	}
	tk, err := tokenizer.Load(f.modelDir)
	if err != nil {
		return nil, nil, err
	}
	m, err := model.Load(f.modelDir, model.LoadOptions{Backend: f.backend})
	if err != nil {
		return nil, nil, err
	}
	cfg := m.Config()
	if cfg.BOSTokenID == nil || len(cfg.EOSTokenIDs) == 0 {
		m.Close()
		return nil, nil, fmt.Errorf("%s: config.json needs bos_token_id and eos_token_id for task samples", filepath.Join(f.modelDir, "config.json"))
	}
	tt, err := tasks.NewHFTokenizer(tk, *cfg.BOSTokenID, cfg.EOSTokenIDs[0])
	if err == nil {
		var samples []*tasks.Sample
		if samples, err = intervene.Samples(f.task, params, tt, f.n); err == nil {
			return m, samples, nil
		}
	}
	m.Close()
	return nil, nil, err
}

// write saves the table, the JSON and the heatmap, and prints the table.
func (f *interveneFlags) write(cmd *cobra.Command, res *intervene.Result, path string, layers, heads int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := res.Write(path); err != nil {
		return err
	}
	g := intervene.Grid(res.Heads, layers, heads, func(r intervene.HeadResult) float64 { return r.CEGain })
	var data []float64
	var rows, cols []string
	for l, row := range g {
		data = append(data, row...)
		rows = append(rows, fmt.Sprintf("L%d", l))
	}
	for h := range heads {
		cols = append(cols, fmt.Sprintf("H%d", h))
	}
	mat, err := viz.NewMatrix(layers, heads, data)
	if err != nil {
		return err
	}
	fig, err := viz.Heatmap(mat, viz.HeatmapOptions{Title: res.Experiment, XLabel: "head", YLabel: "layer", RowLabels: rows, ColLabels: cols,
		Colormap: viz.Viridis, ColorbarLabel: "cross-entropy gain (clean − edited, nats)", XLabelRotation: 0.0001})
	if err != nil {
		return err
	}
	if err := fig.Save(path + ".svg"); err != nil {
		return err
	}
	res.WriteText(cmd.OutOrStdout())
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s.csv, %s.json, %s.svg\n", path, path, path)
	return nil
}
