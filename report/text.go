package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode"

	"github.com/attnscope/attnscope/stats"
)

// Recommendation texts of the analyzer (seeds.md §3.3).
const (
	RecVanishing     = "Low transformation magnitude suggests potential vanishing gradients"
	RecExploding     = "High transformation magnitude suggests potential exploding gradients"
	RecHealthy       = "Transformation magnitudes appear healthy"
	RecUnderUtilised = "High attention sparsity may indicate under-utilization"
	RecDiverse       = "Low attention sparsity suggests good attention diversity"
)

// Recommendations returns the analyzer's advice: on the average transformation
// magnitude (< 0.001 vanishing, > 1.0 exploding, else healthy) when layers were
// captured, and on the average attention sparsity (> 0.8 under-utilisation, < 0.2 good
// diversity, nothing in between) when weights were captured.
func Recommendations(avgTransform float64, haveLayers bool, avgSparsity float64, haveWeights bool) []string {
	var r []string
	if haveLayers {
		switch {
		case avgTransform < VanishingTransform:
			r = append(r, RecVanishing)
		case avgTransform > ExplodingTransform:
			r = append(r, RecExploding)
		default:
			r = append(r, RecHealthy)
		}
	}
	if haveWeights {
		switch {
		case avgSparsity > UnderUtilisedSparsity:
			r = append(r, RecUnderUtilised)
		case avgSparsity < DiverseSparsity:
			r = append(r, RecDiverse)
		}
	}
	return r
}

// Metric is a named value of the summary panel.
type Metric struct {
	Name  string
	Value float64
}

// AvgTransform is mean_k T_k.
func (a *Analysis) AvgTransform() float64 { return stats.Mean(a.Transform) }

// AvgSparsity is the mean over weight captures of the fraction of all their weights
// below 0.1 (the "Attention Sparsity" metric and the recommendation's input).
func (a *Analysis) AvgSparsity() float64 { return stats.Mean(a.LayerSparsity) }

// SummaryMetrics returns the dashboard's summary panel: Avg Transform, Representation
// Diversity (mean output std), I/O Correlation (|Pearson r|, with more than one layer)
// and Attention Sparsity (with weights).
func (a *Analysis) SummaryMetrics() []Metric {
	outStd := make([]float64, len(a.Layers))
	for k, l := range a.Layers {
		outStd[k] = l.OutStd
	}
	m := []Metric{{"Avg Transform", a.AvgTransform()}, {"Representation Diversity", stats.Mean(outStd)}}
	if a.HasPearson {
		m = append(m, Metric{"I/O Correlation", abs(a.Pearson)})
	}
	if len(a.LayerSparsity) > 0 {
		m = append(m, Metric{"Attention Sparsity", a.AvgSparsity()})
	}
	return m
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// lastComponent returns the last dotted component of a module name.
func lastComponent(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// reportLines builds the lines of attention_analysis_report.txt (some start with a
// newline, as in the original, which joins them with "\n").
func (a *Analysis) reportLines() []string {
	rule := strings.Repeat("=", 80)
	l := []string{rule, "COMPREHENSIVE ATTENTION ANALYSIS REPORT", rule}
	if s := a.Summary; s != nil {
		l = append(l, "\n📊 BASIC STATISTICS:",
			fmt.Sprintf("   • Total layers analyzed: %d", s.NumLayers),
			fmt.Sprintf("   • Total attention captures: %d", s.TotalCaptures),
			fmt.Sprintf("   • Unique layer names: %d", len(s.UniqueLayers)))
	}
	in, out := make([]float64, len(a.Layers)), make([]float64, len(a.Layers))
	for k, x := range a.Layers {
		in[k], out[k] = x.InMean, x.OutMean
	}
	tmin, tmax := a.Transform[0], a.Transform[0]
	for _, t := range a.Transform {
		tmin, tmax = min(tmin, t), max(tmax, t)
	}
	l = append(l, "\n🔍 LAYER ANALYSIS:",
		fmt.Sprintf("   • Average input activation: %.6f", stats.Mean(in)),
		fmt.Sprintf("   • Average output activation: %.6f", stats.Mean(out)),
		fmt.Sprintf("   • Average transformation magnitude: %.6f", a.AvgTransform()),
		fmt.Sprintf("   • Max transformation: %.6f", tmax),
		fmt.Sprintf("   • Min transformation: %.6f", tmin),
		"\n📋 LAYER-BY-LAYER BREAKDOWN:")
	for k, x := range a.Layers {
		l = append(l, fmt.Sprintf("   Layer %d (%s):", k, lastComponent(x.Name)),
			fmt.Sprintf("     - Input:  mean=%.6f, std=%.6f", x.InMean, x.InStd),
			fmt.Sprintf("     - Output: mean=%.6f, std=%.6f", x.OutMean, x.OutStd),
			fmt.Sprintf("     - Transform: %.6f", a.Transform[k]))
	}
	if len(a.HeadEntropy) > 0 {
		var ents, sps []float64
		for i := range a.HeadEntropy {
			ents = append(ents, a.HeadEntropy[i]...)
			sps = append(sps, a.HeadSparsity[i]...)
		}
		l = append(l, "\n🎯 ATTENTION WEIGHT ANALYSIS:",
			fmt.Sprintf("   • Number of layers with weights: %d", len(a.HeadEntropy)),
			fmt.Sprintf("   • Average attention entropy: %.6f", stats.Mean(ents)),
			fmt.Sprintf("   • Average attention sparsity: %.6f", stats.Mean(sps)),
			fmt.Sprintf("   • Entropy std: %.6f", math.Sqrt(stats.PopVariance(ents))),
			fmt.Sprintf("   • Sparsity std: %.6f", math.Sqrt(stats.PopVariance(sps))))
	}
	l = append(l, "\n💡 RECOMMENDATIONS:")
	for _, r := range Recommendations(a.AvgTransform(), true, a.AvgSparsity(), len(a.LayerSparsity) > 0) {
		l = append(l, "   • "+r)
	}
	return append(l, rule)
}

// WriteText writes attention_analysis_report.txt.
func (a *Analysis) WriteText(w io.Writer) error {
	_, err := io.WriteString(w, strings.Join(a.reportLines(), "\n"))
	return err
}

// ConsoleSummary returns what the analyzer prints to the console: lines 3–14 of the
// report, without the report file's emoji (pictographs and the space after them), so
// that terminals and logs without such glyphs show plain text.
func (a *Analysis) ConsoleSummary() string {
	l := a.reportLines()
	return plainText(strings.Join(l[3:min(15, len(l))], "\n"))
}

// plainText drops symbols of Unicode category So (emoji, pictographs) and a space
// that follows one.
func plainText(s string) string {
	var b strings.Builder
	skipSpace := false
	for _, r := range s {
		switch {
		case unicode.Is(unicode.So, r) || r == 0xFE0F:
			skipSpace = true
			continue
		case skipSpace && r == ' ':
			skipSpace = false
			continue
		}
		skipSpace = false
		b.WriteRune(r)
	}
	return b.String()
}

// WriteSummaryJSON writes attention_data_summary.json.
func WriteSummaryJSON(w io.Writer, s CaptureSummary) error {
	if s.UniqueLayers == nil {
		s.UniqueLayers = []string{}
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
