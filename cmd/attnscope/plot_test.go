package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/store"
)

// referenceRun builds a run folder from the trained code-gpt2-mini reference outputs
// (PyTorch attentions and hidden states of four texts, with their tokens and
// offsets), through the store's own writer, so the commands see a real run.
// hidden_states[0] is the embedding output and hidden_states[l+1] block l's output
// (the last one with the final norm applied, as Hugging Face returns it).
func referenceRun(t *testing.T) string {
	t.Helper()
	dir := refdata.Path(t, "models", "code-gpt2-mini")
	var ref struct {
		Cases []struct {
			Text    string   `json:"text"`
			IDs     []int    `json:"ids"`
			Tokens  []string `json:"tokens"`
			Offsets [][2]int `json:"offsets"`
		} `json:"cases"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	st, err := checkpoint.OpenSafetensors(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := filepath.Join(t.TempDir(), "run")
	run, err := store.Create(out, store.Meta{Kind: "import", DType: "float32", Hidden: true, Command: []string{"test"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range ref.Cases {
		att, ashape, err := st.Float32(fmt.Sprintf("case%d.attentions", i))
		if err != nil {
			t.Fatal(err)
		}
		hid, hshape, err := st.Float32(fmt.Sprintf("case%d.hidden_states", i))
		if err != nil {
			t.Fatal(err)
		}
		L, H, N := ashape[0], ashape[1], ashape[2]
		D := hshape[2]
		id := fmt.Sprintf("case%d", i)
		w, err := run.NewSample(id, store.SampleOptions{Layers: L, Hidden: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Record(store.EmbedName, []int{N, D}, hid[:N*D]); err != nil {
			t.Fatal(err)
		}
		for l := range L {
			if err := w.Record(store.AttentionName(l), []int{H, N, N}, att[l*H*N*N:(l+1)*H*N*N]); err != nil {
				t.Fatal(err)
			}
			if err := w.Record(store.ResidName(l), []int{N, D}, hid[(l+1)*N*D:(l+2)*N*D]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Commit(&store.Sample{ID: id, Text: c.Text, PromptText: c.Text, IDs: c.IDs, Tokens: c.Tokens, Offsets: c.Offsets, PromptLen: len(c.IDs)}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// derivedOut is one derive output: a pass's array for a sample.
type derivedOut struct {
	pass  string
	shape []int
	data  any
	axes  []store.Axis
}

func axes(names ...string) []store.Axis {
	out := make([]store.Axis, len(names))
	for i, n := range names {
		out[i] = store.Axis{Name: n}
	}
	return out
}

// writeDerived writes a sample's derive outputs where derive does
// (RUN/derived/<pass>/<sample>.npy, with the axes in pass.json).
func writeDerived(t *testing.T, r *store.Run, id string, outs ...derivedOut) {
	t.Helper()
	for _, w := range outs {
		if err := r.PreparePass(w.pass, store.PassSettings{Function: "test", Input: "attention", Kwargs: map[string]any{}, Axes: w.axes}); err != nil {
			t.Fatal(err)
		}
		if err := checkpoint.WriteNpyFile(r.DerivedPath(w.pass, id), w.shape, w.data); err != nil {
			t.Fatal(err)
		}
	}
}

// runCLI runs the attnscope command line and returns its exit code and stderr.
func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	old := os.Stderr
	r, w, _ := os.Pipe()
	os.Stderr = w
	code := run(args)
	w.Close()
	os.Stderr = old
	var b bytes.Buffer
	b.ReadFrom(r)
	return code, b.String()
}

func checkFigureFile(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	switch filepath.Ext(path) {
	case ".png":
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if img.Bounds().Dx() < 200 || img.Bounds().Dy() < 100 {
			t.Errorf("%s: %v image is too small", path, img.Bounds())
		}
	case ".svg":
		if !bytes.Contains(b[:min(len(b), 400)], []byte("<svg")) || !bytes.HasSuffix(bytes.TrimSpace(b), []byte("</svg>")) {
			t.Errorf("%s: not an SVG document", path)
		}
	case ".pdf":
		if !bytes.HasPrefix(b, []byte("%PDF-")) || !bytes.Contains(b[len(b)-64:], []byte("%%EOF")) {
			t.Errorf("%s: not a PDF document", path)
		}
	case ".html":
		if !bytes.Contains(b, []byte("<pre")) {
			t.Errorf("%s: no code in the HTML", path)
		}
	}
}

func TestPlotCommandOnReferenceRun(t *testing.T) {
	runDir := referenceRun(t)
	out := t.TempDir()
	for _, tc := range []struct {
		args []string
		file string
	}{
		{[]string{"heatmap", "--sample", "case1", "--layer", "2", "--head", "1"}, "heatmap.png"},
		{[]string{"heatmap", "--sample", "case1", "--reduce", "mean"}, "heatmap.svg"},
		{[]string{"heatmap", "--sample", "case3"}, "heatmap.pdf"},
		{[]string{"grid", "--sample", "case1", "--clip", "99"}, "grid.png"},
		{[]string{"grid"}, "grid.pdf"},
		{[]string{"code", "--sample", "case1"}, "code.png"},
		{[]string{"code", "--sample", "case3", "--dist", "equal_share", "--query", "10"}, "code.html"},
		{[]string{"code", "--sample", "case0", "--tokens", "):"}, "code-tokens.svg"},
		{[]string{"code-weights", "--sample", "case1"}, "code-weights.png"},
		{[]string{"code-weights", "--sample", "case0", "--tokens", "):", "--dist", "equal_share"}, "code-weights.svg"},
		{[]string{"entropy", "--sample", "case1"}, "entropy.png"},
		{[]string{"received", "--sample", "case1", "--layer", "1"}, "received.svg"},
		{[]string{"graph", "--sample", "case0"}, "graph.png"},
		{[]string{"js", "--sample", "case0"}, "js-units.png"},
		{[]string{"js", "--sample", "case0", "--by-layer"}, "js-layers.svg"},
		{[]string{"crispiness", "--sample", "case0"}, "crisp.png"},
		{[]string{"crispiness", "--sample", "case0", "--mass"}, "crisp-mass.pdf"},
		{[]string{"graph", "--sample", "case0", "--head", "2", "--top-k", "2"}, "graph.pdf"},
	} {
		path := filepath.Join(out, tc.file)
		args := append([]string{"plot", tc.args[0], runDir, "--out", path, "--dpi", "72"}, tc.args[1:]...)
		if code, stderr := runCLI(t, args...); code != exitOK {
			t.Fatalf("attnscope %s: exit %d: %s", strings.Join(args, " "), code, stderr)
		}
		checkFigureFile(t, path)
	}
	// plot creates its output folder, as capture and derive do.
	path := filepath.Join(out, "new", "folder", "max.png")
	if code, stderr := runCLI(t, "plot", "heatmap", runDir, "--reduce", "max", "--out", path, "--dpi", "60"); code != exitOK {
		t.Fatalf("plot into a new folder: exit %d: %s", code, stderr)
	}
	checkFigureFile(t, path)
}

func TestPlotDashboardWritesReports(t *testing.T) {
	runDir := referenceRun(t)
	out := t.TempDir()
	png := filepath.Join(out, "comprehensive_attention_analysis.png")
	if code, stderr := runCLI(t, "plot", "dashboard", runDir, "--sample", "case1", "--out", png, "--dpi", "40"); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	checkFigureFile(t, png)
	txt, err := os.ReadFile(filepath.Join(out, "attention_analysis_report.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"COMPREHENSIVE ATTENTION ANALYSIS REPORT", "Total layers analyzed: 4", "Layer 3 (attn):", "Number of layers with weights: 4", "💡 RECOMMENDATIONS:"} {
		if !strings.Contains(string(txt), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	var sum struct {
		NumLayers     int      `json:"num_layers"`
		TotalCaptures int      `json:"total_captures"`
		UniqueLayers  []string `json:"unique_layers"`
	}
	b, err := os.ReadFile(filepath.Join(out, "attention_data_summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.NumLayers != 4 || sum.TotalCaptures != 4 || len(sum.UniqueLayers) != 4 || sum.UniqueLayers[0] != "blocks.0.attn" {
		t.Errorf("summary %+v", sum)
	}
}

func TestPlotBadInput(t *testing.T) {
	runDir := referenceRun(t)
	out := t.TempDir()
	// A run whose only sample has no attention.
	empty := filepath.Join(t.TempDir(), "empty")
	r, err := store.Create(empty, store.Meta{Kind: "import"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.WriteSample(&store.Sample{ID: "s0", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(out, "x.png")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"layer out of range", []string{"plot", "heatmap", runDir, "--layer", "4", "--out", png}, exitError, "layer 4 out of range"},
		{"head out of range", []string{"plot", "heatmap", runDir, "--layer", "0", "--head", "4", "--out", png}, exitError, "head 4 out of range"},
		{"negative head", []string{"plot", "heatmap", runDir, "--head", "-2", "--out", png}, exitUsage, "--head -2"},
		{"unknown sample", []string{"plot", "grid", runDir, "--sample", "nope", "--out", png}, exitError, `no sample "nope" (samples: case0, case1`},
		{"clip on received", []string{"plot", "received", runDir, "--clip", "99", "--out", png}, exitUsage, "plot received does not use --clip"},
		{"clip on entropy", []string{"plot", "entropy", runDir, "--clip", "99", "--out", png}, exitUsage, "does not use --clip"},
		{"clip on js", []string{"plot", "js", runDir, "--clip", "99", "--out", png}, exitUsage, "does not use --clip"},
		{"layer and head on grid", []string{"plot", "grid", runDir, "--layer", "1", "--head", "0", "--out", png}, exitUsage, "plot grid does not use --head, --layer"},
		{"unknown reduction", []string{"plot", "heatmap", runDir, "--reduce", "median", "--out", png}, exitUsage, "mean, sum, max, min"},
		{"no attention", []string{"plot", "heatmap", empty, "--out", png}, exitError, "no attention"},
		{"no attention (report)", []string{"report", empty, "--out", filepath.Join(out, "r.html")}, exitError, "no attention"},
		{"not a run", []string{"plot", "grid", out, "--out", png}, exitError, "not a run folder"},
		{"unknown kind", []string{"plot", "pie", runDir, "--out", png}, exitUsage, "unknown figure kind"},
		{"unknown extension", []string{"plot", "grid", runDir, "--out", filepath.Join(out, "x.gif")}, exitUsage, ".gif"},
		{"no --out", []string{"plot", "grid", runDir}, exitUsage, "--out"},
		{"head and reduce", []string{"plot", "heatmap", runDir, "--head", "1", "--reduce", "mean", "--out", png}, exitUsage, "exclude"},
		{"dashboard without hidden", []string{"plot", "dashboard", empty, "--out", png}, exitError, "attention"},
		{"code token absent", []string{"plot", "code", runDir, "--tokens", "@@", "--out", png}, exitError, "no token"},
		{"derived without --pass", []string{"plot", "derived", runDir, "--out", png}, exitUsage, "--pass"},
		{"derived pass missing", []string{"plot", "derived", runDir, "--pass", "rollout", "--out", png}, exitError, "attnscope derive"},
	} {
		code, stderr := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d mentioning %q", tc.name, code, stderr, tc.code, tc.want)
		}
		if _, err := os.Stat(png); err == nil {
			t.Fatalf("%s: a failed command left %s behind", tc.name, png)
		}
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("failed commands left files: %v", ents)
	}
}

func TestPlotDerivedAndReference(t *testing.T) {
	runDir := referenceRun(t)
	r, err := store.Open(runDir)
	if err != nil {
		t.Fatal(err)
	}
	// A derived [L, N, N] output and a units × units JS-like matrix written as derive
	// would (RUN/derived/<pass>/<sample>.npy).
	const N = 13
	roll := make([]float32, 4*N*N)
	for l := range 4 {
		for i := range N {
			roll[l*N*N+i*N+i] = 1
		}
	}
	js := make([]float64, 16*16)
	for i := range 16 {
		for j := range 16 {
			js[i*16+j] = float64((i-j)*(i-j)) / 225
		}
	}
	writeDerived(t, r, "case0", derivedOut{"rollout", []int{4, N, N}, roll, axes(store.AxisLayer, store.AxisQuery, store.AxisKey)},
		derivedOut{"js_units", []int{16, 16}, js, axes(store.AxisUnit, store.AxisUnit)},
		derivedOut{"crisp", []int{4, 4, 10}, js[:160], axes(store.AxisLayer, store.AxisHead, store.AxisPoint)})
	labels := make([]int64, N*N)
	for i := range labels {
		labels[i] = -100
	}
	for i := 8; i < N; i++ {
		for j := 0; j <= i; j++ {
			labels[i*N+j] = 0
		}
		labels[i*N+i-3] = 1
	}
	lpath := filepath.Join(t.TempDir(), "labels.npy")
	if err := checkpoint.WriteNpyFile(lpath, []int{N, N}, labels); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	for _, tc := range [][]string{
		{"derived", "--pass", "rollout", "--layer", "1"},
		{"graph", "--pass", "rollout"},
		{"slices", "--pass", "rollout", "--clip", "99.9"},
		{"derived", "--pass", "crisp"},
		{"derived", "--pass", "js_units"},
		{"reference", "--labels", lpath},
		{"reference-scores", "--labels", lpath, "--pass", "rollout"},
	} {
		path := filepath.Join(out, tc[0]+".png")
		args := append([]string{"plot", tc[0], runDir, "--sample", "case0", "--out", path, "--dpi", "60"}, tc[1:]...)
		if code, stderr := runCLI(t, args...); code != exitOK {
			t.Fatalf("attnscope %s: exit %d: %s", strings.Join(args, " "), code, stderr)
		}
		checkFigureFile(t, path)
	}
}

func TestReportCommand(t *testing.T) {
	runDir := referenceRun(t)
	r, err := store.Open(runDir)
	if err != nil {
		t.Fatal(err)
	}
	// Derived outputs as derive writes them: a [L, N, N] rollout-like array and a
	// 16 × 16 units matrix (4 layers × 4 heads) for case0, an unsupported 1-D one, an
	// empty pair list (head_redundancy finding nothing) and a two-row one.
	const N = 13
	roll := make([]float32, 4*N*N)
	for i := range roll {
		roll[i] = float32(i%N) / N
	}
	units := make([]float64, 256)
	for i := range units {
		units[i] = float64(i%16) / 16
	}
	// "pairs" is a list of (layer, head 1, head 2, distance) records (declared axes
	// [record, column]), shown as a table; "per_head", of the same shape but axes
	// [layer, head], is a layers × heads matrix and drawn; "vector" [key] as bars.
	cols := []store.Axis{{Name: store.AxisRecord}, {Name: store.AxisColumn, Labels: []string{"layer", "head 1", "head 2", "JS distance"}}}
	writeDerived(t, r, "case0", derivedOut{"rollout", []int{4, N, N}, roll, axes(store.AxisLayer, store.AxisQuery, store.AxisKey)},
		derivedOut{"js_units", []int{16, 16}, units, axes(store.AxisUnit, store.AxisUnit)},
		derivedOut{"vector", []int{N}, roll[:N], axes(store.AxisKey)},
		derivedOut{"no_pairs", []int{0, 4}, []float64{}, cols}, derivedOut{"pairs", []int{2, 4}, []float64{0, 1, 3, 0.0625, 2, 0, 2, 0.125}, cols},
		derivedOut{"per_head", []int{2, 4}, []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8}, axes(store.AxisLayer, store.AxisHead)})
	out := filepath.Join(t.TempDir(), "r.html")
	if code, stderr := runCLI(t, "report", runDir, "--out", out, "--dpi", "50", "--max-samples", "2"); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{"Sample case0", "Sample case1", "2 more sample(s) not shown", "def add(a, b):", "COMPREHENSIVE ATTENTION ANALYSIS REPORT", "import",
		"Derived: rollout", "Derived: js_units", `<figcaption>Derived: vector</figcaption>` + "\n" + `<img`,
		"Derived: no_pairs", "empty output (shape [0 4]): the pass found nothing in this sample",
		"Derived: pairs", `<table class="values"><tr><th>layer</th><th>head 1</th><th>head 2</th><th>JS distance</th></tr><tr><td>0</td><td>1</td><td>3</td><td>0.0625</td></tr><tr><td>2</td>`,
		`<figcaption>Derived: per_head</figcaption>` + "\n" + `<img`} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") || strings.Contains(page, "<script") {
		t.Error("report refers to the network or holds a script")
	}
}
