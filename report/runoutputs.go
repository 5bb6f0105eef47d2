package report

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"

	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/viz"
)

// RunOutputID is the name a run-level output's figure gives in place of a sample.
const RunOutputID = "run"

// maxValueCells bounds the outputs whose values the report also lists as a table
// beside the figure (a layer × layer similarity matrix, a per-layer summary).
const maxValueCells = 400

// NewRunOutputView brings a run-level output to one figure by its declared axes, as
// NewDerivedView does for a sample's output (no sample: tokens are numbered).
func NewRunOutputView(o store.RunOutputInfo, r Run, sel Selection) (*DerivedView, error) {
	_, t, err := r.RunOutput(o.Name)
	if err != nil {
		return nil, err
	}
	v, err := NewDerivedView(store.PassInfo{Name: o.Name, PassSettings: o.PassSettings}, RunOutputID, t, AxisContext{}, sel)
	if err != nil {
		return nil, err
	}
	v.Title = o.Name
	if o.Function != "" {
		v.Title += " (" + o.Function + ")"
	}
	return v, nil
}

// drawRunOutput is plot's run-output figure: the run-level output --pass, whatever
// the sample.
func drawRunOutput(_ context.Context, run Run, _ string, o FigureOptions) (*Drawing, error) {
	outs, err := run.RunOutputs()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, ro := range outs {
		names = append(names, ro.Name)
		if ro.Name != o.Pass {
			continue
		}
		v, err := NewRunOutputView(ro, run, headSelection(o))
		if err != nil {
			return nil, err
		}
		f, err := v.Figure(o.Clip)
		return &Drawing{Figure: f}, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("run %s has no run-level outputs (attnscope similarity, match-heads and diagnose write them)", run.Dir())
	}
	return nil, optionErrorf("--pass %q: not a run-level output of %s (%s)", o.Pass, run.Dir(), strings.Join(names, ", "))
}

// headSelection is the Selection of FigureOptions' layer and head (a head ≥ 0, or
// a reduction: MeanHeads, SumHeads, ...).
func headSelection(o FigureOptions) Selection {
	sel := Selection{Layer: o.Layer, Head: o.Head}
	if o.Head < 0 && -1-o.Head < len(Reductions) {
		sel.Reduce = Reductions[-1-o.Head]
	}
	return sel
}

// runSection collects the figures of the run-level outputs.
type runSection struct {
	run     Run
	o       HTMLOptions
	kind    string
	Figures []figure
}

// reportRunOutputs draws every run-level output by its declared axes (the last layer
// and the mean of heads where it has more axes than a figure), with its values as a
// table when it is small.
func reportRunOutputs(rs *runSection) error {
	outs, err := rs.run.RunOutputs()
	if err != nil {
		return err
	}
	for _, ro := range outs {
		title := "Run output: " + ro.Name
		v, err := NewRunOutputView(ro, rs.run, DefaultSelection)
		if err != nil {
			rs.Figures = append(rs.Figures, figure{Kind: rs.kind, Title: title, Note: err.Error()})
			continue
		}
		if v.Kind == ViewTable {
			rs.Figures = append(rs.Figures, figure{Kind: rs.kind, Title: title, HTML: recordTable(v.XTicks, v.Matrix.Data, v.Matrix.Rows)})
			continue
		}
		f, err := v.Figure(rs.o.ClipPercentile)
		if err != nil {
			return fmt.Errorf("run output %s: %w", ro.Name, err)
		}
		f.DPI = rs.o.DPI
		uri, err := pngURI(f)
		if err != nil {
			return fmt.Errorf("run output %s: %w", ro.Name, err)
		}
		rs.Figures = append(rs.Figures, figure{Kind: rs.kind, Title: title, DataURI: uri, HTML: viewValues(v)})
	}
	return nil
}

// viewValues lists a small heatmap's or bar chart's values with their ticks ("" when
// it has more than maxValueCells).
func viewValues(v *DerivedView) template.HTML {
	rows, cols, data, rowTicks := v.Matrix.Rows, v.Matrix.Cols, v.Matrix.Data, v.YTicks
	switch v.Kind {
	case ViewBars:
		rows, cols, data, rowTicks = 1, len(v.Values), v.Values, []string{v.YTitle}
	case ViewHeatmap:
	default:
		return ""
	}
	if rows*cols > maxValueCells {
		return ""
	}
	var b strings.Builder
	b.WriteString(`<table class="values"><tr><th></th>`)
	for _, c := range v.XTicks {
		fmt.Fprintf(&b, "<th>%s</th>", template.HTMLEscapeString(c))
	}
	b.WriteString("</tr>")
	for r := range rows {
		fmt.Fprintf(&b, `<tr><th class="k">%s</th>`, template.HTMLEscapeString(rowTicks[r]))
		for c := range cols {
			fmt.Fprintf(&b, "<td>%s</td>", strconv.FormatFloat(data[r*cols+c], 'g', 6, 64))
		}
		b.WriteString("</tr>")
	}
	b.WriteString("</table>")
	return template.HTML(b.String())
}

// writeRunLevel writes the Run outputs section: the figures of the registry's
// run-level kinds, before the samples.
func writeRunLevel(w io.Writer, run Run, o HTMLOptions) (drawn bool, err error) {
	rs := &runSection{run: run, o: o}
	for _, k := range figureKinds {
		if k.report == nil || k.report.run == nil || (len(o.Figures) > 0 && !o.chosen(k.Name)) {
			continue
		}
		rs.kind = k.Name
		if err := k.report.run(rs); err != nil {
			return false, err
		}
	}
	if len(rs.Figures) == 0 {
		return false, nil
	}
	return true, pageTemplate.ExecuteTemplate(w, "run", rs)
}

func pngURI(f *viz.Figure) (template.URL, error) {
	var b bytes.Buffer
	if err := f.WriteTo(&b, viz.PNG); err != nil {
		return "", err
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes())), nil
}
