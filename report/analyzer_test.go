package report

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/attnscope/attnscope/tensor"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// Oracle 30 (seeds.md §7.3): recommendation boundaries.
func TestRecommendationsOracle30(t *testing.T) {
	for _, tc := range []struct {
		name        string
		avgT        float64
		sparsity    float64
		haveWeights bool
		want        []string
	}{
		{"vanishing", 0.0009, 0.5, true, []string{RecVanishing}},
		{"exploding", 1.5, 0.5, true, []string{RecExploding}},
		{"healthy", 0.5, 0.5, true, []string{RecHealthy}},
		{"under-utilisation", 0.5, 0.85, true, []string{RecHealthy, RecUnderUtilised}},
		{"good diversity", 0.5, 0.1, true, []string{RecHealthy, RecDiverse}},
		{"no sparsity line", 0.5, 0.5, true, []string{RecHealthy}},
		{"no weights", 0.5, 0.1, false, []string{RecHealthy}},
		{"boundary 0.001 is healthy", 0.001, 0.5, true, []string{RecHealthy}},
		{"boundary 1.0 is healthy", 1.0, 0.8, true, []string{RecHealthy}},
		{"boundary sparsity 0.2", 0.5, 0.2, true, []string{RecHealthy}},
	} {
		got := Recommendations(tc.avgT, true, tc.sparsity, tc.haveWeights)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// Oracle 29 (seeds.md §7.3): entropy and sparsity of a head; attention received.
func TestHeadEntropySparsityOracle29(t *testing.T) {
	e, s, err := HeadEntropySparsity([]float64{1, 0, 0.95, 0.05}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !near(e, 0.099258, 1e-6) || s != 0.5 {
		t.Errorf("[[1,0],[0.95,0.05]]: entropy %.6f sparsity %v, want 0.099258 and 0.5", e, s)
	}
	e, s, _ = HeadEntropySparsity([]float64{0.5, 0.5, 0.5, 0.5}, 2)
	if !near(e, 0.693147, 1e-6) || s != 0 {
		t.Errorf("uniform 2×2: entropy %.6f sparsity %v, want ln 2 and 0", e, s)
	}
	ws, err := SummarizeWeights(&LayerWeights{Weights: &tensor.Tensor{Shape: []int{1, 1, 2, 2}, Data: []float64{0.5, 0.5, 0.5, 0.5}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := ws.Received; !slices.Equal(r, []float64{1, 1}) {
		t.Errorf("attention received of uniform 2×2 = %v, want [1 1]", r)
	}
}

// Oracle 31 (seeds.md §7.3): layer heatmap normalisation.
func TestLayerComparisonOracle31(t *testing.T) {
	m := layerComparison([]LayerIO{{InMean: 1}, {InMean: 3}}, []float64{0, 0})
	if m[0][0] != 0 || !near(m[1][0], 0.999999995, 1e-12) {
		t.Errorf("column [1,3] → [%v, %.12f], want [0, 0.999999995]", m[0][0], m[1][0])
	}
}

func fixture() AnalyzerData {
	d := AnalyzerData{Summary: &CaptureSummary{NumLayers: 2, TotalCaptures: 2, UniqueLayers: []string{"blocks.0.attn", "blocks.1.attn"}}}
	d.Layers = []LayerIO{
		{Name: "blocks.0.attn", InMean: 0.1, InStd: 1, OutMean: 0.3, OutStd: 1.5},
		{Name: "blocks.1.attn", InMean: 0.3, InStd: 1.5, OutMean: 0.2, OutStd: 2},
	}
	d.Weights = []LayerWeights{
		{Name: "blocks.0.attn", Weights: &tensor.Tensor{Shape: []int{1, 1, 2, 2}, Data: []float64{1, 0, 0.95, 0.05}}},
		{Name: "blocks.1.attn", Weights: &tensor.Tensor{Shape: []int{1, 1, 2, 2}, Data: []float64{0.5, 0.5, 0.5, 0.5}}},
	}
	return d
}

// The expected text follows the original's format; the entropy figures were checked
// with numpy on the original formula (0.396202 and 0.296945).
func TestAnalyzeAndText(t *testing.T) {
	a, err := Analyze(context.Background(), fixture())
	if err != nil {
		t.Fatal(err)
	}
	if !near(a.AvgTransform(), 0.15, 1e-12) {
		t.Errorf("avg transform %v, want 0.15", a.AvgTransform())
	}
	// Layer 0 has 2 of 4 weights < 0.1, layer 1 none: mean 0.25.
	if !near(a.AvgSparsity(), 0.25, 1e-12) {
		t.Errorf("avg sparsity %v, want 0.25", a.AvgSparsity())
	}
	if !a.HasPearson || !near(a.Pearson, -1, 1e-12) {
		t.Errorf("pearson %v (%v), want -1", a.Pearson, a.HasPearson)
	}
	var b strings.Builder
	if err := a.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		strings.Repeat("=", 80),
		"COMPREHENSIVE ATTENTION ANALYSIS REPORT",
		strings.Repeat("=", 80),
		"",
		"📊 BASIC STATISTICS:",
		"   • Total layers analyzed: 2",
		"   • Total attention captures: 2",
		"   • Unique layer names: 2",
		"",
		"🔍 LAYER ANALYSIS:",
		"   • Average input activation: 0.200000",
		"   • Average output activation: 0.250000",
		"   • Average transformation magnitude: 0.150000",
		"   • Max transformation: 0.200000",
		"   • Min transformation: 0.100000",
		"",
		"📋 LAYER-BY-LAYER BREAKDOWN:",
		"   Layer 0 (attn):",
		"     - Input:  mean=0.100000, std=1.000000",
		"     - Output: mean=0.300000, std=1.500000",
		"     - Transform: 0.200000",
		"   Layer 1 (attn):",
		"     - Input:  mean=0.300000, std=1.500000",
		"     - Output: mean=0.200000, std=2.000000",
		"     - Transform: 0.100000",
		"",
		"🎯 ATTENTION WEIGHT ANALYSIS:",
		"   • Number of layers with weights: 2",
		"   • Average attention entropy: 0.396202",
		"   • Average attention sparsity: 0.250000",
		"   • Entropy std: 0.296945",
		"   • Sparsity std: 0.250000",
		"",
		"💡 RECOMMENDATIONS:",
		"   • Transformation magnitudes appear healthy",
		strings.Repeat("=", 80),
	}, "\n")
	if b.String() != want {
		t.Errorf("report text:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestAnalyzeErrors(t *testing.T) {
	if _, err := Analyze(context.Background(), AnalyzerData{}); err == nil {
		t.Error("no layers: no error")
	}
	d := fixture()
	d.Weights[0].Weights.Data = d.Weights[0].Weights.Data[:3]
	if _, err := Analyze(context.Background(), d); err == nil || !strings.Contains(err.Error(), "blocks.0.attn") {
		t.Errorf("bad weight shape: error %v, want one naming blocks.0.attn", err)
	}
	d = fixture()
	d.Layers[1].OutStd = math.NaN()
	if _, err := Analyze(context.Background(), d); err == nil {
		t.Error("NaN statistic: no error")
	}
}

// PCA: rows on a line have one component explaining everything; isotropic 2-D data
// splits evenly.
func TestPCACumulative(t *testing.T) {
	line := &tensor.Tensor{Shape: []int{4, 2}, Data: []float64{0, 0, 1, 2, 2, 4, 3, 6}}
	cum, err := pcaCumulative(context.Background(), []*tensor.Tensor{line}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(cum) != 2 || !near(cum[0], 1, 1e-9) || !near(cum[1], 1, 1e-9) {
		t.Errorf("line: cumulative %v, want [1 1]", cum)
	}
	square := &tensor.Tensor{Shape: []int{4, 2}, Data: []float64{1, 0, -1, 0, 0, 1, 0, -1}}
	cum, _ = pcaCumulative(context.Background(), []*tensor.Tensor{square}, 1)
	if !near(cum[0], 0.5, 1e-9) || !near(cum[1], 1, 1e-9) {
		t.Errorf("isotropic: cumulative %v, want [0.5 1]", cum)
	}
}

// The console summary carries no emoji (the report file keeps the original's).
func TestConsoleSummaryPlain(t *testing.T) {
	a, err := Analyze(context.Background(), fixture())
	if err != nil {
		t.Fatal(err)
	}
	s := a.ConsoleSummary()
	for _, r := range s {
		if unicode.Is(unicode.So, r) {
			t.Fatalf("console summary holds %q:\n%s", r, s)
		}
	}
	if !strings.Contains(s, "BASIC STATISTICS:") {
		t.Errorf("summary lost its headings:\n%s", s)
	}
	if plainText("📊 A ✅ b") != "A b" {
		t.Errorf("plainText = %q", plainText("📊 A ✅ b"))
	}
}
