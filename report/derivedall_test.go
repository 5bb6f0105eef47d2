package report

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/derive"
	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/viz"
)

// Every output of configs/derive-all.yaml, derived over a real model's attention (the
// code-gpt2-mini reference run: source code with token offsets), is drawn by its
// declared axes: the figure's axis titles are those of its remaining axes and its
// tick labels those the sample gives them (tokens, lines, L0 H3 ...), in the SVG too;
// the report draws each pass (a figure or a table), with no "not drawn" note.
func TestDeriveAllDrawnByDeclaredAxes(t *testing.T) {
	if testing.Short() {
		t.Skip("derives every pass of derive-all.yaml; skipped with -short")
	}
	model := refdata.Path(t, "models", "code-gpt2-mini")
	out := filepath.Join(t.TempDir(), "run")
	if _, err := store.Import(context.Background(), out, []string{filepath.Join(model, "reference.safetensors")},
		store.ImportOptions{TokensFrom: filepath.Join(model, "reference.json")}); err != nil {
		t.Fatal(err)
	}
	run, err := store.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := run.Samples()
	const id = "reference.case0.attentions"
	for _, other := range ids {
		if other != id {
			os.RemoveAll(run.SampleDir(other))
		}
	}
	cfg, err := derive.LoadConfig(filepath.Join("..", "configs", "derive-all.yaml"), derive.DefaultRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := derive.Derive(context.Background(), run, cfg, derive.Options{Workers: 1}); err != nil {
		t.Fatal(err)
	}
	// head_redundancy at tau 0.1 finds no pair here; every pair at tau 1 (a table).
	all, err := derive.ParseConfig("all-pairs.yaml", []byte("passes:\n  - {name: all_pairs, function: head_redundancy, kwargs: {tau: 1}}\n"), derive.DefaultRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := derive.Derive(context.Background(), run, all, derive.Options{}); err != nil {
		t.Fatal(err)
	}
	c, err := SampleAxisContext(run, id)
	if err != nil {
		t.Fatal(err)
	}
	passes, err := run.DerivedPasses()
	if err != nil || len(passes) != len(cfg.Passes)+1 {
		t.Fatalf("%d passes recorded, config has %d (%v)", len(passes), len(cfg.Passes), err)
	}
	for _, pass := range passes {
		t.Run(pass.Name, func(t *testing.T) {
			checkDerivedFigure(t, run, pass, id, c)
		})
	}
	var page bytes.Buffer
	if err := WriteHTML(context.Background(), &page, run, HTMLOptions{DPI: 30}); err != nil {
		t.Fatal(err)
	}
	for _, p := range passes {
		if !strings.Contains(page.String(), "<figcaption>Derived: "+p.Name+"</figcaption>\n<") {
			t.Errorf("report has no figure or table for pass %s", p.Name)
		}
	}
	t.Run("ten samples under 10 MB", func(t *testing.T) { checkReportSize(t, run, id, passes) })
	if !strings.Contains(page.String(), `<figcaption>Derived: all_pairs</figcaption>`+"\n"+`<table class="values"><tr><th>layer</th><th>head 1</th><th>head 2</th><th>JS distance</th>`) {
		t.Error("report shows all_pairs's records without their column names")
	}
}

func checkDerivedFigure(t *testing.T, run *store.Run, pass store.PassInfo, id string, c AxisContext) {
	t.Helper()
	if len(pass.Axes) == 0 {
		t.Fatal("pass.json records no axes")
	}
	out, err := run.Derived(pass.Name, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CheckAxes(pass.Axes, out.Shape); err != nil {
		t.Fatal(err)
	}
	if out.Len() == 0 && pass.Function == "head_redundancy" {
		// No redundant head pair at this tau: an empty list of records has no figure to
		// check (the caller still requires its section in the report; all_pairs draws the records).
		return
	}
	v, err := NewDerivedView(pass, id, out, c, DefaultSelection)
	if err != nil {
		t.Fatal(err)
	}
	// The figure shows the last one or two axes (after layer and head selection, or
	// [layer, head] flattened into heads named L0 H3 before named entries).
	last := pass.Axes[len(pass.Axes)-1]
	wantX := AxisTitle(last.Name)
	xTicks := AxisTicks(last, out.Shape[len(out.Shape)-1], c)
	if v.XTitle != wantX {
		t.Errorf("x axis title %q, want %q (axes %s)", v.XTitle, wantX, store.AxesString(pass.Axes))
	}
	if strings.Join(v.XTicks, "|") != strings.Join(xTicks, "|") {
		t.Errorf("x ticks %q..., want %q...", head(v.XTicks), head(xTicks))
	}
	switch v.Kind {
	case ViewHeatmap, ViewTable:
		y := pass.Axes[len(pass.Axes)-2]
		wantY, yTicks := AxisTitle(y.Name), AxisTicks(y, out.Shape[len(out.Shape)-2], c)
		if len(pass.Axes) == 3 && len(last.Labels) > 0 {
			wantY, yTicks = AxisTitle(store.AxisUnit), UnitLabels(out.Shape[0]*out.Shape[1], out.Shape[0], out.Shape[1])
		}
		if v.YTitle != wantY || strings.Join(v.YTicks, "|") != strings.Join(yTicks, "|") {
			t.Errorf("y axis %q %q..., want %q %q... (axes %s)", v.YTitle, head(v.YTicks), wantY, head(yTicks), store.AxesString(pass.Axes))
		}
	case ViewBars, ViewCurves:
		if v.YTitle != pass.Name {
			t.Errorf("y axis title %q, want the pass name", v.YTitle)
		}
	}
	// Token axes are labelled with the sample's tokens.
	for k, a := range []store.Axis{pass.Axes[len(pass.Axes)-1]} {
		if (a.Name == store.AxisKey || a.Name == store.AxisQuery) && v.XTicks[0] != c.Tokens[0] {
			t.Errorf("axis %d (%s) ticks start %q, want the first token %q", k, a.Name, v.XTicks[0], c.Tokens[0])
		}
	}
	f, err := v.Figure(0)
	if err != nil {
		t.Fatal(err)
	}
	var svg bytes.Buffer
	if err := f.WriteTo(&svg, viz.SVG); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{v.XTitle, v.YTitle} {
		if !strings.Contains(svg.String(), svgEscape(s)) {
			t.Errorf("SVG lacks the axis title %q", s)
		}
	}
}

func head(s []string) []string { return s[:min(3, len(s))] }

func svgEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// The default report of 10 samples of every derive-all output stays under 10 MB
// (derived outputs drawn for the first sample); --figures draws chosen ones for all.
func checkReportSize(t *testing.T, run *store.Run, id string, passes []store.PassInfo) {
	for k := 1; k < 10; k++ {
		copyID := fmt.Sprintf("copy%d", k)
		if err := os.CopyFS(run.SampleDir(copyID), os.DirFS(run.SampleDir(id))); err != nil {
			t.Fatal(err)
		}
		s, err := run.Sample(id)
		if err != nil {
			t.Fatal(err)
		}
		s.ID = copyID
		if err := run.WriteSample(s); err != nil {
			t.Fatal(err)
		}
		for _, p := range passes {
			if out, err := run.Derived(p.Name, id); err == nil {
				if err := run.WriteDerived(p.Name, copyID, out, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	var page bytes.Buffer
	if err := WriteHTML(context.Background(), &page, run, HTMLOptions{DPI: 110}); err != nil {
		t.Fatal(err)
	}
	html := page.String()
	if n := strings.Count(html, "Sample copy"); n < 9 {
		t.Fatalf("%d copied samples in the report", n)
	}
	t.Logf("default report of 10 samples: %.1f MB", float64(page.Len())/1e6)
	if page.Len() >= 10e6 {
		t.Errorf("default report of 10 samples is %.1f MB, want < 10 MB", float64(page.Len())/1e6)
	}
	if got := strings.Count(html, "<figcaption>Derived: "); got != len(passes) {
		t.Errorf("%d derived figures, want %d (first sample only)", got, len(passes))
	}
	page.Reset()
	if err := WriteHTML(context.Background(), &page, run, HTMLOptions{DPI: 30, Figures: []string{"rollout_residual"}}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(page.String(), "<figcaption>Derived: rollout_residual</figcaption>"); got != 10 {
		t.Errorf("--figures rollout_residual: drawn for %d samples, want 10", got)
	}
	if strings.Contains(page.String(), "All heads") {
		t.Error("--figures rollout_residual also drew the all-heads grid")
	}
}
