package report

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/attnscope/attnscope/analysis/code"
	"github.com/attnscope/attnscope/human"
	"github.com/attnscope/attnscope/internal/buildinfo"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/viz"
)

// HTMLOptions configure the HTML report.
type HTMLOptions struct {
	// MaxSamples limits the number of sample sections (0: all samples).
	MaxSamples int
	// ClipPercentile clips the colour scale of heatmaps and grids (0: none).
	ClipPercentile float64
	// DPI of the inlined PNG figures (default 110).
	DPI int
	// Logf, when set, receives one line per finished section.
	Logf func(format string, args ...any)
	// Comparisons, when set, is a folder of comparator outputs (attnscope compare)
	// summarised in a Comparisons section (report/compare.go).
	Comparisons string
	// Figures selects the figures of each sample by name (ReportFigures) or by derive
	// pass name; a figure named here is drawn for every sample, with a note when it
	// cannot be. Empty: every figure, the derive passes' outputs for the first sample
	// only, so that a run of many samples stays a page a browser opens (under 10 MB for
	// 10 samples of configs/derive-all.yaml).
	Figures []string
	// implicit: Figures was set by WriteHTML (later samples of a default report).
	implicit bool
}

// ReportFigures names the figures of a sample section, for HTMLOptions.Figures and
// attnscope report --figures ("derived" selects every derive pass's output).
var ReportFigures = []string{"grid", "heatmap", "alignment", "received", "entropy", "js", "crispiness", "code", "derived", "dashboard"}

// CheckFigures reports a name of figures that is neither one of ReportFigures nor a
// pass of passes.
func CheckFigures(figures []string, passes []store.PassInfo) error {
	for _, f := range figures {
		if slices.Contains(ReportFigures, f) || slices.ContainsFunc(passes, func(p store.PassInfo) bool { return p.Name == f }) {
			continue
		}
		names := make([]string, len(passes))
		for i, p := range passes {
			names[i] = p.Name
		}
		return fmt.Errorf("figure %q: one of %s, or a derive pass of the run (%s) expected", f, strings.Join(ReportFigures, ", "), strings.Join(names, ", "))
	}
	return nil
}

// chosen reports whether the figure name was named in Figures by the caller.
func (o HTMLOptions) chosen(name string) bool { return !o.implicit && slices.Contains(o.Figures, name) }

// wants reports whether the section draws the figure name.
func (o HTMLOptions) wants(name string) bool { return len(o.Figures) == 0 || o.chosen(name) }

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
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	ids, err := run.Samples()
	if err != nil {
		return err
	}
	pg := page{Dir: run.Dir(), Version: buildinfo.Version(), NumSamples: len(ids), DerivedFirst: len(o.Figures) == 0 && len(ids) > 1}
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
	// Sections are rendered and written one sample at a time, so memory holds one
	// sample's figures however large the run.
	if err := pageTemplate.ExecuteTemplate(w, "head", pg); err != nil {
		return err
	}
	attention, drawn := false, false
	for i, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		so := o
		if len(o.Figures) == 0 && i > 0 {
			so.Figures = slices.DeleteFunc(slices.Clone(ReportFigures), func(f string) bool { return f == "derived" })
			so.implicit = true
		}
		sec, err := sampleFigures(ctx, run, id, i, so)
		if err != nil {
			return err
		}
		attention = attention || sec.NumLayers > 0
		drawn = drawn || len(sec.Figures) > 0
		if err := pageTemplate.ExecuteTemplate(w, "sample", sec); err != nil {
			return err
		}
		logf("report: sample %s done (%d/%d)", id, i+1, len(ids))
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

// sampleFigures renders the figures of one sample.
func sampleFigures(ctx context.Context, run Run, id string, i int, o HTMLOptions) (sampleSection, error) {
	sec := sampleSection{ID: id, Anchor: anchor(i)}
	s, err := run.Sample(id)
	if err != nil {
		return sec, err
	}
	sec.Text, sec.NumTokens, sec.PromptLen = s.Text, len(s.Tokens), s.PromptLen
	n, err := numLayers(run, id)
	if err != nil {
		return sec, err
	}
	sec.NumLayers = n
	add := func(title string, f *viz.Figure, err error) error {
		if err != nil {
			return fmt.Errorf("sample %s: %s: %w", id, title, err)
		}
		if f.DPI == 0 {
			f.DPI = o.DPI
		}
		var b bytes.Buffer
		if err := f.WriteTo(&b, viz.PNG); err != nil {
			return fmt.Errorf("sample %s: %s: %w", id, title, err)
		}
		sec.Figures = append(sec.Figures, figure{Title: title, DataURI: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes()))})
		return nil
	}
	if n == 0 {
		// No attention (an eye-tracking run of attnscope human, or an import of derived
		// outputs only): the sample's derived outputs, drawn by their axes.
		return sec, derivedFigures(run, id, o, &sec, add)
	}
	derivedFns, err := derivedFunctions(run, id)
	if err != nil {
		return sec, err
	}
	if o.wants("grid") {
		f, err := GridFigure(ctx, run, id, o.ClipPercentile)
		if err := add("All heads", f, err); err != nil {
			return sec, err
		}
	}
	if o.wants("heatmap") {
		f, err := HeatmapFigure(ctx, run, id, n-1, MeanHeads, o.ClipPercentile)
		if err := add(fmt.Sprintf("Layer %d, mean of heads", n-1), f, err); err != nil {
			return sec, err
		}
	}
	if o.wants("alignment") && s.PromptLen > 0 && s.PromptLen < len(s.Tokens) {
		f, err := AlignmentFigure(ctx, run, id, n-1, MeanHeads)
		if err := add(fmt.Sprintf("Generated × prompt tokens, layer %d, mean of heads", n-1), f, err); err != nil {
			return sec, err
		}
	}
	if o.wants("received") {
		f, err := ReceivedFigure(ctx, run, id, n-1, MeanHeads)
		if err := add(fmt.Sprintf("Attention received, layer %d", n-1), f, err); err != nil {
			return sec, err
		}
	}
	if o.wants("entropy") {
		f, err := EntropyFigure(ctx, run, id)
		if err := add("Entropy and maximum weight of attention rows", f, err); err != nil {
			return sec, err
		}
	}
	a0, err := loadLayer(ctx, run, id, 0)
	if err != nil {
		return sec, err
	}
	// Analyses a derive pass already computed for the sample are read from its
	// output (drawn with the derived figures), not computed again.
	if a0.Shape[1] == a0.Shape[2] && o.wants("js") {
		// Jensen–Shannon distances between units cost O((L·H)²·N²): drawn for small
		// models and sequences; the layers × layers version always.
		units := n * a0.Shape[0]
		switch {
		case derivedFns["js_distance_units"]:
		case units <= maxReportUnits && a0.Shape[1] <= maxReportUnitTokens:
			f, err := JSFigure(ctx, run, id, false)
			if err := add("Jensen–Shannon distance between heads", f, err); err != nil {
				return sec, err
			}
		case o.chosen("js"):
			sec.Figures = append(sec.Figures, figure{Title: "Jensen–Shannon distance between heads",
				Note: fmt.Sprintf("not drawn for %d heads × %d tokens (attnscope plot js draws it)", units, a0.Shape[1])})
		}
		if !derivedFns["js_distance_layers"] {
			f, err := JSFigure(ctx, run, id, true)
			if err := add("Jensen–Shannon distance between layers", f, err); err != nil {
				return sec, err
			}
		}
	}
	if a0.Shape[1] == a0.Shape[2] && o.wants("crispiness") && !derivedFns["crispiness"] {
		f, err := CrispinessFigure(ctx, run, id, false)
		if err := add("Crispiness of every head", f, err); err != nil {
			return sec, err
		}
	}
	// The code heatmap is drawn for source code (a sample with a language) or when
	// chosen.
	if s.Text != "" && len(s.Offsets) > 0 && o.wants("code") && (s.Language != "" || o.chosen("code")) {
		cs, w, title, err := CodeWeights(ctx, run, id, -1, CodeQuery{Query: -1}, code.Replication)
		if err != nil {
			return sec, err
		}
		var b bytes.Buffer
		if err := viz.WriteCodeHTML(&b, cs.Text, w, viz.CodeOptions{Title: title, ClipPercentile: o.ClipPercentile}); err != nil {
			return sec, fmt.Errorf("sample %s: code heatmap: %w", id, err)
		}
		sec.Figures = append(sec.Figures, figure{Title: "Code heatmap", HTML: template.HTML(b.String())})
		f, err := viz.SortedWeights(w, title+": sorted character weights")
		if err := add("Code heatmap: sorted character weights", f, err); err != nil {
			return sec, err
		}
	}
	if err := derivedFigures(run, id, o, &sec, add); err != nil {
		return sec, err
	}
	if !o.wants("dashboard") {
		return sec, nil
	}
	d, err := SampleAnalyzerData(ctx, run, id)
	switch {
	case errors.Is(err, ErrNotCaptured):
		if o.chosen("dashboard") {
			sec.Figures = append(sec.Figures, figure{Title: "Attention analysis dashboard", Note: "not drawn: the run has no hidden states (capture with --hidden)"})
		}
	case err != nil:
		return sec, err
	default:
		a, err := Analyze(ctx, d)
		if err != nil {
			return sec, fmt.Errorf("sample %s: %w", id, err)
		}
		f, err := viz.Dashboard(a.DashboardData(id + ": attention analysis"))
		if err := add("Attention analysis dashboard", f, err); err != nil {
			return sec, err
		}
		var b bytes.Buffer
		if err := a.WriteText(&b); err != nil {
			return sec, err
		}
		sec.Report = b.String()
	}
	return sec, nil
}

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

{{define "sample"}}
<h2 id="{{.Anchor}}">Sample {{.ID}}</h2>
<p>{{.NumTokens}} token(s), {{.NumLayers}} layer(s) of attention{{if .PromptLen}}, prompt of {{.PromptLen}} token(s) (outlined){{end}}.</p>
{{if .Text}}<pre class="text">{{.Text}}</pre>{{end}}
{{if not .NumLayers}}<p class="note">No attention captured for this sample{{if .Figures}}; its derived outputs follow{{end}}.</p>{{end}}
{{range .Figures}}<figure><figcaption>{{.Title}}</figcaption>
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

// derivedFigures draws, for every derive pass with an output for the sample, one
// figure by the axes its function declared (pass.json): the last layer and the mean
// of heads where the output has more axes than a figure; lists of records as tables.
func derivedFigures(run Run, id string, o HTMLOptions, sec *sampleSection, add func(string, *viz.Figure, error) error) error {
	passes, err := run.DerivedPasses()
	if err != nil {
		return err
	}
	c, err := SampleAxisContext(run, id)
	if err != nil {
		return err
	}
	for _, pass := range passes {
		// A sample without attention (a human session) shows its [char] outputs over
		// the source code in every section: small HTML, and its main figure.
		charOnly := sec.NumLayers == 0 && len(pass.Axes) == 1 && pass.Axes[0].Name == store.AxisChar
		if !run.HasDerived(pass.Name, id) || !(o.wants("derived") || o.chosen(pass.Name) || (charOnly && o.implicit)) {
			continue
		}
		title := "Derived: " + pass.Name
		t, err := run.Derived(pass.Name, id)
		if err != nil {
			return fmt.Errorf("sample %s: %w", id, err)
		}
		if t.Len() == 0 {
			sec.Figures = append(sec.Figures, figure{Title: title, Note: fmt.Sprintf("empty output (shape %v): the pass found nothing in this sample", t.Shape)})
			continue
		}
		if h, ok := charHeatmap(pass, t, c, id, o.ClipPercentile); ok {
			sec.Figures = append(sec.Figures, figure{Title: title + " (over the source code)", HTML: h})
			continue
		}
		v, err := NewDerivedView(pass, id, t, c, DefaultSelection)
		if err != nil {
			sec.Figures = append(sec.Figures, figure{Title: title, Note: err.Error()})
			continue
		}
		if v.Kind == ViewTable {
			sec.Figures = append(sec.Figures, figure{Title: title, HTML: recordTable(v.XTicks, v.Matrix.Data, v.Matrix.Rows)})
			continue
		}
		f, err := v.Figure(0)
		if err := add(title, f, err); err != nil {
			return err
		}
	}
	return nil
}

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

// derivedFunctions returns the functions of the derive passes with an output for
// sample id.
func derivedFunctions(run Run, id string) (map[string]bool, error) {
	passes, err := run.DerivedPasses()
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, p := range passes {
		if p.Function != "" && run.HasDerived(p.Name, id) {
			out[p.Function] = true
		}
	}
	return out, nil
}
