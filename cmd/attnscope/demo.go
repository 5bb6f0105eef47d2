package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/capture"
	"github.com/attnscope/attnscope/configs"
	"github.com/attnscope/attnscope/derive"
	"github.com/attnscope/attnscope/evaluate"
	"github.com/attnscope/attnscope/internal/atomicfile"
	defaultmodel "github.com/attnscope/attnscope/models/default"
	"github.com/attnscope/attnscope/report"
	"github.com/attnscope/attnscope/stats"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tasks"
	"github.com/attnscope/attnscope/train"
	"github.com/attnscope/attnscope/viz"
)

func newDemoCmd() *cobra.Command {
	var (
		out, config string
		retrain     bool
		figures     int
	)
	c := &cobra.Command{
		Use:   "demo [key=value ...]",
		Short: "Evaluate the bundled default model in and out of distribution and write a report folder",
		Long: `The main job on a fresh machine, with nothing to download. It takes the bundled default
model (a small GPT-2 trained by attnscope itself on long addition, models/default) or, with
--retrain, trains it again from --config; evaluates it on in-distribution (1-4 digit)
and out-of-distribution (5-10 digit) sums: exact-match and piecewise accuracy, error
positions, the share of rollout attention on the reference digits and its Welch tests;
captures the attention of a few samples with the model runtime into a run folder; draws
AttentionSpan's reference-token figures; runs the analyses of configs/demo-derive.yaml
(embedded: rollout, entropy, max weight, sparsity, attention received, crispiness,
Jensen-Shannon distances, head diversity and collapse) over the run through derive;
writes an HTML report of the run; and prints where everything is. Contents of --out:
  model/           the model folder used (Hugging Face GPT-2 checkpoint)
  results.json, summary.csv, samples.csv   evaluation (spec §2.5)
  heads.csv        per layer and head: mean share of raw attention on the reference digits
  run/             captured attention (store layout), derived/ outputs, metrics.csv and
                   metrics.parquet (the analyses and the reference shares), report.html
  figures/         reference-token figures of the captured samples
  README.txt       the summary printed at the end
  index.html       the summary, the figures and links to everything above
With --retrain, key=value arguments override the config (e.g. training.steps=500).`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if figures < 0 {
				return usagef(cmd, "--figures must be ≥ 0")
			}
			if len(args) > 0 && !retrain {
				return usagef(cmd, "config overrides (%s) need --retrain", strings.Join(args, " "))
			}
			return runDemo(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), out, config, retrain, figures, args)
		},
	}
	c.Flags().StringVar(&out, "out", "attnscope-demo", "report folder (created; files in it are replaced)")
	c.Flags().BoolVar(&retrain, "retrain", false, "train the default model again instead of using the bundled one")
	c.Flags().StringVar(&config, "config", filepath.Join("configs", "attentionspan", "default-addition.yaml"), "experiment config for --retrain")
	c.Flags().IntVar(&figures, "figures", 3, "samples per dataset to capture and draw")
	return c
}

func runDemo(ctx context.Context, stdout, stderr io.Writer, out, config string, retrain bool, nFig int, overrides []string) error {
	start := time.Now()
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	modelDir := filepath.Join(out, "model")
	be, err := train.Backend("")
	if err != nil {
		return err
	}
	var e *train.Experiment
	if retrain {
		e, err = train.LoadExperiment(config, append(overrides, "training.checkpoint_filepath="+modelDir, "training.save_checkpoint=true"))
		if err != nil {
			return err
		}
		logf("retraining the default model from %s (several minutes on 2 cores)", config)
		if _, err := train.RunTraining(ctx, e, train.RunOptions{Backend: be, Log: stderr}); err != nil {
			return err
		}
	} else {
		if err := defaultmodel.WriteTo(modelDir); err != nil {
			return err
		}
		b, err := defaultmodel.ReadFile("training.json")
		if err != nil {
			return fmt.Errorf("bundled model: %w", err)
		}
		var rec struct{ Experiment *train.Experiment }
		if err := json.Unmarshal(b, &rec); err != nil || rec.Experiment == nil {
			return fmt.Errorf("bundled model: training.json: expected the experiment config (%v)", err)
		}
		e = rec.Experiment
		logf("using the bundled default model (%s)", modelDir)
	}
	cfg, w, err := train.Load(modelDir)
	if err != nil {
		return err
	}

	// 1. Evaluation in and out of distribution, keeping a few samples to capture.
	var keep []kept
	heads := map[string]*headAcc{}
	logf("evaluating %d in-distribution and %d out-of-distribution samples", e.Evaluation.Dataset1.NumSamples, e.Evaluation.Dataset2.NumSamples)
	rep, err := train.Evaluate(ctx, e, cfg, w, train.EvalOptions{Backend: be, OnSample: func(ds string, i int, s *tasks.Sample, _ []int, attn [][][]float32) error {
		if i < nFig {
			keep = append(keep, kept{ds, i, s})
		}
		if s.Labels != nil {
			if heads[ds] == nil {
				heads[ds] = newHeadAcc(cfg.NLayer, cfg.NHead)
			}
			heads[ds].add(evaluate.HeadShares(attn, s.Labels, tasks.DefaultIgnoreIndex))
		}
		return nil
	}})
	if err != nil {
		return err
	}
	if err := writeReport(out, rep); err != nil {
		return err
	}
	headNote, err := writeHeads(filepath.Join(out, "heads.csv"), heads)
	if err != nil {
		return err
	}

	// 2. Capture the kept samples with the model runtime (package model) into a run folder.
	runDir := filepath.Join(out, "run")
	if err := os.RemoveAll(runDir); err != nil {
		return fmt.Errorf("replace %s: %w", runDir, err)
	}
	var inputs []capture.Input
	for _, k := range keep {
		// The sample's input ids are <bos> + its text (the final <eos> is never an input).
		inputs = append(inputs, capture.Input{ID: fmt.Sprintf("%s-%03d", k.dataset, k.index), Text: k.sample.Text})
	}
	var figNote string
	if len(inputs) > 0 {
		logf("capturing the attention of %d samples with the model runtime", len(inputs))
		if _, err := capture.Run(ctx, runDir, inputs, capture.Options{ModelDir: modelDir, Command: []string{"attnscope", "demo"}}); err != nil {
			return err
		}
		run, err := report.OpenRun(runDir)
		if err != nil {
			return err
		}
		// 3. AttentionSpan's reference figures from the captured attention.
		figDir := filepath.Join(out, "figures")
		if err := os.MkdirAll(figDir, 0o755); err != nil {
			return err
		}
		p, err := train.NewPredictor(be, cfg, w)
		if err != nil {
			return err
		}
		maxDiff := 0.0
		for i, k := range keep {
			d, err := referenceFigures(ctx, run, inputs[i].ID, k.sample, figDir, p)
			if err != nil {
				return err
			}
			maxDiff = math.Max(maxDiff, d)
		}
		// 4. The general analyses (configs/demo-derive.yaml) through package derive; its
		// metrics table is then extended with the AttentionSpan reference metrics.
		logf("deriving the analyses of %s over the run", configs.DemoDeriveName)
		derived, err := demoDerive(ctx, runDir)
		if err != nil {
			return err
		}
		if err := writeRunMetrics(runDir, run, keep2ids(inputs), keepSamples(keep)); err != nil {
			return err
		}
		figNote = fmt.Sprintf("runtime check: the captured attention (package model) and the training graph's differ by at most %.2g", maxDiff)
		figNote += fmt.Sprintf("\nanalyses (%s): %d passes over %d samples, %d metric rows added to %s",
			configs.DemoDeriveName, derived.passes, derived.Samples, derived.MetricRows, filepath.Join(runDir, store.MetricsCSV))
		// 5. HTML report of the captured run.
		err = atomicfile.WriteWith(filepath.Join(runDir, "report.html"), func(wr io.Writer) error {
			return report.WriteHTML(ctx, wr, run, report.HTMLOptions{})
		})
		if err != nil {
			return err
		}
	}

	var sb strings.Builder
	fmt.Fprintf(&sb, "attnscope demo: %s (%d layers × %d heads × %d wide GPT-2, character tokenizer)\n", e.Name, cfg.NLayer, cfg.NHead, cfg.NEmbd)
	printReport(&sb, rep)
	fmt.Fprint(&sb, headNote)
	if figNote != "" {
		fmt.Fprintln(&sb, figNote)
	}
	fmt.Fprintf(&sb, "report folder: %s (open %s)\n", out, filepath.Join(out, "index.html"))
	fmt.Fprintf(&sb, "  %s  evaluation (JSON), summary.csv and samples.csv beside it\n", filepath.Join(out, "results.json"))
	fmt.Fprintf(&sb, "  %s  share of each head's attention on the reference digits\n", filepath.Join(out, "heads.csv"))
	if len(inputs) > 0 {
		fmt.Fprintf(&sb, "  %s  HTML report of the captured attention\n", filepath.Join(runDir, "report.html"))
		fmt.Fprintf(&sb, "  %s  reference-token figures (rollout; red outlines = reference digits)\n", filepath.Join(out, "figures"))
	}
	fmt.Fprintf(&sb, "finished in %s\n", time.Since(start).Round(100*time.Millisecond))
	if err := atomicfile.WriteFile(filepath.Join(out, "README.txt"), []byte(sb.String())); err != nil {
		return err
	}
	if err := writeDemoIndex(filepath.Join(out, "index.html"), sb.String(), out, len(inputs) > 0); err != nil {
		return err
	}
	_, err = io.WriteString(stdout, sb.String())
	return err
}

// referenceFigures draws the rollout of a captured sample's attention with its
// reference labels (outline and scores-on-reference views) and returns the
// largest difference between the captured attention and the training graph's.
func referenceFigures(ctx context.Context, run *store.Run, id string, s *tasks.Sample, dir string, p *train.Predictor) (float64, error) {
	n := len(s.InputIDs)
	nl, err := run.NumLayers(id)
	if err != nil {
		return 0, err
	}
	att := evaluate.Attention{N: n}
	var captured [][][]float32
	for l := 0; l < nl; l++ {
		a, err := run.AttentionLayer(id, l)
		if err != nil {
			return 0, err
		}
		if a.Shape[1] != n || a.Shape[2] != n {
			return 0, fmt.Errorf("sample %s: captured %d×%d attention for %d input tokens", id, a.Shape[1], a.Shape[2], n)
		}
		var heads [][]float64
		var heads32 [][]float32
		for h := 0; h < a.Shape[0]; h++ {
			heads = append(heads, a.Sub(h).Data)
			heads32 = append(heads32, a.Sub(h).Float32())
		}
		att.Layers = append(att.Layers, heads)
		captured = append(captured, heads32)
	}
	// Cross-check with the training graph on the same ids.
	pr, err := p.Predict(ctx, [][]int{s.InputIDs}, true)
	if err != nil {
		return 0, err
	}
	diff := 0.0
	for l := range captured {
		for h := range captured[l] {
			for i, v := range captured[l][h] {
				diff = math.Max(diff, math.Abs(float64(v-pr.Attention[0][l][h][i])))
			}
		}
	}
	if err := drawReference(dir, id, s, att); err != nil {
		return 0, err
	}
	return diff, nil
}

// drawReference saves AttentionSpan's two reference-token figures of a sample
// (rollout of att with the sample's labels) as dir/<id>-reference.png and
// dir/<id>-scores-on-reference.png.
func drawReference(dir, id string, s *tasks.Sample, att evaluate.Attention) error {
	n := att.N
	roll, err := evaluate.AggregateAttention(att, nil)
	if err != nil {
		return err
	}
	m, err := viz.NewMatrix(n, n, roll)
	if err != nil {
		return err
	}
	labels := make([]int, n*n)
	for i, v := range s.Labels.Cells {
		labels[i] = int(v)
	}
	tok := train.Tokenizer()
	toks := make([]string, n)
	for i, id := range s.InputIDs {
		toks[i] = tok.Token(id)
	}
	for _, v := range []struct {
		mode viz.ReferenceMode
		name string
	}{{viz.ReferenceOutline, "reference"}, {viz.ReferenceScores, "scores-on-reference"}} {
		f, err := viz.Reference(m, labels, toks, toks, v.mode, fmt.Sprintf("%s: %s (rollout)", id, strings.TrimSpace(s.Text)))
		if err != nil {
			return err
		}
		if err := f.Save(filepath.Join(dir, id+"-"+v.name+".png")); err != nil {
			return err
		}
	}
	return nil
}

// float64Attention converts [L][H] T×T float32 matrices for evaluate.
func float64Attention(a [][][]float32, n int) evaluate.Attention {
	out := evaluate.Attention{N: n}
	for _, heads := range a {
		var hs [][]float64
		for _, m := range heads {
			v := make([]float64, len(m))
			for i, x := range m {
				v[i] = float64(x)
			}
			hs = append(hs, v)
		}
		out.Layers = append(out.Layers, hs)
	}
	return out
}

// headAcc averages per-head reference shares over samples.
type headAcc struct {
	sum [][]float64
	n   [][]int
}

func newHeadAcc(layers, heads int) *headAcc {
	a := &headAcc{sum: make([][]float64, layers), n: make([][]int, layers)}
	for l := range a.sum {
		a.sum[l] = make([]float64, heads)
		a.n[l] = make([]int, heads)
	}
	return a
}

func (a *headAcc) add(shares [][]float64) {
	for l := range shares {
		for h, v := range shares[l] {
			if !math.IsNaN(v) {
				a.sum[l][h] += v
				a.n[l][h]++
			}
		}
	}
}

// writeHeads writes heads.csv (dataset, layer, head, reference_share_mean,
// samples) and returns a line per dataset naming the head that looks most at
// the reference digits.
func writeHeads(path string, heads map[string]*headAcc) (string, error) {
	var note strings.Builder
	err := atomicfile.WriteWith(path, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write([]string{"dataset", "layer", "head", "reference_share_mean", "samples"})
		for _, ds := range []string{"dataset1", "dataset2"} {
			a := heads[ds]
			if a == nil {
				continue
			}
			bestL, bestH, best := -1, -1, -1.0
			for l := range a.sum {
				for h := range a.sum[l] {
					if a.n[l][h] == 0 {
						continue
					}
					m := a.sum[l][h] / float64(a.n[l][h])
					cw.Write([]string{ds, strconv.Itoa(l), strconv.Itoa(h), strconv.FormatFloat(m, 'g', -1, 64), strconv.Itoa(a.n[l][h])})
					if m > best {
						bestL, bestH, best = l, h, m
					}
				}
			}
			if bestL >= 0 {
				fmt.Fprintf(&note, "%s: head %d.%d puts the most attention on the reference digits (mean share %.3f)\n", ds, bestL, bestH, best)
			}
		}
		cw.Flush()
		return cw.Error()
	})
	return note.String(), err
}

func keep2ids(in []capture.Input) []string {
	out := make([]string, len(in))
	for i, x := range in {
		out[i] = x.ID
	}
	return out
}

// kept is an evaluated sample the demo captures and draws.
type kept struct {
	dataset string
	index   int
	sample  *tasks.Sample
}

func keepSamples(k []kept) []*tasks.Sample {
	out := make([]*tasks.Sample, len(k))
	for i, x := range k {
		out[i] = x.sample
	}
	return out
}

type demoDerived struct {
	*derive.Summary
	passes int
}

// demoDerive runs the passes of configs/demo-derive.yaml over the run in runDir:
// outputs in RUN/derived/<pass>/, scalars in the run's metrics table.
func demoDerive(ctx context.Context, runDir string) (demoDerived, error) {
	cfg, err := derive.ParseConfig(configs.DemoDeriveName, configs.DemoDerive(), derive.DefaultRegistry())
	if err != nil {
		return demoDerived{}, err
	}
	r, err := store.Open(runDir)
	if err != nil {
		return demoDerived{}, err
	}
	sum, err := derive.Derive(ctx, r, cfg, derive.Options{Workers: 2})
	if err != nil {
		return demoDerived{}, fmt.Errorf("derive %s: %w", runDir, err)
	}
	return demoDerived{sum, len(cfg.Passes)}, nil
}

// writeRunMetrics adds the AttentionSpan reference metrics of the captured
// samples to the run's metrics table (pass "attentionspan_reference"): per
// layer and head the share of raw attention on the reference tokens, and for
// the whole sample (layer = head = -1) the rollout share. The rows derive
// wrote before are kept.
func writeRunMetrics(runDir string, run *store.Run, ids []string, samples []*tasks.Sample) error {
	rows, err := store.ReadMetricsCSV(filepath.Join(runDir, store.MetricsCSV))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for i, id := range ids {
		s := samples[i]
		nl, err := run.NumLayers(id)
		if err != nil {
			return err
		}
		var attn [][][]float32
		for l := 0; l < nl; l++ {
			a, err := run.AttentionLayer(id, l)
			if err != nil {
				return err
			}
			var hs [][]float32
			for h := 0; h < a.Shape[0]; h++ {
				hs = append(hs, a.Sub(h).Float32())
			}
			attn = append(attn, hs)
		}
		for l, hs := range evaluate.HeadShares(attn, s.Labels, tasks.DefaultIgnoreIndex) {
			for h, v := range hs {
				rows = append(rows, store.MetricRow{Sample: id, Pass: "attentionspan_reference", Layer: int64(l), Head: int64(h), Metric: "reference_share", Value: v})
			}
		}
		roll, err := evaluate.AggregateAttention(float64Attention(attn, len(s.InputIDs)), nil)
		if err != nil {
			return err
		}
		p := evaluate.ComputePercentages(roll, s.Labels, tasks.DefaultIgnoreIndex)
		v := math.NaN()
		if len(p) > 0 {
			v = stats.Mean(p)
		}
		rows = append(rows, store.MetricRow{Sample: id, Pass: "attentionspan_reference", Layer: store.MetricAll, Head: store.MetricAll, Metric: "rollout_reference_share", Value: v})
	}
	return store.WriteMetrics(runDir, rows)
}

var demoIndex = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src 'self'; style-src 'unsafe-inline'">
<title>attnscope demo</title>
<style>body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}pre{background:#f4f4f4;padding:1em;white-space:pre-wrap}
figure{display:inline-block;margin:.5em}img{max-width:32em}</style></head><body>
<h1>attnscope demo</h1>
<pre>{{.Summary}}</pre>
<p>Files: <a href="results.json">results.json</a> · <a href="summary.csv">summary.csv</a> ·
<a href="samples.csv">samples.csv</a> · <a href="heads.csv">heads.csv</a> · <a href="model/">model/</a>
{{if .Run}} · <a href="run/report.html">run/report.html</a> (captured attention){{end}}</p>
{{if .Figures}}<h2>Reference tokens (rollout; red outlines = reference digits)</h2>
{{range .Figures}}<figure><img src="figures/{{.}}" alt="{{.}}"><figcaption>{{.}}</figcaption></figure>
{{end}}{{end}}
</body></html>
`))

// writeDemoIndex writes the demo's index.html: the summary, the reference
// figures and links to the other outputs (relative, so the folder can move).
func writeDemoIndex(path, summary, out string, run bool) error {
	var figs []string
	entries, _ := os.ReadDir(filepath.Join(out, "figures"))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), "-reference.png") && !strings.Contains(e.Name(), "scores-on") {
			figs = append(figs, e.Name())
		}
	}
	return atomicfile.WriteWith(path, func(w io.Writer) error {
		return demoIndex.Execute(w, map[string]any{"Summary": summary, "Run": run, "Figures": figs})
	})
}
