package report

import (
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
	"github.com/attnscope/attnscope/viz"
)

// registryRun is a generation with hidden states (every figure's input) and a
// [layer, query, key] derive output "rollout" for s0.
func registryRun() *memRun {
	run := newMemRun(testCode, 2, 2, 8, 8)
	a := run.att["s0"][0]
	n := a.Shape[1]
	roll := tensor.New(2, n, n)
	for l := range 2 {
		copy(roll.Data[l*n*n:(l+1)*n*n], run.att["s0"][l].Sub(0).Data)
	}
	run.addDerived("rollout", "s0", roll, store.AxisLayer, store.AxisQuery, store.AxisKey)
	summary := &tensor.Tensor{Shape: []int{2, 2}, Data: []float64{0.25, 0.5, 0.75, 1.5}}
	run.addRunOutput("summary", summary, store.Axis{Name: store.AxisLayer}, store.Axis{Name: store.AxisColumn, Labels: []string{"mean", "std"}})
	return run
}

// optionsFor returns the report's options with the inputs a kind's Needs name: a pass
// for a pass figure, a labels file for the reference figures, attention files for a
// figure drawn from files.
func optionsFor(t *testing.T, k *FigureKind, n int) FigureOptions {
	o := DefaultFigureOptions()
	if k.Needs.Pass == PassRequired {
		o.Pass = "rollout"
	}
	if k.Needs.RunLevel {
		o.Pass = "summary"
	}
	if k.Needs.Labels {
		labels := make([]int64, n*n)
		for i := range labels {
			labels[i] = []int64{1, 0, -100}[i%3] // reference, other, ignored
		}
		o.Labels = filepath.Join(t.TempDir(), "labels.npy")
		if err := checkpoint.WriteNpyFile(o.Labels, []int{n, n}, labels); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

// Every kind of the registry is reachable from attnscope plot (it draws the figure from
// a run, and from files where it says so) and from the HTML report (report --figures
// NAME draws it, marked with its kind), or says why not.
func TestEveryFigureKindReachable(t *testing.T) {
	ctx := context.Background()
	names := map[string]bool{}
	for _, k := range Figures() {
		t.Run(k.Name, func(t *testing.T) {
			if names[k.Name] {
				t.Fatalf("kind %s listed twice", k.Name)
			}
			names[k.Name] = true
			if k.Help == "" {
				t.Error("no help line")
			}
			if (k.Draw == nil) == (k.NotInPlot == "") {
				t.Errorf("plot: Draw set %v, NotInPlot %q: one of them expected", k.Draw != nil, k.NotInPlot)
			}
			if k.InReport() == (k.NotInReport != "") {
				t.Errorf("report: drawn %v, NotInReport %q: one of them expected", k.InReport(), k.NotInReport)
			}
			if k.InReport() && k.report.draw == nil && k.report.run == nil && (k.report.title == nil || k.Draw == nil) {
				t.Error("the report draws it with Draw but has no title or no Draw")
			}
			run := registryRun()
			n := run.att["s0"][0].Shape[1]
			if k.Draw != nil {
				d, err := k.Draw(ctx, run, "s0", optionsFor(t, k, n))
				if err != nil {
					t.Fatalf("plot: %v", err)
				}
				checkDrawing(t, k, d)
			}
			if k.DrawFiles != nil {
				d, err := k.DrawFiles(filesOptions(t, n))
				if err != nil {
					t.Fatalf("plot from files: %v", err)
				}
				checkDrawing(t, k, d)
			}
			if !k.InReport() {
				if err := CheckFigures([]string{k.Name}, nil); err == nil || !strings.Contains(err.Error(), k.NotInReport) {
					t.Errorf("report --figures %s: error %v, want one giving the reason", k.Name, err)
				}
				return
			}
			if err := CheckFigures([]string{k.Name}, nil); err != nil {
				t.Fatalf("report --figures %s refused: %v", k.Name, err)
			}
			var page bytes.Buffer
			if err := WriteHTML(ctx, &page, run, HTMLOptions{DPI: 30, Figures: []string{k.Name}}); err != nil {
				t.Fatal(err)
			}
			kinds := figureKindsOf(page.String())
			if len(kinds) == 0 || slices.ContainsFunc(kinds, func(s string) bool { return s != k.Name }) {
				t.Errorf("report --figures %s drew the kinds %q", k.Name, kinds)
			}
		})
	}
}

// filesOptions writes an alignment matrix of n rows and columns with its tokens.
func filesOptions(t *testing.T, n int) FigureOptions {
	dir := t.TempDir()
	data := make([]float64, n*n)
	var toks []string
	for i := range n {
		for j := range n {
			data[i*n+j] = 1 / float64(n)
		}
		toks = append(toks, fmt.Sprintf("t%d", i))
	}
	o := DefaultFigureOptions()
	o.Attention = []string{filepath.Join(dir, "a.npy")}
	o.SourceTokens, o.TargetTokens = filepath.Join(dir, "src.txt"), filepath.Join(dir, "trg.txt")
	if err := checkpoint.WriteNpyFile(o.Attention[0], []int{n, n}, data); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{o.SourceTokens, o.TargetTokens} {
		if err := os.WriteFile(p, []byte(strings.Join(toks, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

func checkDrawing(t *testing.T, k *FigureKind, d *Drawing) {
	t.Helper()
	if d == nil || d.Figure == nil {
		t.Fatal("no figure")
	}
	d.Figure.DPI = 30
	var b bytes.Buffer
	if err := d.Figure.WriteTo(&b, viz.PNG); err != nil || b.Len() < 100 {
		t.Fatalf("PNG of %d bytes: %v", b.Len(), err)
	}
	if k.HTMLPage != (d.HTMLPage != nil) {
		t.Errorf("HTMLPage %v but the drawing has a page: %v", k.HTMLPage, d.HTMLPage != nil)
	}
	if d.HTMLPage != nil {
		b.Reset()
		if err := d.HTMLPage(&b); err != nil || !strings.Contains(b.String(), "<html") {
			t.Errorf("HTML page: %v", err)
		}
	}
	for _, f := range d.Beside {
		b.Reset()
		if err := f.Write(&b); err != nil || b.Len() == 0 {
			t.Errorf("file %s beside the figure: %d bytes, %v", f.Name, b.Len(), err)
		}
	}
}

// figureKindsOf returns the kinds of the figures of a report page.
func figureKindsOf(page string) []string {
	var out []string
	for _, part := range strings.Split(page, `<figure data-kind="`)[1:] {
		out = append(out, part[:strings.IndexByte(part, '"')])
	}
	return out
}

// A default report draws every default kind for every sample (derive outputs for the
// first only); opt-in kinds only when chosen.
func TestDefaultReportEverySample(t *testing.T) {
	run := registryRun()
	s1 := *run.samples[0]
	s1.ID = "s1"
	run.samples = append(run.samples, &s1)
	run.att["s1"], run.hidden["s1"] = run.att["s0"], run.hidden["s0"]
	run.derived["rollout"]["s1"] = run.derived["rollout"]["s0"]
	var page bytes.Buffer
	if err := WriteHTML(context.Background(), &page, run, HTMLOptions{DPI: 30}); err != nil {
		t.Fatal(err)
	}
	i := strings.Index(page.String(), `<h2 id="sample-1">`)
	if i < 0 {
		t.Fatal("no section for s1")
	}
	i0 := strings.Index(page.String(), `<h2 id="sample-0">`)
	runLevel := figureKindsOf(page.String()[:i0])
	first, second := figureKindsOf(page.String()[i0:i]), figureKindsOf(page.String()[i:])
	for _, k := range Figures() {
		if k.report != nil && k.report.run != nil {
			// Drawn once, in the Run outputs section before the samples.
			if !slices.Contains(runLevel, k.Name) || slices.Contains(first, k.Name) || slices.Contains(second, k.Name) {
				t.Errorf("kind %s: run-level section %v, sections %v %v", k.Name, runLevel, first, second)
			}
			continue
		}
		want0 := k.InDefaultReport()
		want1 := want0 && !k.report.firstSample
		if slices.Contains(first, k.Name) != want0 || slices.Contains(second, k.Name) != want1 {
			t.Errorf("kind %s: in the first section %v (want %v), in the second %v (want %v)", k.Name,
				slices.Contains(first, k.Name), want0, slices.Contains(second, k.Name), want1)
		}
	}
	var events []string
	o := HTMLOptions{DPI: 30, Figures: []string{"grid", "rollout"}, Progress: func(e ReportEvent) {
		events = append(events, fmt.Sprintf("%s %d/%d %s %v", e.Sample, e.Index, e.Total, e.Figure, e.Done))
	}}
	if err := WriteHTML(context.Background(), &bytes.Buffer{}, run, o); err != nil {
		t.Fatal(err)
	}
	want := []string{"s0 0/2  false", "s0 0/2 grid false", "s0 0/2 grid true", "s0 0/2 derived false", "s0 0/2 derived true", "s0 0/2  true",
		"s1 1/2  false", "s1 1/2 grid false", "s1 1/2 grid true", "s1 1/2 derived false", "s1 1/2 derived true", "s1 1/2  true"}
	if !slices.Equal(events, want) {
		t.Errorf("progress events\n%q\nwant\n%q", events, want)
	}
}

// The registry is the only list of figure kinds: no other composite literal of the
// figure code (report, viz, web, demo, cmd/attnscope) holds several kind names, and no
// switch of the commands or the report dispatches on a kind name.
func TestNoSecondFigureList(t *testing.T) {
	kinds := map[string]bool{}
	for _, n := range FigureNames(nil) {
		kinds[n] = true
	}
	isKind := func(e ast.Node) bool {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return false
		}
		s, err := strconv.Unquote(lit.Value)
		return err == nil && kinds[s]
	}
	for _, dir := range []string{".", "../viz", "../web", "../demo", "../cmd/attnscope"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") || filepath.Base(path) == "registry.go" {
				continue
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CompositeLit:
					if c := countFunc(n.Elts, isKind); c >= 3 {
						t.Errorf("%s: a list of %d figure kind names besides the registry", fset.Position(n.Pos()), c)
					}
				case *ast.CaseClause:
					if c := countFunc(n.List, isKind); c > 0 && dir != "../viz" && dir != "../web" {
						t.Errorf("%s: a switch on figure kind names besides the registry", fset.Position(n.Pos()))
					}
				}
				return true
			})
		}
	}
}

func countFunc[E ast.Node](s []E, f func(ast.Node) bool) int {
	n := 0
	for _, e := range s {
		if f(e) {
			n++
		}
	}
	return n
}
