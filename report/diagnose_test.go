package report

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/diagnose"
	"github.com/attnscope/attnscope/internal/refdata"
)

// TestDiagnoseFigure draws pretrained and scratch Jacobian runs side by side
// and LayerNorm curves, and refuses to mix diagnostics in one figure.
func TestDiagnoseFigure(t *testing.T) {
	dir := refdata.Path(t, "models", "tiny-bert")
	tmp := t.TempDir()
	text := filepath.Join(tmp, "in.txt")
	if err := os.WriteFile(text, []byte("def f(x):\n    return x\nprint(1)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(name string, scratch bool, f func(context.Context, *diagnose.Setup) (string, error)) string {
		s, err := diagnose.Prepare(diagnose.Options{ModelDir: dir, Scratch: scratch, Text: text, MaxLen: 16, Batches: 2, BatchSize: 1, Out: filepath.Join(tmp, name)}, false)
		if err != nil {
			t.Fatal(err)
		}
		out, err := f(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	jac := func(ctx context.Context, s *diagnose.Setup) (string, error) {
		return diagnose.RunJacobian(ctx, s, 0, nil)
	}
	ln := func(ctx context.Context, s *diagnose.Setup) (string, error) {
		return diagnose.RunLayerNorm(ctx, s, nil)
	}
	jp, js, lp := run("jp", false, jac), run("js", true, jac), run("lp", false, ln)
	for i, runs := range [][]string{{jp, js}, {lp}} {
		fig, err := DiagnoseFigure(runs, nil)
		if err != nil {
			t.Fatal(err)
		}
		png := filepath.Join(tmp, "f.png")
		if err := fig.Save(png); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(png); err != nil || st.Size() < 5000 {
			t.Fatalf("figure %d: %v", i, err)
		}
	}
	r, err := OpenRun(jp)
	if err != nil {
		t.Fatal(err)
	}
	var html strings.Builder
	if err := WriteHTML(context.Background(), &html, r, HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html.String(), `<h2 id="run-outputs">Run outputs</h2>`) || !strings.Contains(html.String(), "<figcaption>Run output: "+diagnose.JacobianDensity) ||
		!strings.Contains(html.String(), "data:image/png;base64,") {
		t.Error("the HTML report of a diagnose run has no run-output figure of its singular values")
	}
	if _, err := DiagnoseFigure([]string{jp, lp}, nil); err == nil || !strings.Contains(err.Error(), "draw runs of one diagnostic side by side") {
		t.Errorf("mixed diagnostics: %v", err)
	}
}
