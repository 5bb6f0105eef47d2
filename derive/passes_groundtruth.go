package derive

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/attnscope/attnscope/analysis"
	"github.com/attnscope/attnscope/analysis/code"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tasks/followup"
	"github.com/attnscope/attnscope/tensor"
)

// groundTruthCriteria names the entries of ground_truth_lines' last axis (and, with the
// gt_ prefix, its metrics).
var groundTruthCriteria = []string{"relevant_mass", "uniform_baseline", "weighted_truth", "spearman"}

// groundTruthSpec is the pass "ground_truth_lines": machine attention scored against
// the ground-truth line weights of followup-attention's prompt creators
// (`attnscope tasks create`). For every matrix (the last two axes) it sums the attention
// of the query rows (query: last, the last prompt token, the one predicting the answer;
// last_line, every prompt token of the last line) over the key tokens of each line of
// the prompt (a token's line: the newlines before its first character; tokens without
// characters, such as BOS, are left out), and scores that line vector against the
// weights with analysis.ScoreGroundTruth: [..., 4] = (relevant mass, uniform baseline,
// weighted truth, Spearman ρ), also reported as metrics gt_<criterion>; with last_line:
// false the last line (the query itself) is left out of the score. A sample's
// ground truth is <ground_truth>/<stem>.json, stem being its source file's name without
// extension; the prompt text must be the file's lines.
func groundTruthSpec() Spec {
	return Spec{
		Name:   "ground_truth_lines",
		Layers: EachLayer, // per matrix: attention is read one layer at a time
		Doc:    "line-level attention of the last prompt token (or line) scored against a prompt creator's ground-truth line weights: relevant mass, uniform baseline, weighted truth, Spearman ρ",
		Input:  TakesTensor,
		Kwargs: map[string]KwargSpec{
			"ground_truth": {Kind: KwString, Default: "", Doc: "folder of the ground-truth JSON files (ground_truth_folder of attnscope tasks create)"},
			"query":        {Kind: KwString, Default: "last", Enum: []string{"last", "last_line"}, Doc: "query rows: the last prompt token, or every token of the prompt's last line"},
			"last_line":    {Kind: KwBool, Default: true, Doc: "score the prompt's last line (the query, weight 1) too; false scores the earlier lines only, so attention a token pays to its own line does not count as relevant"},
		},
		Fn:        groundTruthLines,
		Summarize: summarizeGroundTruth,
	}
}

// groundTruthFor reads the ground truth of a sample and checks it describes its text.
func groundTruthFor(dir string, m *store.Sample) (*followup.GroundTruth, error) {
	if dir == "" {
		return nil, errors.New("kwarg ground_truth: the folder of the ground-truth JSON files is required")
	}
	if m == nil || m.Source == "" {
		return nil, errors.New("the sample has no source file, and the ground truth is found by the prompt file's name (capture --prompts or --file)")
	}
	base := filepath.Base(m.Source)
	path := filepath.Join(dir, strings.TrimSuffix(base, filepath.Ext(base))+".json")
	g, err := followup.ReadGroundTruth(path)
	if err != nil {
		return nil, err
	}
	if text := strings.Join(g.AttendableParts, "\n"); strings.TrimSuffix(promptText(m), "\n") != text {
		return nil, fmt.Errorf("%s: its attendable_parts joined by newlines are not the sample's prompt text (was the prompt cut, e.g. by --stop-line?)", path)
	}
	return g, nil
}

func groundTruthLines(ctx context.Context, in *Input, kw Kwargs) (*Result, error) {
	lead, count, n, err := matrices(in.Tensor)
	if err != nil {
		return nil, err
	}
	p, err := promptTokens(in.Meta, n)
	if err != nil {
		return nil, err
	}
	g, err := groundTruthFor(kw.String("ground_truth"), in.Meta)
	if err != nil {
		return nil, err
	}
	lines, err := code.LinesFromOffsets(promptText(in.Meta), in.Meta.Offsets[:p])
	if err != nil {
		return nil, err
	}
	keys, rows := groundTruthTokens(in.Meta.Offsets[:p], lines, len(g.AttentionWeights), kw.String("query"))
	if len(rows) == 0 {
		return nil, errors.New("the prompt has no token with characters to take as the query")
	}
	nc := len(groundTruthCriteria)
	out := tensor.New(append(append([]int(nil), lead...), nc)...)
	res := &Result{Tensor: out}
	weights := g.AttentionWeights
	if !kw.Bool("last_line") {
		if weights = weights[:len(weights)-1]; len(weights) == 0 {
			return nil, errors.New("last_line: false leaves no line to score in a one-line prompt")
		}
	}
	a := make([]float64, len(g.AttentionWeights))
	for k := 0; k < count; k++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		mat := in.Tensor.Data[k*n*n:][:n*n]
		clear(a)
		for _, q := range rows {
			for _, j := range keys {
				a[lines[j]] += mat[q*n+j]
			}
		}
		s, err := analysis.ScoreGroundTruth(a[:len(weights)], weights)
		if err != nil {
			return nil, err
		}
		v := []float64{s.RelevantMass, s.UniformBaseline, s.WeightedTruth, s.Spearman}
		copy(out.Data[k*nc:], v)
		layer, head := metricIndex(lead, k)
		for c, name := range groundTruthCriteria {
			res.Metrics = append(res.Metrics, Metric{Layer: layer, Head: head, Name: "gt_" + name, Value: v[c]})
		}
	}
	return res, nil
}

// groundTruthTokens returns the key tokens counted (with characters, on one of the
// nLines lines) and the query rows (the last such token, or those of the last line).
func groundTruthTokens(offsets [][2]int, lines []int, nLines int, query string) (keys, rows []int) {
	for j, o := range offsets {
		if o[1] > o[0] && lines[j] < nLines {
			keys = append(keys, j)
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	last := keys[len(keys)-1]
	if query == "last" {
		return keys, []int{last}
	}
	for _, j := range keys {
		if lines[j] == lines[last] {
			rows = append(rows, j)
		}
	}
	return keys, rows
}

// metricIndex gives the metric's layer and head of matrix k: (l, h) for [L,H,...],
// (l, -1) for [L,...], (-1, -1) otherwise.
func metricIndex(lead []int, k int) (layer, head int) {
	switch len(lead) {
	case 2:
		return k / lead[1], k % lead[1]
	case 1:
		return k, -1
	}
	return -1, -1
}

// summarizeGroundTruth adds per-layer and overall means to per-head gt_ metrics.
func summarizeGroundTruth(rows []Metric) []Metric {
	byName := map[string][]Metric{}
	for _, m := range rows {
		if m.Layer < 0 || m.Head < 0 {
			return rows
		}
		byName[m.Name] = append(byName[m.Name], m)
	}
	var out []Metric
	for _, c := range groundTruthCriteria {
		if ms := byName["gt_"+c]; len(ms) > 0 {
			out = append(out, summarizeHeads("gt_"+c)(ms)...)
		}
	}
	return out
}
