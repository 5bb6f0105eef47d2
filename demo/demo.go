// Package demo is the pipeline of attnscope demo: it takes the bundled default model
// (a small GPT-2 trained by attnscope on long addition) or retrains it, evaluates it in
// and out of distribution, captures the attention of a few samples into a run folder,
// draws AttentionSpan's reference-token figures, derives the analyses of
// configs/demo-derive.yaml and writes an HTML report and an index page that explains
// each result.
package demo

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
	"github.com/attnscope/attnscope/tensor"
	"github.com/attnscope/attnscope/train"
	"github.com/attnscope/attnscope/viz"
)

// Options configure a demo run.
type Options struct {
	// Out is the report folder. It is created; an existing folder is used only if it
	// is empty or a demo made it (it holds MarkerFile).
	Out string
	// Retrain trains the default model again from Config (with Overrides, key=value)
	// instead of using the bundled one.
	Retrain   bool
	Config    string
	Overrides []string
	// Figures is the number of samples per dataset to capture and draw.
	Figures int
	// Stdout receives the summary, Stderr the progress lines.
	Stdout, Stderr io.Writer
}

// MarkerFile marks a folder the demo created, which a later demo may replace.
const MarkerFile = ".attnscope-demo"

// prepareOut creates opt.Out, or accepts it when it is empty or made by a demo.
func prepareOut(out string) error {
	ents, err := os.ReadDir(out)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("demo --out %s: %w", out, err)
	case len(ents) > 0:
		if _, err := os.Stat(filepath.Join(out, MarkerFile)); err != nil {
			return fmt.Errorf("demo --out %s: the folder is not empty and was not made by attnscope demo; give a new or empty folder", out)
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("demo --out %s: %w", out, err)
	}
	return atomicfile.WriteFile(filepath.Join(out, MarkerFile), []byte("made by attnscope demo; a later demo may replace this folder\n"))
}

// Run runs the demo pipeline and writes opt.Out.
func Run(ctx context.Context, opt Options) error {
	if err := prepareOut(opt.Out); err != nil {
		return err
	}
	return runDemo(ctx, opt.Stdout, opt.Stderr, opt.Out, opt.Config, opt.Retrain, opt.Figures, opt.Overrides)
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
	if err := WriteReport(out, rep); err != nil {
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
		for i, k := range keep {
			if err := referenceFigures(run, inputs[i].ID, k.sample, figDir); err != nil {
				return err
			}
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
		figNote = fmt.Sprintf("analyses (%s): %d passes over %d samples, %d metric rows added to %s",
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
	PrintReport(&sb, rep)
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
	model := fmt.Sprintf("%s, %d layers × %d heads × %d wide GPT-2, character tokenizer", e.Name, cfg.NLayer, cfg.NHead, cfg.NEmbd)
	if err := writeDemoIndex(filepath.Join(out, "index.html"), sb.String(), out, model, rep, headNote, len(inputs) > 0); err != nil {
		return err
	}
	_, err = io.WriteString(stdout, sb.String())
	return err
}

// referenceFigures draws the rollout of a captured sample's attention with its
// reference labels (outline and scores-on-reference views).
func referenceFigures(run *store.Run, id string, s *tasks.Sample, dir string) error {
	n := len(s.InputIDs)
	att, err := run.Attention(id) // [layer, head, query, key]
	if err != nil {
		return err
	}
	if att.Shape[2] != n || att.Shape[3] != n {
		return fmt.Errorf("sample %s: captured %d×%d attention for %d input tokens", id, att.Shape[2], att.Shape[3], n)
	}
	return DrawReference(dir, id, s, att)
}

// DrawReference saves AttentionSpan's two reference-token figures of a sample
// (rollout of att with the sample's labels) as dir/<id>-reference.png and
// dir/<id>-scores-on-reference.png.
func DrawReference(dir, id string, s *tasks.Sample, att *tensor.Tensor) error {
	n := att.Shape[len(att.Shape)-1]
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
		f, err := viz.Reference(m, labels, toks, toks, v.mode, fmt.Sprintf("%s: %s, i.e. %s (rollout)", id, strings.TrimSpace(s.Text), UsualSum(s.Text)))
		if err != nil {
			return err
		}
		if err := f.Save(filepath.Join(dir, id+"-"+v.name+".png")); err != nil {
			return err
		}
	}
	return nil
}

// AttentionTensor stacks the training graph's [L][H] n×n float32 matrices into a
// [layer, head, n, n] tensor.
func AttentionTensor(a [][][]float32, n int) *tensor.Tensor {
	H := 0
	if len(a) > 0 {
		H = len(a[0])
	}
	out := tensor.New(len(a), H, n, n)
	for l, heads := range a {
		for h, m := range heads {
			for i, x := range m[:min(len(m), n*n)] {
				out.Data[(l*H+h)*n*n+i] = float64(x)
			}
		}
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
				fmt.Fprintf(&note, "%s: head %s puts the most attention on the reference digits (mean share %.3f)\n", ds, report.HeadName(bestL, bestH), best)
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
		roll, err := evaluate.AggregateAttention(AttentionTensor(attn, len(s.InputIDs)), nil)
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
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>attnscope demo: where a small model looks when it adds</title>
<style>
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;max-width:62em;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}.lead{color:#555;margin-top:0}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
.cards{display:flex;flex-wrap:wrap;gap:1em}.card{flex:1 1 16em;border:1px solid #ddd;border-radius:6px;padding:.8em 1em;background:#fafafa}
.card b{font-size:1.05em}.small{font-size:.9em;color:#555}pre{background:#f4f4f4;padding:.8em;white-space:pre-wrap;font-size:.85em}
figure{display:inline-block;margin:.5em;vertical-align:top;max-width:30em}img{max-width:100%;border:1px solid #eee}figcaption{font-size:.9em}
ul.files li{margin:.2em 0}code{background:#f4f4f4;padding:0 .2em}
</style></head><body>
<h1>Where does a small model look when it adds?</h1>
<p class="lead">attnscope demo: {{.Model}}</p>

<h2>What was done</h2>
<p>A small GPT-2 (trained by attnscope on long addition) was asked to complete sums. It was
tested on sums like the ones it was trained on (<b>in distribution</b>, 1–4 digit numbers) and
on longer ones it never saw (<b>out of distribution</b>, 5–10 digits). For every answer digit we
know which digits of the question it depends on: these are the <b>reference tokens</b>. The demo
measures how much of the model's attention lands on them.</p>
<p class="small">The task writes every number with its digits reversed (least significant digit
first), as AttentionSpan does, because that is the order in which a person adds with carries:
<code>1410+3260+4150=8721</code> is 0141 + 0623 + 0514 = 1278. Each figure shows the sum the usual way beside it.</p>

<h2>Results</h2>
<div class="cards">
{{range .Datasets}}<div class="card"><b>{{.Name}}</b><br>{{.Samples}} sums<br>exact-match accuracy <b>{{.Accuracy}}</b><br>
digits right (piecewise) {{.Piecewise}}<br>{{if .Reference}}attention on reference tokens {{.Reference}}{{end}}</div>
{{end}}</div>
{{if .Comparison}}<p>{{.Comparison}}</p>{{end}}
{{if .Heads}}<p>{{.Heads}}</p>{{end}}

{{if .Figures}}<h2>Reference tokens</h2>
<p>Each picture is the attention <b>rollout</b> of one sum (how much every output position draws on every
input position through all layers; brighter = more). The <span style="color:#c00">red outlines</span> mark the
reference cells: the question digits each answer digit needs. A model that adds the way we would puts its
brightest cells inside the outlines.</p>
{{range .Figures}}<figure><img src="figures/{{.File}}" alt="{{.Caption}}"><figcaption>{{.Caption}}</figcaption></figure>
{{end}}{{end}}

<h2>Everything else</h2>
<ul class="files">
<li><a href="results.json">results.json</a>, <a href="summary.csv">summary.csv</a>, <a href="samples.csv">samples.csv</a>: the evaluation, per dataset and per sum</li>
<li><a href="heads.csv">heads.csv</a>: for every head (named L&lt;layer&gt; H&lt;head&gt;), its mean share of attention on the reference digits</li>
{{if .Run}}<li><a href="run/report.html">run/report.html</a>: the captured attention of these sums, layer by layer and head by head, with the derived analyses (rollout, entropy, sparsity, Jensen–Shannon distances, head collapse)</li>{{end}}
<li><a href="model/">model/</a>: the model used (a Hugging Face GPT-2 checkpoint)</li>
</ul>
<details><summary>Console summary</summary><pre>{{.Summary}}</pre></details>
</body></html>
`))

// indexFigure is a reference figure on the index page.
type indexFigure struct{ File, Caption string }

// indexDataset is one result card.
type indexDataset struct{ Name, Samples, Accuracy, Piecewise, Reference string }

// writeDemoIndex writes the demo's index.html: what was done and what each result
// means in plain words, the result cards, the reference figures and links to the
// other outputs (relative, so the folder can move).
func writeDemoIndex(path, summary, out, model string, rep *evaluate.Report, heads string, run bool) error {
	var figs []indexFigure
	entries, _ := os.ReadDir(filepath.Join(out, "figures"))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), "-reference.png") && !strings.Contains(e.Name(), "scores-on") {
			ds := "in distribution"
			if strings.HasPrefix(e.Name(), "dataset2") {
				ds = "out of distribution"
			}
			figs = append(figs, indexFigure{e.Name(), fmt.Sprintf("sum %s (%s)", strings.TrimSuffix(e.Name(), "-reference.png"), ds)})
		}
	}
	data := map[string]any{"Summary": summary, "Run": run, "Figures": figs, "Model": model,
		"Heads": strings.ReplaceAll(strings.TrimSpace(heads), "\n", "; ")}
	for i, d := range []*evaluate.DatasetResult{rep.ID, rep.OOD} {
		card := indexDataset{Name: [2]string{"In distribution", "Out of distribution"}[i] + " (" + d.Name + ")", Samples: strconv.Itoa(d.N),
			Accuracy: fmt.Sprintf("%.1f%%", d.Accuracy), Piecewise: fmt.Sprintf("%.1f%%", d.Piecewise.PiecewiseAccuracy)}
		if e := d.AttentionEval; e != nil {
			card.Reference = fmt.Sprintf("%.1f%% (95%% CI %.1f–%.1f%%)", 100*e.Mean, 100*e.CILower, 100*e.CIUpper)
		}
		data["Datasets"] = append(asCards(data["Datasets"]), card)
	}
	if c := rep.Comparison; c != nil && c.TStat != nil {
		data["Comparison"] = fmt.Sprintf("Does the model look at the reference digits more on familiar sums? Welch's t-test of the two shares: t = %.2f, %s.", *c.TStat, FormatP(*c.PValue))
	}
	return atomicfile.WriteWith(path, func(w io.Writer) error { return demoIndex.Execute(w, data) })
}

func asCards(v any) []indexDataset {
	c, _ := v.([]indexDataset)
	return c
}

// UsualSum writes a reversed-digit sum of the addition task ("1410+3260+4150=8721")
// the usual way ("141 + 623 + 514 = 1278"); other text is returned as is.
func UsualSum(text string) string {
	text = strings.TrimSpace(text)
	lhs, rhs, ok := strings.Cut(text, "=")
	if !ok || strings.Trim(text, "0123456789+=") != "" {
		return text
	}
	rev := func(d string) string {
		r := []rune(d)
		for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
			r[i], r[j] = r[j], r[i]
		}
		if s := strings.TrimLeft(string(r), "0"); s != "" {
			return s
		}
		return "0"
	}
	var terms []string
	for _, t := range strings.Split(lhs, "+") {
		terms = append(terms, rev(t))
	}
	return strings.Join(terms, " + ") + " = " + rev(rhs)
}

// WriteReport writes an evaluation report as results.json, summary.csv and
// samples.csv in dir.
func WriteReport(dir string, rep *evaluate.Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := rep.WriteJSON(filepath.Join(dir, "results.json")); err != nil {
		return err
	}
	return rep.WriteCSV(dir)
}

// PrintReport writes an evaluation report's summary lines.
func PrintReport(w io.Writer, rep *evaluate.Report) {
	for _, d := range []*evaluate.DatasetResult{rep.ID, rep.OOD} {
		fmt.Fprintf(w, "%s: %d samples, exact-match accuracy %.1f%%, piecewise %.1f%%", d.Name, d.N, d.Accuracy, d.Piecewise.PiecewiseAccuracy)
		if e := d.AttentionEval; e != nil {
			fmt.Fprintf(w, ", attention on reference tokens %.3f (95%% CI %.3f–%.3f, %d rows)", e.Mean, e.CILower, e.CIUpper, e.N)
		}
		fmt.Fprintln(w)
	}
	if c := rep.Comparison; c != nil && c.TStat != nil {
		fmt.Fprintf(w, "dataset1 vs dataset2 reference attention: Welch t = %.3f, df = %.1f, %s\n", *c.TStat, *c.DF, FormatP(*c.PValue))
	} else if rep.ComparisonError != "" {
		fmt.Fprintf(w, "dataset1 vs dataset2: %s\n", rep.ComparisonError)
	}
}

// FormatP writes a p-value for people: "p = 3.6e-05", or "p < 1e-300" below what a
// float64 resolves (a p-value that underflowed to 0 is not zero).
func FormatP(p float64) string {
	if p < 1e-300 {
		return "p < 1e-300"
	}
	return fmt.Sprintf("p = %.3g", p)
}
