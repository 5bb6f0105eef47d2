package report

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/attnscope/attnscope/human"
	"github.com/attnscope/attnscope/internal/buildinfo"
	"github.com/attnscope/attnscope/store"
)

// HTMLOptions configure the HTML report.
type HTMLOptions struct {
	// MaxSamples limits the number of sample sections (0: all samples).
	MaxSamples int
	// ClipPercentile clips the colour scale of heatmaps and grids (0: none).
	ClipPercentile float64
	// DPI of the inlined PNG figures (default 110).
	DPI int
	// Progress, when set, is told when a sample's section and each of its figures
	// starts and finishes (attnscope report shows it as a bar or log lines).
	Progress func(ReportEvent)
	// Comparisons, when set, is a folder of comparator outputs (attnscope compare)
	// summarised in a Comparisons section (report/compare.go).
	Comparisons string
	// Figures selects the figures of each sample by kind name (ReportFigureNames) or by
	// derive pass name; a figure named here is drawn for every sample, with a note when
	// it cannot be. Empty: every kind the default report draws, the derive passes'
	// outputs for the first sample only, so that a run of many samples stays a page a
	// browser opens (under 10 MB for 10 samples of configs/derive-all.yaml).
	Figures []string
	// implicit: Figures was set by WriteHTML (later samples of a default report).
	implicit bool
}

// ReportEvent is a step of WriteHTML: a sample's section (Figure "") or one figure kind
// of it starting (Done false) or finished.
type ReportEvent struct {
	Sample       string
	Index, Total int // the sample's position (0-based) and the number of sections
	Figure       string
	Done         bool
}

// CheckFigures reports a name of figures that is neither a figure kind the report draws
// nor a pass of passes.
func CheckFigures(figures []string, passes []store.PassInfo) error {
	names := ReportFigureNames()
	for _, f := range figures {
		if slices.Contains(names, f) || slices.ContainsFunc(passes, func(p store.PassInfo) bool { return p.Name == f }) {
			continue
		}
		if k, err := LookupFigure(f); err == nil {
			return fmt.Errorf("figure %q is drawn by attnscope plot only: %s", f, k.NotInReport)
		}
		pn := make([]string, len(passes))
		for i, p := range passes {
			pn[i] = p.Name
		}
		return fmt.Errorf("figure %q: one of %s, or a derive pass of the run (%s) expected", f, strings.Join(names, ", "), strings.Join(pn, ", "))
	}
	return nil
}

// chosen reports whether the figure name was named in Figures by the caller.
func (o HTMLOptions) chosen(name string) bool { return !o.implicit && slices.Contains(o.Figures, name) }

// selects reports whether a sample section draws kind k: chosen by name (a kind drawn
// per derive pass is also selected when passes are named), or by default (no Figures
// given, or the implicit ones of later samples).
func (o HTMLOptions) selects(k *FigureKind) bool {
	switch {
	case o.implicit:
		return slices.Contains(o.Figures, k.Name)
	case len(o.Figures) == 0:
		return !k.report.optIn
	}
	return o.chosen(k.Name) || k.report.byPass
}

// Limits of the per-head Jensen–Shannon figure in the HTML report.
const (
	maxReportUnits      = 144
	maxReportUnitTokens = 256
)

// maxTableRows is the number of rows of a record list (recordColumns) the report shows;
// the rest are counted.
const maxTableRows = 50

// figure is an inlined figure of the report.
type figure struct {
	Kind    string // the figure kind (registry.go) that drew it
	Title   string
	DataURI template.URL
	HTML    template.HTML // alternative to an image (code heatmap)
	Note    string        // why the figure is missing
}

type sampleSection struct {
	ID, Anchor string
	Text       string
	NumTokens  int
	NumLayers  int
	PromptLen  int
	Figures    []figure
	Report     string // §3.3 text report when hidden states were captured
}

type metricTable struct {
	Metric  string
	Columns []string
	Rows    []metricRow
}

type metricRow struct {
	Name   string
	Values []string
}

type page struct {
	Dir, Version string
	Provenance   []kv
	LayerTables  []metricTable
	HeadTables   []metricTable
	NumSamples   int
	Nav          []navEntry
	Omitted      int
	// DerivedFirst: derived outputs are drawn for the first sample only.
	DerivedFirst bool
	// Human: the sessions and reading baselines of an eye-tracking run.
	Human *humanPage
	// RunOutputs: the run has run-level outputs (a Run outputs section).
	RunOutputs bool
}

type kv struct{ Key, Value string }

// WriteHTML writes one self-contained HTML file summarising a run: provenance
// (run.json), per-layer and per-head tables of the metrics table, and a section per
// sample with its figures (all-heads grid, last-layer heatmap, attention received,
// entropy and maximum-weight histograms, code heatmap, and the §3.3 dashboard and text
// report when hidden states were captured). Figures are inlined as data: URIs; the page
// has no script and a Content-Security-Policy that forbids any network fetch.
func WriteHTML(ctx context.Context, w io.Writer, run Run, o HTMLOptions) error {
	if o.DPI <= 0 {
		o.DPI = 110
	}
	progress := o.Progress
	if progress == nil {
		progress = func(ReportEvent) {}
	}
	ids, err := run.Samples()
	if err != nil {
		return err
	}
	pg := page{Dir: location(run), Version: buildinfo.Version(), NumSamples: len(ids), DerivedFirst: len(o.Figures) == 0 && len(ids) > 1}
	prov, err := run.Provenance()
	if err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(prov)) {
		v := prov[k]
		s, ok := v.(string)
		if !ok {
			b, _ := json.Marshal(v)
			s = string(b)
		}
		pg.Provenance = append(pg.Provenance, kv{k, s})
	}
	rows, err := run.Metrics()
	if err != nil {
		return err
	}
	pg.LayerTables, pg.HeadTables = metricTables(rows)
	if prov["kind"] == human.Kind {
		if pg.Human, err = humanSection(run, o.DPI); err != nil {
			return err
		}
	}
	if o.MaxSamples > 0 && len(ids) > o.MaxSamples {
		pg.Omitted = len(ids) - o.MaxSamples
		ids = ids[:o.MaxSamples]
	}
	for i, id := range ids {
		pg.Nav = append(pg.Nav, navEntry{ID: id, Anchor: anchor(i)})
	}
	outs, err := run.RunOutputs()
	if err != nil {
		return err
	}
	pg.RunOutputs = len(outs) > 0
	// Sections are rendered and written one sample at a time, so memory holds one
	// sample's figures however large the run.
	if err := pageTemplate.ExecuteTemplate(w, "head", pg); err != nil {
		return err
	}
	drawn, err := writeRunLevel(w, run, o)
	if err != nil {
		return err
	}
	attention := false
	for i, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		so := o
		if len(o.Figures) == 0 && i > 0 {
			so.Figures = FigureNames(func(k *FigureKind) bool { return k.InDefaultReport() && !k.report.firstSample })
			so.implicit = true
		}
		ev := ReportEvent{Sample: id, Index: i, Total: len(ids)}
		progress(ev)
		so.Progress = func(e ReportEvent) { e.Sample, e.Index, e.Total = id, i, len(ids); progress(e) }
		sec, err := sampleFigures(ctx, run, id, i, so)
		if err != nil {
			return err
		}
		attention = attention || sec.NumLayers > 0
		drawn = drawn || len(sec.Figures) > 0
		if err := pageTemplate.ExecuteTemplate(w, "sample", sec); err != nil {
			return err
		}
		ev.Done = true
		progress(ev)
	}
	if len(ids) > 0 && !attention && !drawn && pg.Human == nil {
		return fmt.Errorf("run %s has no attention captured and no derived outputs in any sample", run.Dir())
	}
	if o.Comparisons != "" {
		if err := writeComparisons(ctx, w, o.Comparisons, o.DPI); err != nil {
			return err
		}
	}
	return pageTemplate.ExecuteTemplate(w, "foot", pg)
}

func anchor(i int) string { return fmt.Sprintf("sample-%d", i) }

type navEntry struct{ ID, Anchor string }

// metricTables summarises the metrics table, every value the mean over samples: per
// pass, a layers × metrics table (a metric's value for a layer is its row with head
// MetricAll, or else the mean over the layer's heads); per per-head metric, a layers ×
// heads table.
func metricTables(rows []store.MetricRow) (layer, head []metricTable) {
	type key struct {
		pass, metric string
		layer, head  int64
	}
	sum := map[key]float64{}
	cnt := map[key]int{}
	passMetrics := map[string]map[string]bool{}
	for _, r := range rows {
		k := key{r.Pass, r.Metric, r.Layer, r.Head}
		sum[k] += r.Value
		cnt[k]++
		if passMetrics[r.Pass] == nil {
			passMetrics[r.Pass] = map[string]bool{}
		}
		passMetrics[r.Pass][r.Metric] = true
	}
	val := func(k key) (float64, bool) {
		if cnt[k] == 0 {
			return 0, false
		}
		return sum[k] / float64(cnt[k]), true
	}
	for _, pass := range slices.Sorted(maps.Keys(passMetrics)) {
		metrics := slices.Sorted(maps.Keys(passMetrics[pass]))
		layers, heads := map[int64]bool{}, map[string]map[int64]bool{}
		for k := range sum {
			if k.pass == pass {
				layers[k.layer] = true
				if k.head != store.MetricAll {
					if heads[k.metric] == nil {
						heads[k.metric] = map[int64]bool{}
					}
					heads[k.metric][k.head] = true
				}
			}
		}
		ls := slices.Sorted(maps.Keys(layers))
		lt := metricTable{Metric: pass, Columns: metrics}
		for _, l := range ls {
			r := metricRow{Name: layerName(l)}
			any := false
			for _, m := range metrics {
				v, ok := val(key{pass, m, l, store.MetricAll})
				if !ok {
					s, c := 0.0, 0
					for h := range heads[m] {
						if x, ok := val(key{pass, m, l, h}); ok {
							s += x
							c++
						}
					}
					v, ok = s/float64(max(c, 1)), c > 0
				}
				any = r.addValue(v, ok) || any
			}
			if any {
				lt.Rows = append(lt.Rows, r)
			}
		}
		layer = append(layer, lt)
		for _, m := range metrics {
			hs := slices.Sorted(maps.Keys(heads[m]))
			if len(hs) == 0 {
				continue
			}
			ht := metricTable{Metric: pass + "/" + m}
			for _, h := range hs {
				ht.Columns = append(ht.Columns, fmt.Sprintf("H%d", h))
			}
			for _, l := range ls {
				r := metricRow{Name: layerName(l)}
				any := false
				for _, h := range hs {
					v, ok := val(key{pass, m, l, h})
					any = r.addValue(v, ok) || any
				}
				if any {
					ht.Rows = append(ht.Rows, r)
				}
			}
			head = append(head, ht)
		}
	}
	return layer, head
}

// addValue appends v formatted, or an empty cell when !ok, and returns ok.
func (r *metricRow) addValue(v float64, ok bool) bool {
	if !ok {
		r.Values = append(r.Values, "")
		return false
	}
	r.Values = append(r.Values, fmtValue(v))
	return true
}

func layerName(l int64) string {
	if l == store.MetricAll {
		return "all layers"
	}
	return fmt.Sprintf("L%d", l)
}

func fmtValue(v float64) string { return fmt.Sprintf("%.4g", v) }

var pageTemplate = template.Must(template.New("report").Parse(`{{define "head"}}<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>attnscope report: {{.Dir}}</title>
<style>
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:2em auto;max-width:1400px;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.5em 0 1.2em;font-size:.85em}
td,th{border:1px solid #ddd;padding:.2em .6em;text-align:right}th{background:#f4f4f4}td.k,th.k{text-align:left}
td.v{text-align:left;font-family:"DejaVu Sans Mono",monospace;white-space:pre-wrap;word-break:break-all;max-width:60em}
figure{margin:1em 0}figcaption{font-weight:bold;margin-bottom:.3em}img{max-width:100%;height:auto;border:1px solid #eee}
pre.text{background:#f8f8f8;padding:.6em;white-space:pre-wrap;max-height:20em;overflow:auto}
nav ul{columns:3}.note{color:#777;font-style:italic}
.scroll{max-width:100%;overflow-x:auto}.tables{display:flex;flex-wrap:wrap;gap:0 1.5em;align-items:flex-start}caption{font-weight:bold;text-align:left;padding:.2em 0}
</style>
</head>
<body>
<h1>attnscope report</h1>
<p>Run <code>{{.Dir}}</code>: {{.NumSamples}} sample(s). Written by attnscope {{.Version}}.</p>
<nav><ul>
<li><a href="#provenance">Provenance</a></li>
<li><a href="#metrics">Metrics</a></li>
{{if .Human}}<li><a href="#human">Human reading</a></li>
{{end}}{{if .RunOutputs}}<li><a href="#run-outputs">Run outputs</a></li>
{{end}}{{range .Nav}}<li><a href="#{{.Anchor}}">Sample {{.ID}}</a></li>
{{end}}</ul></nav>
{{if .DerivedFirst}}<p class="note">Outputs of derive passes are drawn for the first sample; <code>attnscope report --figures derived</code> (or a pass name) draws them for every sample.</p>{{end}}

<h2 id="provenance">Provenance</h2>
{{if .Provenance}}<table>
{{range .Provenance}}<tr><th class="k">{{.Key}}</th><td class="v">{{.Value}}</td></tr>
{{end}}</table>{{else}}<p class="note">The run has no run.json.</p>{{end}}

<h2 id="metrics">Metrics</h2>
{{if .LayerTables}}<h3>Per layer and pass (mean over samples; over heads where the metric is per head)</h3>
<div class="tables">{{range .LayerTables}}<div class="scroll"><table><caption>{{.Metric}}</caption><tr><th class="k">layer</th>{{range .Columns}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr><td class="k">{{.Name}}</td>{{range .Values}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table></div>
{{end}}</div>
{{if .HeadTables}}<h3>Per head (mean over samples)</h3>
<div class="tables">{{range .HeadTables}}<table><caption>{{.Metric}}</caption><tr><th class="k">layer</th>{{range .Columns}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr><td class="k">{{.Name}}</td>{{range .Values}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>
{{end}}</div>{{end}}
{{else}}<p class="note">No metrics table (run <code>attnscope derive</code> to compute one).</p>{{end}}
{{with .Human}}
<h2 id="human">Human reading</h2>
<p>An eye-tracking run (attnscope human): {{len .Sessions}} session(s). Each sample is one session; its outputs (character weights, token weights, follow-up matrices) are drawn in its section by their axes.</p>
{{if .Sessions}}<table><tr><th class="k">session</th><th class="k">user</th><th>task</th><th class="k">source file</th></tr>
{{range .Sessions}}<tr><td class="k">{{.ID}}</td><td class="k">{{.User}}</td><td>{{.Task}}</td><td class="k">{{.Source}}</td></tr>
{{end}}</table>{{end}}
{{range .Baselines}}<figure><figcaption>{{.Title}}</figcaption><img alt="{{.Title}}" src="{{.DataURI}}">{{.Table}}</figure>
{{else}}<p class="note">No reading baselines (run <code>attnscope human --config eye.yaml getavgbehavior</code>).</p>{{end}}
{{end}}
{{end}}

{{define "run"}}
<h2 id="run-outputs">Run outputs</h2>
<p>Outputs of the whole run (no sample): attnscope similarity over every sample's tokens, match-heads summaries, diagnose spectra and statistics, each drawn by its declared axes.</p>
{{range .Figures}}<figure data-kind="{{.Kind}}"><figcaption>{{.Title}}</figcaption>
{{if .DataURI}}<img alt="{{.Title}}" src="{{.DataURI}}">{{end}}{{if .HTML}}{{.HTML}}{{end}}{{if .Note}}<p class="note">{{.Note}}</p>{{end}}
</figure>
{{end}}
{{end}}

{{define "sample"}}
<h2 id="{{.Anchor}}">Sample {{.ID}}</h2>
<p>{{.NumTokens}} token(s), {{.NumLayers}} layer(s) of attention{{if .PromptLen}}, prompt of {{.PromptLen}} token(s) (outlined){{end}}.</p>
{{if .Text}}<pre class="text">{{.Text}}</pre>{{end}}
{{if not .NumLayers}}<p class="note">No attention captured for this sample{{if .Figures}}; its derived outputs follow{{end}}.</p>{{end}}
{{range .Figures}}<figure data-kind="{{.Kind}}"><figcaption>{{.Title}}</figcaption>
{{if .DataURI}}<img alt="{{.Title}}" src="{{.DataURI}}">{{else if .HTML}}{{.HTML}}{{else}}<p class="note">{{.Note}}</p>{{end}}
</figure>
{{end}}
{{if .Report}}<h3>attention_analysis_report.txt</h3><pre class="text">{{.Report}}</pre>{{end}}
{{end}}

{{define "foot"}}
{{if .Omitted}}<p class="note">{{.Omitted}} more sample(s) not shown (raise --max-samples).</p>{{end}}
</body>
</html>
{{end}}`))

// recordTable renders the first maxTableRows of rows records (len(cols) values each)
// as an HTML table (the cells are numbers formatted here; the headers are constants).
func recordTable(cols []string, vals []float64, rows int) template.HTML {
	var b strings.Builder
	b.WriteString(`<table class="values"><tr>`)
	for _, c := range cols {
		fmt.Fprintf(&b, "<th>%s</th>", template.HTMLEscapeString(c))
	}
	b.WriteString("</tr>")
	for r := range min(rows, maxTableRows) {
		b.WriteString("<tr>")
		for c := range cols {
			fmt.Fprintf(&b, "<td>%s</td>", strconv.FormatFloat(vals[r*len(cols)+c], 'g', 6, 64))
		}
		b.WriteString("</tr>")
	}
	b.WriteString("</table>")
	if rows > maxTableRows {
		fmt.Fprintf(&b, "<p>%d more rows not shown.</p>", rows-maxTableRows)
	}
	return template.HTML(b.String())
}

// location is where the run lives, as the report names it: its s3:// address for a
// run read from object storage (store.Run.Location), else its folder.
func location(run Run) string {
	if l, ok := run.(interface{ Location() string }); ok {
		return l.Location()
	}
	return run.Dir()
}
