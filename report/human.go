package report

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/attnscope/attnscope/human"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
	"github.com/attnscope/attnscope/viz"
)

// humanPage is the section of an eye-tracking run (attnscope human): its sessions
// and the positional baselines of human reading (getavgbehavior).
type humanPage struct {
	Sessions  []humanSession
	Baselines []humanBaseline
}

type humanSession struct {
	ID, User, Source string
	Task             int
}

type humanBaseline struct {
	Title   string
	DataURI template.URL
	Table   template.HTML
}

// maxBaselineRows is the number of distances (nearest 0 first) a baseline table
// shows; the figure shows them all.
const maxBaselineRows = 21

// humanSection reads the sessions (human/data_mapping.json) and reading baselines
// (human/decay_<δ>/data_avg_followup/) of a human run.
func humanSection(run Run, dpi int) (*humanPage, error) {
	hp := &humanPage{}
	m, err := human.ReadMapping(run.Dir())
	if err != nil {
		return nil, err
	}
	for _, e := range m {
		s := humanSession{ID: e.UniqueDataID, User: e.User, Task: e.TaskNumber}
		if smp, err := run.Sample(e.UniqueDataID); err == nil {
			s.Source = smp.Source
		}
		hp.Sessions = append(hp.Sessions, s)
	}
	bs, err := human.ReadBaselines(run.Dir())
	if err != nil {
		return nil, err
	}
	for _, b := range bs {
		title := fmt.Sprintf("Decay %s: %s (%s)", b.Decay, b.Title, b.File)
		if len(b.Distance) == 0 {
			continue
		}
		f, err := viz.Curves([]viz.Series{{Name: b.MeanColumn, X: b.Distance, Y: b.Mean}},
			viz.CurvesOptions{Title: title, XLabel: b.DistanceColumn, YLabel: b.MeanColumn})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.Path, err)
		}
		f.DPI = dpi
		var png bytes.Buffer
		if err := f.WriteTo(&png, viz.PNG); err != nil {
			return nil, fmt.Errorf("%s: %w", b.Path, err)
		}
		hp.Baselines = append(hp.Baselines, humanBaseline{Title: title,
			DataURI: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png.Bytes())),
			Table:   baselineTable(b)})
	}
	return hp, nil
}

// baselineTable renders the maxBaselineRows distances nearest 0, in distance order.
func baselineTable(b human.Baseline) template.HTML {
	idx := make([]int, len(b.Distance))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return math.Abs(b.Distance[idx[i]]) < math.Abs(b.Distance[idx[j]]) })
	idx = idx[:min(len(idx), maxBaselineRows)]
	sort.Ints(idx)
	var w strings.Builder
	fmt.Fprintf(&w, "<table><tr><th>%s</th><th>%s</th><th>%s</th></tr>", template.HTMLEscapeString(b.DistanceColumn), template.HTMLEscapeString(b.MeanColumn), template.HTMLEscapeString(b.CountColumn))
	for _, i := range idx {
		fmt.Fprintf(&w, "<tr><td>%s</td><td>%s</td><td>%s</td></tr>", strconv.FormatFloat(b.Distance[i], 'g', -1, 64), fmtValue(b.Mean[i]), strconv.FormatFloat(b.Count[i], 'g', -1, 64))
	}
	w.WriteString("</table>")
	if n := len(b.Distance) - len(idx); n > 0 {
		fmt.Fprintf(&w, "<p class=\"note\">%d distance(s) farther from 0 in the figure only.</p>", n)
	}
	return template.HTML(w.String())
}

// charHeatmap draws a derived output with the one axis char (one weight per character
// of the sample's text, as human character weights or attention_to_chars) over the
// source code; ok is false for any other output.
func charHeatmap(pass store.PassInfo, t *tensor.Tensor, c AxisContext, id string, clip float64) (template.HTML, bool) {
	if len(pass.Axes) != 1 || pass.Axes[0].Name != store.AxisChar || c.Text == "" || len([]rune(c.Text)) != t.Len() {
		return "", false
	}
	var b bytes.Buffer
	if err := viz.WriteCodeHTML(&b, c.Text, t.Data, viz.CodeOptions{Title: id + ": " + pass.Name, ClipPercentile: clip}); err != nil {
		return "", false
	}
	return template.HTML(b.String()), true
}

// CharCodeFigure draws a derived output with the one axis char over the sample's
// source text (a code heatmap figure), as attnscope plot derived does for it; ok is
// false for any other output.
func CharCodeFigure(pass store.PassInfo, t *tensor.Tensor, c AxisContext, id string, clip float64) (*viz.Figure, bool, error) {
	if len(pass.Axes) != 1 || pass.Axes[0].Name != store.AxisChar || c.Text == "" {
		return nil, false, nil
	}
	if n := len([]rune(c.Text)); n != t.Len() {
		return nil, false, fmt.Errorf("pass %s, sample %s: %d character weights for a text of %d characters", pass.Name, id, t.Len(), n)
	}
	f, err := viz.CodeHeatmap(c.Text, t.Data, viz.CodeOptions{Title: id + ": " + pass.Name, ClipPercentile: clip})
	return f, true, err
}
