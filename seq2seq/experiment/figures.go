package experiment

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/report"
	"github.com/attnscope/attnscope/viz"
)

// ExampleIndices are the test examples of the notebook's attention_example_{1,2,3}.
var ExampleIndices = []int{0, 5, 10}

func save(fig *viz.Figure, path string) error {
	fig.DPI = 150
	return fig.Save(path)
}

// writeFigures draws training_curves, bleu_vs_length, model_comparison, and from
// the run folder attention_example_{1,2,3} and attention_entropy_analysis.
func writeFigures(out string, res *Results) error {
	dir := filepath.Join(out, "figures")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var curves, byLen, cmp []viz.Series
	for _, m := range res.Models {
		tr := viz.Series{Name: m.Kind + " train"}
		va := viz.Series{Name: m.Kind + " validation"}
		for _, h := range m.History {
			tr.X, tr.Y = append(tr.X, float64(h.Epoch)), append(tr.Y, h.TrainLoss)
			va.X, va.Y = append(va.X, float64(h.Epoch)), append(va.Y, h.ValLoss)
		}
		curves = append(curves, tr, va)
		bl := viz.Series{Name: m.Kind}
		for _, b := range m.Greedy.ByLength {
			bl.X, bl.Y = append(bl.X, float64(b.Start)), append(bl.Y, b.BLEU)
		}
		byLen = append(byLen, bl)
		g := m.Greedy
		cmp = append(cmp, viz.Series{Name: m.Kind, X: []float64{1, 2, 3, 4, 5},
			Y: []float64{100 * g.BLEU, g.CorpusBLEU, 100 * g.ExactMatch, 100 * g.TokenAccuracy, 100 * g.SyntaxValid}})
	}
	for _, f := range []struct {
		name   string
		series []viz.Series
		o      viz.CurvesOptions
	}{
		{"training_curves.png", curves, viz.CurvesOptions{Title: "Training curves", XLabel: "Epoch", YLabel: "Cross-entropy loss"}},
		{"bleu_vs_length.png", byLen, viz.CurvesOptions{Title: "BLEU by docstring length (bins of 10 tokens)", XLabel: "Source length bin start (tokens)", YLabel: "Mean BLEU"}},
		{"model_comparison.png", cmp, viz.CurvesOptions{Title: "Model comparison: 1 BLEU×100, 2 corpus BLEU, 3 exact match %, 4 token accuracy %, 5 syntax valid %", XLabel: "Metric", YLabel: "Score"}},
	} {
		fig, err := viz.Curves(f.series, f.o)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		if err := save(fig, filepath.Join(dir, f.name)); err != nil {
			return err
		}
	}
	if res.Run == "" {
		return nil
	}
	run, err := report.OpenRun(res.Run)
	if err != nil {
		return err
	}
	ids, err := run.Samples()
	if err != nil {
		return err
	}
	var ms []viz.Matrix
	for _, id := range ids {
		m, _, _, err := report.GenerationAlignment(context.Background(), run, id, 0, 0)
		if err != nil {
			return err
		}
		ms = append(ms, m)
	}
	for k, i := range ExampleIndices {
		id := fmt.Sprintf("test-%04d", i)
		if !slices.Contains(ids, id) {
			continue
		}
		fig, err := report.AlignmentFigure(context.Background(), run, id, 0, 0)
		if err != nil {
			return err
		}
		if err := save(fig, filepath.Join(dir, fmt.Sprintf("attention_example_%d.png", k+1))); err != nil {
			return err
		}
	}
	fig, err := report.AlignmentEntropyFigure(ms, fmt.Sprintf("Attention over %d decoding steps of %d test examples", res.Attention.Steps, len(ms)))
	if err != nil {
		return err
	}
	return save(fig, filepath.Join(dir, "attention_entropy_analysis.png"))
}

// writeReport writes report.md: the corpus, the models' scores and the figures.
func writeReport(out string, res *Results) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Docstring → code seq2seq (Text_to_Python)\n\n")
	fmt.Fprintf(&b, "Corpus: %d pairs; split %d train / %d validation / %d test; vocabularies %d (docstrings) and %d (code): words seen at least %d times in train.\n\n",
		res.Corpus.Pairs, res.Corpus.Train, res.Corpus.Val, res.Corpus.Test, res.Corpus.SrcVocab, res.Corpus.TrgVocab, res.FreqThreshold)
	c := res.Config
	fmt.Fprintf(&b, "Models: embed %d, hidden %d, %d layers, dropout %.2f, source ≤ %d tokens, code ≤ %d tokens, attention mask on padding: %v; Adam lr %g, clip %g, teacher forcing %.2f, %d epochs of batches of %d.\n\n",
		c.Embed, c.Hidden, c.Layers, c.Dropout, c.MaxSrcLen, c.MaxTrgLen, c.MaskPadding, res.Hyper.LearningRate, res.Hyper.ClipNorm, res.Hyper.TeacherForcing, res.Epochs, res.BatchSize)
	fmt.Fprintf(&b, "| model | parameters | best epoch | BLEU | corpus BLEU | exact match | token accuracy | syntax valid | train s |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, m := range res.Models {
		g := m.Greedy
		fmt.Fprintf(&b, "| %s | %d | %d | %.4f | %.2f | %.3f | %.3f | %.3f | %.0f |\n", m.Kind, m.Parameters, m.BestEpoch, g.BLEU, g.CorpusBLEU, g.ExactMatch, g.TokenAccuracy, g.SyntaxValid, m.TrainSeconds)
		if m.Beam != nil {
			fmt.Fprintf(&b, "| %s (beam) | | | %.4f | %.2f | %.3f | %.3f | %.3f | |\n", m.Kind, m.Beam.BLEU, m.Beam.CorpusBLEU, m.Beam.ExactMatch, m.Beam.TokenAccuracy, m.Beam.SyntaxValid)
		}
	}
	b.WriteString("\nBLEU is Text_to_Python's sentence BLEU (0–1, averaged); corpus BLEU uses sacreBLEU's settings (0–100, tokenize none, exp smoothing). Greedy decoding unless marked beam.\n\n")
	if a := res.Attention; a != nil {
		fmt.Fprintf(&b, "Attention (first %d test examples, %d decoding steps): entropy %.3f ± %.3f nats, max weight %.3f ± %.3f. Alignments are in `%s` (`attnscope plot alignment %s --sample test-0000`).\n\n",
			a.Samples, a.Steps, a.EntropyMean, a.EntropyStd, a.MaxMean, a.MaxStd, res.Run, res.Run)
	}
	for _, f := range []string{"training_curves", "bleu_vs_length", "model_comparison", "attention_example_1", "attention_example_2", "attention_example_3", "attention_entropy_analysis"} {
		if _, err := os.Stat(filepath.Join(out, "figures", f+".png")); err == nil {
			fmt.Fprintf(&b, "![%s](figures/%s.png)\n\n", f, f)
		}
	}
	return atomicfile.WriteFile(filepath.Join(out, "report.md"), []byte(b.String()))
}
