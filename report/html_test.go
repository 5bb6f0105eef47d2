package report

import (
	"errors"
	"math"

	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/analysis/code"
)

const testCode = "def sum(a, b):\n    c = a + b\n    return c\n"

func TestWriteHTML(t *testing.T) {
	run := newMemRun(testCode, 3, 4, 16, 8)
	var b bytes.Buffer
	if err := WriteHTML(context.Background(), &b, run, HTMLOptions{DPI: 60}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		"<h2 id=\"provenance\">", "tiny-gpt2", `{&#34;n_layer&#34;:3}`,
		"<caption>entropy</caption>", "<caption>js</caption>", "<th>head_diversity</th>",
		"<caption>entropy/mean_row_entropy</caption>", "<th>H3</th>",
		// Layer 0's mean over its 4 heads of 1 + 0.1·h: 1.15; layer 1's diversity 0.31.
		"<td class=\"k\">L0</td><td>1.15</td>", "<td class=\"k\">L1</td><td>0.31</td>",
		`<h2 id="sample-0">Sample s0</h2>`, "All heads", "Layer 2, mean of heads",
		"Attention received, layer 2", "Entropy and maximum weight", "Code heatmap",
		"Attention analysis dashboard", "COMPREHENSIVE ATTENTION ANALYSIS REPORT",
		`class="codeheat"`, "prompt of 8 token(s)", "Generated × prompt tokens, layer 2", "Code heatmap: sorted character weights",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if n := strings.Count(page, `src="data:image/png;base64,`); n != 10 {
		t.Errorf("%d inlined PNG figures, want 10 (grid, heatmap, generated × prompt alignment, received, histograms, JS units, JS layers, crispiness, sorted code weights, dashboard)", n)
	}
	for _, want := range []string{"Jensen–Shannon distance between heads", "Jensen–Shannon distance between layers", "Crispiness of every head"} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Nothing may point outside the file.
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*"(https?:|//|file:)`).FindString(page); m != "" {
		t.Errorf("report references an external resource: %s", m)
	}
	if strings.Contains(page, "<script") {
		t.Error("report contains a script")
	}
	// Layer-by-layer streaming: each figure reads layers one at a time; the run never
	// holds more than the memRun's own storage.
	if run.reads == 0 {
		t.Error("no attention layer read")
	}
	if os.Getenv("ATTNSCOPE_KEEP_REPORT") != "" {
		os.WriteFile(filepath.Join(os.TempDir(), "attnscope-report.html"), b.Bytes(), 0o644)
	}
}

// The dashboard of a run without hidden states is left out silently by default (no
// note the user did not ask for) and explained when chosen with Figures; the code
// heatmap is drawn only for source code (a sample with a language) unless chosen.
func TestWriteHTMLWithoutHiddenStates(t *testing.T) {
	run := newMemRun(testCode, 2, 2, 0, 0)
	var b bytes.Buffer
	if err := WriteHTML(context.Background(), &b, run, HTMLOptions{DPI: 50}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "not drawn") {
		t.Error("default report holds a \"not drawn\" note")
	}
	b.Reset()
	if err := WriteHTML(context.Background(), &b, run, HTMLOptions{DPI: 50, Figures: []string{"dashboard", "grid"}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "the run has no hidden states") {
		t.Error("missing dashboard is not explained when chosen")
	}
	if strings.Contains(b.String(), "Code heatmap") || !strings.Contains(b.String(), "All heads") {
		t.Error("Figures: [dashboard, grid] drew other figures or not the grid")
	}
	run.samples[0].Language = ""
	b.Reset()
	if err := WriteHTML(context.Background(), &b, run, HTMLOptions{DPI: 50}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "Code heatmap") {
		t.Error("code heatmap drawn for a sample that is not source code")
	}
}

func TestWriteHTMLRunWithoutAttention(t *testing.T) {
	run := newMemRun(testCode, 0, 2, 0, 0)
	err := WriteHTML(context.Background(), &bytes.Buffer{}, run, HTMLOptions{})
	if err == nil || !strings.Contains(err.Error(), "no attention") {
		t.Fatalf("run without attention: error %v, want one saying it has no attention", err)
	}
}

func TestFigureErrors(t *testing.T) {
	ctx := context.Background()
	run := newMemRun(testCode, 2, 2, 0, 0)
	if _, err := HeatmapFigure(ctx, run, "s0", 2, 0, 0); err == nil || !strings.Contains(err.Error(), "layer 2 out of range") {
		t.Errorf("layer out of range: %v", err)
	}
	if _, err := HeatmapFigure(ctx, run, "s0", 1, 2, 0); err == nil || !strings.Contains(err.Error(), "head 2 out of range") {
		t.Errorf("head out of range: %v", err)
	}
	if _, err := HeatmapFigure(ctx, run, "nope", 0, 0, 0); err == nil {
		t.Error("unknown sample: no error")
	}
	if _, err := GridFigure(ctx, newMemRun(testCode, 0, 2, 0, 0), "s0", 0); err == nil || !strings.Contains(err.Error(), "no attention") {
		t.Errorf("no attention: %v", err)
	}
	run.att["s0"][1].Data[run.att["s0"][1].Shape[2]+1] = nan()
	if _, err := GridFigure(ctx, run, "s0", 0); err == nil || !strings.Contains(err.Error(), "layer 1 head 0 row 1") {
		t.Errorf("NaN attention: %v", err)
	}
}

// A generation's code heatmap shows only its prompt, coloured by the attention of the
// last prompt token (the query predicting the first generated token).
func TestCodeWeightsPromptOnly(t *testing.T) {
	run := newMemRun(testCode, 2, 2, 0, 8)
	s := run.samples[0]
	s.PromptText = string([]rune(testCode)[:s.Offsets[7][1]])
	got, w, title, err := CodeWeights(context.Background(), run, "s0", -1, CodeQuery{Query: -1}, code.Replication)
	if err != nil {
		t.Fatal(err)
	}
	if got.Text != s.PromptText || len(w) != len([]rune(s.PromptText)) {
		t.Fatalf("text %q (%d weights), want the prompt %q", got.Text, len(w), s.PromptText)
	}
	if !strings.Contains(title, "token 7") {
		t.Errorf("title %q does not name query token 7", title)
	}
	// Replication: every character of token j carries attention[7][j] (layer 1, head mean).
	mean := headMean(run.att["s0"][1])
	k := run.att["s0"][1].Shape[2]
	for j := range 8 {
		o := s.Offsets[j]
		for c := o[0]; c < o[1]; c++ {
			if math.Abs(w[c]-mean[7*k+j]) > 1e-12 {
				t.Fatalf("char %d of token %d: weight %v, want %v", c, j, w[c], mean[7*k+j])
			}
		}
	}
	if _, _, _, err := CodeWeights(context.Background(), run, "s0", -1, CodeQuery{Tokens: "nope"}, code.Replication); err == nil {
		t.Error("absent token: no error")
	}
}

func TestWriteHTMLCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := WriteHTML(ctx, &bytes.Buffer{}, newMemRun(testCode, 2, 2, 0, 0), HTMLOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: error %v, want context.Canceled", err)
	}
	if _, err := GridFigure(ctx, newMemRun(testCode, 2, 2, 0, 0), "s0", 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("grid with a cancelled context: error %v", err)
	}
}
