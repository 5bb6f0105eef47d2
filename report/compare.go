package report

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"html/template"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/attnscope/attnscope/analysis/code"
	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/compare"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/viz"
)

// comparisonSection is the report's section on comparator outputs (attnscope
// compare): per comparison, each model's and baseline's mean score with its
// bootstrap 95% interval, every model against every baseline with Holm- and
// Benjamini–Hochberg-adjusted p-values, and the study's figures.
type comparisonSection struct {
	Dir     string
	Groups  []comparisonGroup
	Figures []figure
	Notes   []string
}

type comparisonGroup struct {
	Name, Function, Column string
	Estimates              []compare.Estimate
	Contrasts              []compare.Contrast
}

// writeComparisons renders the comparison section for the comparator outputs
// (*.csv) of dir.
func writeComparisons(ctx context.Context, w io.Writer, dir string, dpi int) error {
	sec, err := ComparisonSection(ctx, dir, dpi)
	if err != nil {
		return err
	}
	return comparisonTemplate.Execute(w, sec)
}

// ComparisonSection reads the comparator outputs of dir and computes the section.
func ComparisonSection(ctx context.Context, dir string, dpi int) (*comparisonSection, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.csv"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("comparisons %s: no comparator output (*.csv); run attnscope compare first", dir)
	}
	slices.Sort(paths)
	sec := &comparisonSection{Dir: dir}
	var tables []*compare.Scores
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s, err := compare.ReadScores(p)
		if err != nil {
			sec.Notes = append(sec.Notes, err.Error())
			continue
		}
		tables = append(tables, s)
	}
	sums, err := compare.Summarize(tables, nil)
	if err != nil {
		return nil, err
	}
	for _, s := range sums {
		sec.Groups = append(sec.Groups, comparisonGroup{Name: s.Comparison, Function: s.Function, Column: s.Column, Estimates: s.Estimates, Contrasts: s.Contrasts})
	}
	add := func(title string, f *viz.Figure, err error) {
		if err != nil {
			sec.Figures = append(sec.Figures, figure{Title: title, Note: err.Error()})
			return
		}
		f.DPI = dpi
		var b bytes.Buffer
		if err := f.WriteTo(&b, viz.PNG); err != nil {
			sec.Figures = append(sec.Figures, figure{Title: title, Note: err.Error()})
			return
		}
		sec.Figures = append(sec.Figures, figure{Title: title, DataURI: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes()))})
	}
	for _, s := range sums {
		var group []*compare.Scores
		for _, t := range tables {
			if t.Comparison == s.Comparison || t.Comparison == "" && t.Name == s.Comparison {
				group = append(group, t)
			}
		}
		switch {
		case strings.HasPrefix(s.Column, "top_") && strings.HasSuffix(s.Column, ".value"):
			f, err := TopKSharesFigure(group, s.Comparison)
			add(fmt.Sprintf("%s: distribution of %s per model and baseline", s.Comparison, s.Column), f, err)
		case strings.HasSuffix(s.Column, ".corr"):
			f, err := LineSpearmanFigure(group, s.Comparison)
			add(fmt.Sprintf("%s: line-wise Spearman ρ", s.Comparison), f, err)
		}
	}
	if f, title, err := firstCodeComparison(dir, paths); title != "" {
		add(title, f, err)
	}
	return sec, nil
}

// TopKSharesFigure draws, per output, the shares of rows whose top-k overlap is
// 0, 1, …, k as one 100%-stacked bar.
func TopKSharesFigure(tables []*compare.Scores, title string) (*viz.Figure, error) {
	k := 0
	for _, t := range tables {
		for _, v := range t.Values {
			k = max(k, int(v))
		}
	}
	cats := make([]string, k+1)
	for i := range cats {
		cats[i] = strconv.Itoa(i)
	}
	var bars []viz.ShareBar
	for _, t := range tables {
		counts := make([]float64, k+1)
		for _, v := range t.Values {
			if v >= 0 && v == math.Trunc(v) && int(v) <= k {
				counts[int(v)]++
			}
		}
		bars = append(bars, viz.ShareBar{Name: t.Name, Counts: counts})
	}
	return viz.StackedShares(bars, cats, title+": top-k overlap (% of rows)", "% of rows")
}

// LineSpearmanFigure draws one histogram of line-wise Spearman ρ per output (at
// most six).
func LineSpearmanFigure(tables []*compare.Scores, title string) (*viz.Figure, error) {
	var panels []viz.HistPanel
	for _, t := range tables {
		if len(t.Values) == 0 || len(panels) == 6 {
			continue
		}
		panels = append(panels, viz.HistPanel{Values: t.Values, Bins: 20, Title: t.Name, XLabel: "Spearman ρ per line"})
	}
	return viz.Histograms(panels, title)
}

// firstCodeComparison draws the human and the model weights of the first pair of
// the first vector comparison side by side on their source code, when both run
// folders can be found (as written in the output, or next to the output folder).
func firstCodeComparison(dir string, paths []string) (*viz.Figure, string, error) {
	for _, p := range paths {
		row, err := firstRow(p)
		if err != nil || row["comparison_type"] != "vector" || row["input_machine_filestem"] == "" {
			continue
		}
		title := fmt.Sprintf("Human session %s and model sample %s (%s)", row["input_human_filestem"], row["input_machine_filestem"], filepath.Base(p))
		find := func(folder string) string {
			for _, c := range []string{folder, filepath.Join(filepath.Dir(dir), folder)} {
				if _, err := os.Stat(filepath.Join(c, store.RunFile)); err == nil {
					return c
				}
			}
			return ""
		}
		h, m := find(row["human_att_folder"]), find(row["machine_att_folder"])
		if h == "" || m == "" {
			return nil, title, fmt.Errorf("run folders %s and %s not found", row["human_att_folder"], row["machine_att_folder"])
		}
		f, err := CodeComparisonFigure(h, m, row["provenance.human.subfolder"], row["provenance.machine.subfolder"], row["input_human_filestem"], row["input_machine_filestem"])
		return f, title, err
	}
	return nil, "", nil
}

func firstRow(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	header, err := r.Read()
	if err != nil {
		return nil, err
	}
	rec, err := r.Read()
	if err != nil {
		return nil, err
	}
	row := map[string]string{}
	for i, c := range header {
		if i < len(rec) {
			row[c] = rec[i]
		}
	}
	return row, nil
}

// CodeComparisonFigure draws a human session's and a model sample's weights over
// their source code side by side: vectors as they are (per character when they have
// one value per character, otherwise per token, spread over the token's characters),
// matrices as the attention each position receives (column sums).
func CodeComparisonFigure(humanRun, machineRun, humanPass, machinePass, humanStem, machineStem string) (*viz.Figure, error) {
	side := func(dir, pass, stem, who string) (*viz.Figure, error) {
		r, err := store.Open(dir)
		if err != nil {
			return nil, err
		}
		s, err := r.Sample(stem)
		if err != nil {
			return nil, err
		}
		a, err := checkpoint.ReadNpyFile(r.DerivedPath(pass, stem))
		if err != nil {
			return nil, err
		}
		w := a.Float64s()
		if len(a.Shape) == 2 {
			cols := make([]float64, a.Shape[1])
			for i := range a.Shape[0] {
				for j := range cols {
					cols[j] += w[i*a.Shape[1]+j]
				}
			}
			w = cols
		} else if len(a.Shape) != 1 {
			return nil, fmt.Errorf("%s: shape %v, a vector or a matrix expected", r.DerivedPath(pass, stem), a.Shape)
		}
		text := s.PromptText
		if text == "" {
			text = s.Text
		}
		chars, err := charWeights(s, text, w)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.DerivedPath(pass, stem), err)
		}
		return viz.CodeHeatmap(text, chars, viz.CodeOptions{Title: fmt.Sprintf("%s %s (%s)", who, stem, pass)})
	}
	hf, err := side(humanRun, humanPass, humanStem, "human")
	if err != nil {
		return nil, err
	}
	mf, err := side(machineRun, machinePass, machineStem, "model")
	if err != nil {
		return nil, err
	}
	return viz.SideBySide(hf, mf)
}

func charWeights(s *store.Sample, text string, w []float64) ([]float64, error) {
	n := len([]rune(text))
	switch {
	case len(w) == n && len(s.Tokens) != n:
		return w, nil
	case len(s.Offsets) > 0 && len(w) >= len(s.Offsets):
		return code.CharWeightsFromOffsets(s.Offsets, w[:len(s.Offsets)], n, code.EqualShare)
	case len(w) >= len(s.Tokens):
		return code.MapToCharLevel(s.Tokens, w[:len(s.Tokens)], text, code.EqualShare, code.ByteLevelChars())
	}
	return nil, fmt.Errorf("%d weights for %d tokens and %d characters", len(w), len(s.Tokens), n)
}

func fmtCI(e compare.Estimate) string {
	if math.IsNaN(e.Lo) {
		return "—"
	}
	return fmt.Sprintf("[%.4g, %.4g]", e.Lo, e.Hi)
}

func fmtP(p float64) string {
	if math.IsNaN(p) {
		return "—"
	}
	return fmt.Sprintf("%.3g", p)
}

var comparisonTemplate = template.Must(template.New("comparisons").Funcs(template.FuncMap{"ci": fmtCI, "p": fmtP, "v": fmtValue}).Parse(`
<h2 id="comparisons">Comparisons</h2>
<p>Comparator outputs in <code>{{.Dir}}</code>. Per comparison: the mean over human sessions of each session's mean score, with a bootstrap BCa 95% interval (9999 resamples, seed 1); then every model against every baseline (human–human pairs and artefacts named uniform, copy_cat, gaussian, ones or baseline) by the Wilcoxon signed-rank test on the sessions both have, p-values adjusted by Holm and by Benjamini–Hochberg over the contrasts of the comparison.</p>
{{range .Notes}}<p class="note">{{.}}</p>{{end}}
{{range .Groups}}<h3>{{.Name}} ({{.Function}}, score {{.Column}})</h3>
<div class="tables"><table><tr><th class="k">output</th><th>role</th><th>sessions</th><th>mean</th><th>95% CI</th></tr>
{{range .Estimates}}<tr><td class="k">{{.Name}}</td><td>{{if .Baseline}}baseline{{else}}model{{end}}</td><td>{{.Sessions}}</td><td>{{v .Mean}}</td><td>{{ci .}}</td></tr>
{{end}}</table>
{{if .Contrasts}}<table><tr><th class="k">model</th><th class="k">baseline</th><th>sessions</th><th>mean difference</th><th>W</th><th>p</th><th>p (Holm)</th><th>p (BH)</th></tr>
{{range .Contrasts}}<tr><td class="k">{{.Model}}</td><td class="k">{{.Baseline}}</td><td>{{.Sessions}}</td><td>{{v .MeanDiff}}</td><td>{{v .W}}</td><td>{{p .P}}</td><td>{{p .PHolm}}</td><td>{{p .PBH}}</td></tr>
{{end}}</table>{{end}}</div>
{{end}}
{{range .Figures}}<figure><figcaption>{{.Title}}</figcaption>
{{if .DataURI}}<img alt="{{.Title}}" src="{{.DataURI}}">{{else}}<p class="note">{{.Note}}</p>{{end}}
</figure>
{{end}}`))
