package report

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"

	"github.com/attnscope/attnscope/analysis/code"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/viz"
)

// section is a sample's section of the HTML report while its figures are drawn: what
// the figure kinds' report uses (registry.go) read and add to.
type section struct {
	ctx    context.Context
	run    Run
	id     string
	s      *store.Sample
	o      HTMLOptions
	sec    *sampleSection
	kind   string // the kind being drawn
	layers int
	// heads, queries and keys of layer 0's attention.
	heads, queries, keys int
	// long: a --store qk sample above store.MaxQKLayerTokens (LongSample), drawn
	// pooled; the kinds that need its whole attention (reportUse.whole) are noted.
	long bool
	// derivedFns are the functions of the derive passes with an output for the sample.
	derivedFns map[string]bool
}

func (sc *section) generation() bool {
	return sc.s.PromptLen > 0 && sc.s.PromptLen < len(sc.s.Tokens)
}

// square: query and key positions are the same tokens.
func (sc *section) square() bool { return sc.queries == sc.keys }

// code: a code heatmap is drawn for source code (a sample with a language) or when
// chosen, for a text with token offsets.
func (sc *section) code() bool {
	return sc.s.Text != "" && len(sc.s.Offsets) > 0 && (sc.s.Language != "" || sc.o.chosen("code"))
}

// add inlines a figure as a PNG under title.
func (sc *section) add(title string, f *viz.Figure, err error) error {
	if err != nil {
		return fmt.Errorf("sample %s: %s: %w", sc.id, title, err)
	}
	if f.DPI == 0 {
		f.DPI = sc.o.DPI
	}
	var b bytes.Buffer
	if err := f.WriteTo(&b, viz.PNG); err != nil {
		return fmt.Errorf("sample %s: %s: %w", sc.id, title, err)
	}
	uri := template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes()))
	sc.sec.Figures = append(sc.sec.Figures, figure{Kind: sc.kind, Title: title, DataURI: uri})
	return nil
}

// addHTML adds an HTML figure (a code heatmap, a table).
func (sc *section) addHTML(title string, h template.HTML) {
	sc.sec.Figures = append(sc.sec.Figures, figure{Kind: sc.kind, Title: title, HTML: h})
}

// note adds a figure's place with a note saying why it is missing.
func (sc *section) note(title, note string) {
	sc.sec.Figures = append(sc.sec.Figures, figure{Kind: sc.kind, Title: title, Note: note})
}

// options are the report's settings of a figure.
func (sc *section) options() FigureOptions {
	o := DefaultFigureOptions()
	o.Clip = sc.o.ClipPercentile
	return o
}

// sampleFigures renders the figures of one sample: every figure kind of the registry
// the options select and the sample has the input of, in the registry's order.
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
	sc := &section{ctx: ctx, run: run, id: id, s: s, o: o, sec: &sec, layers: n}
	if n == 0 {
		// No attention (an eye-tracking run of attnscope human, or an import of derived
		// outputs only): the sample's derived outputs, drawn by their axes.
		sc.kind = "derived"
		return sec, reportDerived(sc)
	}
	if sc.derivedFns, err = derivedFunctions(run, id); err != nil {
		return sec, err
	}
	if LongSample(s) {
		sc.long = true
		sc.heads, sc.queries, sc.keys = s.QK.Heads, s.QK.Tokens, s.QK.Tokens
	} else if a := s.Attention; a != nil && a.Heads > 0 && a.Query > 0 && a.Key > 0 {
		// The attention's shape from sample.json when it records it (a figure then
		// reads only the layers it draws: a run in object storage is read by
		// ranges), else from layer 0.
		sc.heads, sc.queries, sc.keys = a.Heads, a.Query, a.Key
	} else if q := s.QK; q != nil && q.Heads > 0 && q.Tokens > 0 {
		sc.heads, sc.queries, sc.keys = q.Heads, q.Tokens, q.Tokens
	} else {
		a0, err := loadLayer(ctx, run, id, 0)
		if err != nil {
			return sec, err
		}
		sc.heads, sc.queries, sc.keys = a0.Shape[0], a0.Shape[1], a0.Shape[2]
	}
	for _, k := range figureKinds {
		use := k.report
		if use == nil || use.run != nil || !o.selects(k) || (use.when != nil && !use.when(sc)) {
			continue
		}
		sc.kind = k.Name
		if sc.long && use.whole {
			title := k.Help
			if use.title != nil {
				title = use.title(sc)
			}
			sc.note(title, errWhole(s, id, "this figure").Error()+"; the report draws its pooled overviews instead")
			continue
		}
		if o.Progress != nil {
			o.Progress(ReportEvent{Figure: k.Name})
		}
		if use.draw != nil {
			err = use.draw(sc)
		} else {
			var d *Drawing
			d, err = k.Draw(ctx, run, id, sc.options())
			var f *viz.Figure
			if d != nil {
				f = d.Figure
			}
			err = sc.add(use.title(sc), f, err)
		}
		if err != nil {
			return sec, err
		}
		if o.Progress != nil {
			o.Progress(ReportEvent{Figure: k.Name, Done: true})
		}
	}
	return sec, nil
}

// reportJS draws the Jensen–Shannon distances between heads and between layers, unless
// a derive pass already computed them for the sample (drawn with the derived figures).
// Distances between units cost O((L·H)²·N²): drawn for small models and sequences
// (noted when chosen); the layers × layers version always.
func reportJS(sc *section) error {
	units := sc.layers * sc.heads
	switch {
	case sc.derivedFns["js_distance_units"]:
	case units <= maxReportUnits && sc.queries <= maxReportUnitTokens:
		f, err := JSFigure(sc.ctx, sc.run, sc.id, false)
		if err := sc.add("Jensen–Shannon distance between heads", f, err); err != nil {
			return err
		}
	case sc.o.chosen("js"):
		sc.note("Jensen–Shannon distance between heads",
			fmt.Sprintf("not drawn for %d heads × %d tokens (attnscope plot js draws it)", units, sc.queries))
	}
	if sc.derivedFns["js_distance_layers"] {
		return nil
	}
	f, err := JSFigure(sc.ctx, sc.run, sc.id, true)
	return sc.add("Jensen–Shannon distance between layers", f, err)
}

// reportCode draws the code heatmap inline (HTML) with its sorted character weights.
func reportCode(sc *section) error {
	cs, w, title, err := CodeWeights(sc.ctx, sc.run, sc.id, -1, CodeQuery{Query: -1}, code.Replication)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := viz.WriteCodeHTML(&b, cs.Text, w, viz.CodeOptions{Title: title, ClipPercentile: sc.o.ClipPercentile}); err != nil {
		return fmt.Errorf("sample %s: code heatmap: %w", sc.id, err)
	}
	sc.addHTML("Code heatmap", template.HTML(b.String()))
	f, err := viz.SortedWeights(w, title+": sorted character weights")
	return sc.add("Code heatmap: sorted character weights", f, err)
}

// reportDerived draws, for every derive pass with an output for the sample (and
// selected: every pass by default or with "derived", else the passes named), one figure
// by the axes its function declared (pass.json): the last layer and the mean of heads
// where the output has more axes than a figure; lists of records as tables.
func reportDerived(sc *section) error {
	passes, err := sc.run.DerivedPasses()
	if err != nil {
		return err
	}
	c, err := SampleAxisContext(sc.run, sc.id)
	if err != nil {
		return err
	}
	all := len(sc.o.Figures) == 0 || sc.o.chosen("derived")
	for _, pass := range passes {
		// A sample without attention (a human session) shows its [char] outputs over
		// the source code in every section: small HTML, and its main figure.
		charOnly := sc.layers == 0 && len(pass.Axes) == 1 && pass.Axes[0].Name == store.AxisChar
		if !sc.run.HasDerived(pass.Name, sc.id) || !(all || sc.o.chosen(pass.Name) || (charOnly && sc.o.implicit)) {
			continue
		}
		title := "Derived: " + pass.Name
		t, err := sc.run.Derived(pass.Name, sc.id)
		if err != nil {
			return fmt.Errorf("sample %s: %w", sc.id, err)
		}
		if t.Len() == 0 {
			sc.note(title, fmt.Sprintf("empty output (shape %v): the pass found nothing in this sample", t.Shape))
			continue
		}
		if h, ok := charHeatmap(pass, t, c, sc.id, sc.o.ClipPercentile); ok {
			sc.addHTML(title+" (over the source code)", h)
			continue
		}
		v, err := NewDerivedView(pass, sc.id, t, c, DefaultSelection)
		if err != nil {
			sc.note(title, err.Error())
			continue
		}
		if v.Kind == ViewTable {
			sc.addHTML(title, recordTable(v.XTicks, v.Matrix.Data, v.Matrix.Rows))
			continue
		}
		f, err := v.Figure(0)
		if err := sc.add(title, f, err); err != nil {
			return err
		}
	}
	return nil
}

// reportDashboard draws the §3.3 dashboard with its text report; a run without hidden
// states is noted only when the dashboard was chosen.
func reportDashboard(sc *section) error {
	const title = "Attention analysis dashboard"
	a, err := sampleAnalysis(sc.ctx, sc.run, sc.id)
	switch {
	case errors.Is(err, ErrNotCaptured):
		if sc.o.chosen("dashboard") {
			sc.note(title, "not drawn: the run has no hidden states (capture with --hidden)")
		}
		return nil
	case err != nil:
		return err
	}
	f, err := viz.Dashboard(a.DashboardData(sc.id + ": attention analysis"))
	if err := sc.add(title, f, err); err != nil {
		return err
	}
	var b bytes.Buffer
	if err := a.WriteText(&b); err != nil {
		return err
	}
	sc.sec.Report = b.String()
	return nil
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
