package compare

import (
	"encoding/csv"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/attnscope/attnscope/stats"
)

// Scores is one comparator output read back: the score of every row and, per
// human session, the mean score of its pairs.
type Scores struct {
	Name       string // file stem, <comparison><suffix>
	Comparison string // the comparison's name (provenance.name)
	Function   string
	Column     string // the column scored: the first scalar result or sub-column
	HumanPairs bool   // human–human pairs (human_a, human_b)
	// Values are the scores of every row (rows with the sentinel −1 or no value
	// left out): line-wise ρ, top-k overlaps, one scalar per pair...
	Values []float64
	// BySession is the mean score of each human session (over its pairs and rows).
	BySession map[string]float64
	// Files are the pairs' files: human session → the other side's stems.
	Files map[string][]string
}

// ReadScores reads a comparator CSV. The score column is the first scalar result
// (correlation, msed, mrr, harmonic_rank) or, for an exploded list, its first
// sub-column (top_3.value, spearman_res.corr...).
func ReadScores(path string) (*Scores, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("read %s: no header: %w", path, err)
	}
	col := func(name string) int { return slices.Index(header, name) }
	s := &Scores{Name: strings.TrimSuffix(filepath.Base(path), ".csv"), BySession: map[string]float64{}, Files: map[string][]string{}}
	fn, typ := col("comparison_function"), col("comparison_type")
	if fn < 0 || typ < 0 {
		return nil, fmt.Errorf("read %s: not a comparator output (no comparison_function or comparison_type column)", path)
	}
	score := -1
	for i := typ + 1; i < len(header) && score < 0; i++ {
		name := header[i]
		if strings.HasPrefix(name, "provenance.") || name == "time_ts_sec" {
			break
		}
		if strings.Contains(name, ".") || slices.Contains([]string{"correlation", "msed", "mrr", "harmonic_rank"}, name) {
			score = i
		}
	}
	if score < 0 {
		return nil, fmt.Errorf("read %s: no score column (a scalar result, or a list exploded with comparison_output_subcolumns)", path)
	}
	s.Column = header[score]
	human, other := col("input_human_filestem"), col("input_machine_filestem")
	if human < 0 {
		human, other, s.HumanPairs = col("human_a"), col("human_b"), true
	}
	if human < 0 {
		return nil, fmt.Errorf("read %s: no input_human_filestem or human_a column", path)
	}
	name := col("provenance.name")
	sums, counts := map[string]float64{}, map[string]float64{}
	seen := map[string]bool{}
	for row := 2; ; row++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		s.Function = rec[fn]
		if name >= 0 {
			s.Comparison = rec[name]
		}
		h := rec[human]
		if k := h + "\x00" + rec[other]; !seen[k] {
			seen[k] = true
			s.Files[h] = append(s.Files[h], rec[other])
		}
		if rec[score] == "" {
			continue
		}
		v, err := strconv.ParseFloat(rec[score], 64)
		if err != nil {
			return nil, fmt.Errorf("read %s: row %d, column %s: %q is not a number", path, row, s.Column, rec[score])
		}
		if v == -1 && strings.Contains(s.Column, ".") { // a skipped row's sentinel
			continue
		}
		s.Values = append(s.Values, v)
		sums[h] += v
		counts[h]++
	}
	for h, v := range sums {
		s.BySession[h] = v / counts[h]
	}
	return s, nil
}

// Estimate is the mean of per-session scores with its bootstrap BCa 95% interval.
type Estimate struct {
	Name          string
	Sessions      int
	Mean, Lo, Hi  float64
	Baseline      bool
	IntervalError string // why the interval is missing
}

// Contrast compares a model's per-session scores with a baseline's: the Wilcoxon
// signed-rank test on the sessions both have, with Holm and Benjamini–Hochberg
// adjusted p-values over all contrasts of one comparison.
type Contrast struct {
	Model, Baseline string
	Sessions        int
	MeanDiff        float64 // mean of model − baseline over the sessions
	W, P            float64
	PHolm, PBH      float64
	Note            string
}

// Statistics are the estimates and contrasts of one comparison over its outputs.
type Statistics struct {
	Comparison string
	Function   string
	Column     string
	Estimates  []Estimate
	Contrasts  []Contrast
}

// IsBaseline says whether an output is a baseline by its name: the human–human
// pairs, or an artefact named after the study's baselines (uniform, copy_cat,
// gaussian, ones, baseline).
func IsBaseline(s *Scores) bool {
	if s.HumanPairs {
		return true
	}
	n := strings.ToLower(s.Name)
	for _, k := range []string{"uniform", "copy_cat", "copycat", "gaussian", "ones", "baseline"} {
		if strings.Contains(n, k) {
			return true
		}
	}
	return false
}

// Summarize estimates every output's mean per-session score (bootstrap BCa 95%,
// 9999 resamples, seed 1) and contrasts every model with every baseline of the
// same comparison. isBaseline nil means IsBaseline.
func Summarize(tables []*Scores, isBaseline func(*Scores) bool) ([]Statistics, error) {
	if isBaseline == nil {
		isBaseline = IsBaseline
	}
	groups := map[string][]*Scores{}
	var order []string
	for _, t := range tables {
		key := t.Comparison
		if key == "" {
			key = t.Name
		}
		if groups[key] == nil {
			order = append(order, key)
		}
		groups[key] = append(groups[key], t)
	}
	var out []Statistics
	for _, key := range order {
		g := groups[key]
		sum := Statistics{Comparison: key, Function: g[0].Function, Column: g[0].Column}
		var models, bases []*Scores
		for _, t := range g {
			e := Estimate{Name: t.Name, Sessions: len(t.BySession), Baseline: isBaseline(t)}
			vals := sessionValues(t)
			e.Mean = stats.Mean(vals)
			if len(vals) >= 2 {
				iv, err := stats.Bootstrap(vals, stats.Mean, stats.BootstrapOptions{Seed: 1})
				if err != nil {
					e.Lo, e.Hi, e.IntervalError = math.NaN(), math.NaN(), err.Error()
				} else {
					e.Lo, e.Hi = iv.Low, iv.High
				}
			} else {
				e.Lo, e.Hi, e.IntervalError = math.NaN(), math.NaN(), "fewer than 2 sessions"
			}
			sum.Estimates = append(sum.Estimates, e)
			if e.Baseline {
				bases = append(bases, t)
			} else {
				models = append(models, t)
			}
		}
		var ps []float64
		var idx []int
		for _, m := range models {
			for _, b := range bases {
				c := contrast(m, b)
				sum.Contrasts = append(sum.Contrasts, c)
				if !math.IsNaN(c.P) {
					ps = append(ps, c.P)
					idx = append(idx, len(sum.Contrasts)-1)
				}
			}
		}
		if len(ps) > 0 {
			holm, err := stats.Holm(ps)
			if err != nil {
				return nil, err
			}
			bh, err := stats.BenjaminiHochberg(ps)
			if err != nil {
				return nil, err
			}
			for k, i := range idx {
				sum.Contrasts[i].PHolm, sum.Contrasts[i].PBH = holm[k], bh[k]
			}
		}
		out = append(out, sum)
	}
	return out, nil
}

func sessionValues(t *Scores) []float64 {
	keys := make([]string, 0, len(t.BySession))
	for k := range t.BySession {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vals := make([]float64, len(keys))
	for i, k := range keys {
		vals[i] = t.BySession[k]
	}
	return vals
}

func contrast(m, b *Scores) Contrast {
	c := Contrast{Model: m.Name, Baseline: b.Name, W: math.NaN(), P: math.NaN(), PHolm: math.NaN(), PBH: math.NaN()}
	var x, y []float64
	for _, k := range slices.Sorted(maps.Keys(m.BySession)) {
		if v, ok := b.BySession[k]; ok {
			x, y = append(x, m.BySession[k]), append(y, v)
		}
	}
	c.Sessions = len(x)
	if len(x) == 0 {
		c.Note = "no session in common"
		return c
	}
	var d float64
	for i := range x {
		d += x[i] - y[i]
	}
	c.MeanDiff = d / float64(len(x))
	r, err := stats.Wilcoxon(x, y)
	if err != nil {
		c.Note = err.Error()
		return c
	}
	c.W, c.P = r.Statistic, r.P
	return c
}
