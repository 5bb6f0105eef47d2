package human

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/store"
)

// sampleRecords returns a sample's text, its model-token records and the record of
// every character.
func sampleRecords(run *store.Run, id string) (*store.Sample, []TokenRecord, []int, error) {
	s, err := run.Sample(id)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(s.Offsets) == 0 {
		return nil, nil, nil, fmt.Errorf("sample %s has no token offsets: set followup_attention.model_tokenizer and rerun getweights", id)
	}
	recs, charRec, err := Records(s.Text, s.Offsets)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("sample %s: %w", id, err)
	}
	return s, recs, charRec, nil
}

// GetFollowup computes, for every decay and sample, the human follow-up matrix from
// the sample's character events (the original's getfollowup): with
// force_model_tokens (default) at the level of the model's tokens (records of a
// newline-only token summed, one row and column per token of the sample, special
// tokens included as zero rows), else over the records; at line level rows and
// columns summed by the records' lines. normalization turn_lines_into_prob_distrib
// makes every non-zero row sum to 1. Outputs: derived/followup_tokens.decay_<δ> and
// derived/followup_lines.decay_<δ>.
//
// Not reproduced: the original indexes its matrix rows by model token but sizes it,
// and sums its rows, by the records (a token of several newlines has several), so
// with force_model_tokens every row after the first such token is summed into the
// wrong token (and its line level likewise); here each look goes to its own token.
func GetFollowup(ctx context.Context, c *Config, opt Options) error {
	run, err := c.openRun()
	if err != nil {
		return err
	}
	samples, err := run.Samples()
	if err != nil {
		return err
	}
	wantTok, wantLine := c.levels()
	norm := c.Followup.Normalization != nil && *c.Followup.Normalization == NormRowsToProb
	for _, d := range c.decays() {
		kw := map[string]any{"decay": d, "normalization": norm, "force_model_tokens": c.forceModelTokens()}
		if wantTok {
			if err := preparePass(run, PassFollowupTokens(d), store.PassSettings{Function: "human.getfollowup", Input: "intermediate_char_events", Kwargs: kw, Axes: c.followupTokensAxes()}); err != nil {
				return err
			}
		}
		if wantLine {
			if err := preparePass(run, PassFollowupLines(d), store.PassSettings{Function: "human.getfollowup_lines", Input: "intermediate_char_events", Kwargs: kw, Axes: FollowupLinesAxes}); err != nil {
				return err
			}
		}
		for _, id := range samples {
			if err := c.followupSample(ctx, run, id, d, norm, wantTok, wantLine); err != nil {
				return err
			}
		}
		opt.logf("follow-up decay %s: %d samples", decayName(d), len(samples))
	}
	return nil
}

func (c *Config) followupSample(ctx context.Context, run *store.Run, id string, d float64, norm, wantTok, wantLine bool) error {
	s, recs, charRec, err := sampleRecords(run, id)
	if err != nil {
		return err
	}
	path := filepath.Join(run.Dir(), HumanDir, "intermediate_char_events", id+".csv")
	evs, err := readCharEvents(path)
	if err != nil {
		return err
	}
	fe, _, err := FollowupEvents(s.Text, evs, recs, charRec)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	n := len(recs)
	m, err := FollowupMatrix(ctx, fe, n, d)
	if err != nil {
		return err
	}
	if wantTok {
		tm, k := m, n
		if c.forceModelTokens() {
			k = len(s.Offsets)
			tm = make([]float64, k*k)
			for i := 0; i < n; i++ {
				for j := 0; j < n; j++ {
					tm[recs[i].I*k+recs[j].I] += m[i*n+j]
				}
			}
		}
		if norm {
			NormalizeRows(tm, k, k)
		}
		if err := writeArray(run, PassFollowupTokens(d), id, c.followupTokensAxes(), []int{k, k}, tm); err != nil {
			return err
		}
	}
	if wantLine {
		labels := make([]int, n)
		for i, r := range recs {
			labels[i] = r.L - 1
		}
		lm, uniq := Aggregate(m, n, labels)
		if norm {
			NormalizeRows(lm, len(uniq), len(uniq))
		}
		if err := writeArray(run, PassFollowupLines(d), id, FollowupLinesAxes, []int{len(uniq), len(uniq)}, lm); err != nil {
			return err
		}
	}
	return nil
}

// DeriveFollowupLine sums the columns of every token × token follow-up matrix by the
// line of each token (its first character's line; the lines in increasing order),
// giving token × line matrices (the original's derivefollowupline):
// derived/followup_tokens_lines.decay_<δ>.
func DeriveFollowupLine(ctx context.Context, c *Config, opt Options) error {
	run, err := c.openRun()
	if err != nil {
		return err
	}
	samples, err := run.Samples()
	if err != nil {
		return err
	}
	for _, d := range c.decays() {
		axes := []store.Axis{c.followupTokensAxes()[0], {Name: store.AxisLine}}
		if err := preparePass(run, PassFollowupTokensLines(d), store.PassSettings{Function: "human.derivefollowupline", Input: PassFollowupTokens(d), Kwargs: map[string]any{}, Axes: axes}); err != nil {
			return err
		}
		for _, id := range samples {
			if err := ctx.Err(); err != nil {
				return err
			}
			s, recs, _, err := sampleRecords(run, id)
			if err != nil {
				return err
			}
			shape, m, err := readArray(run, PassFollowupTokens(d), id)
			if err != nil {
				return fmt.Errorf("%w (run getfollowup first)", err)
			}
			if len(shape) != 2 {
				return fmt.Errorf("%s: shape %v, want a matrix", run.DerivedPath(PassFollowupTokens(d), id), shape)
			}
			var labels []int
			switch shape[1] {
			case len(s.Offsets):
				labels = tokenLines(s.Text, s.Offsets)
			case len(recs):
				for _, r := range recs {
					labels = append(labels, r.L-1)
				}
			default:
				return fmt.Errorf("%s: %d columns, but the sample has %d tokens", run.DerivedPath(PassFollowupTokens(d), id), shape[1], len(s.Offsets))
			}
			out, k := columnsByLine(m, shape[0], shape[1], labels)
			if err := writeArray(run, PassFollowupTokensLines(d), id, axes, []int{shape[0], k}, out); err != nil {
				return err
			}
		}
		opt.logf("%s: %d samples", PassFollowupTokensLines(d), len(samples))
	}
	return nil
}

// columnsByLine sums the columns of the r×n matrix m by their 0-based line labels
// into one column per line 0..max(labels), so that column k is line k+1 of the text
// even where no token starts on a line (the second line of a "\n\n" token), which
// then has a zero column; the original kept only the lines some token starts on.
func columnsByLine(m []float64, r, n int, labels []int) ([]float64, int) {
	k := 0
	for _, l := range labels {
		k = max(k, l+1)
	}
	out := make([]float64, r*k)
	for i := 0; i < r; i++ {
		for j := 0; j < n; j++ {
			out[i*k+labels[j]] += m[i*n+j]
		}
	}
	return out, k
}

// tokenLines is the 0-based line of each token's first character.
func tokenLines(text string, offsets [][2]int) []int {
	runes := []rune(text)
	lineAt := make([]int, len(runes)+1)
	l := 0
	for i, r := range runes {
		lineAt[i] = l
		if r == '\n' {
			l++
		}
	}
	lineAt[len(runes)] = l
	out := make([]int, len(offsets))
	for i, o := range offsets {
		out[i] = lineAt[min(max(o[0], 0), len(runes))]
	}
	return out
}

// npSum is numpy's float64 sum: pairwise summation with 8 accumulators over blocks of
// at most 128 values (numpy/core/src/umath/loops_utils.h.src, pairwise_sum).
func npSum(a []float64) float64 {
	n := len(a)
	switch {
	case n < 8:
		var s float64
		for _, v := range a {
			s += v
		}
		return s
	case n <= 128:
		var r [8]float64
		copy(r[:], a[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := 0; j < 8; j++ {
				r[j] += a[i+j]
			}
		}
		s := (r[0] + r[1]) + (r[2] + r[3]) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			s += a[i]
		}
		return s
	}
	n2 := n / 2
	n2 -= n2 % 8
	return npSum(a[:n2]) + npSum(a[n2:])
}

// kahanMean is pandas' groupby mean: a compensated (Kahan) running sum in row order,
// divided by the count.
type kahanMean struct {
	sum, comp float64
	n         int
}

func (k *kahanMean) add(v float64) {
	y := v - k.comp
	t := k.sum + y
	k.comp = t - k.sum - y
	k.sum = t
	k.n++
}

// GetAvgBehavior writes, for every decay, the positional baseline of human reading
// from all token × token follow-up matrices of the run (the original's getavgbehavior)
// into human/decay_<δ>/data_avg_followup/: df_distance_in_from_top1_token.csv,
// df_base_top1_prob_based_on_distance.csv, df_entire_followup.csv (streamed) and
// df_base_all_prob_based_on_distance_rebuttal.csv, with the original's columns and
// pandas' number formatting. Samples are taken in id order.
func GetAvgBehavior(ctx context.Context, c *Config, opt Options) error {
	run, err := c.openRun()
	if err != nil {
		return err
	}
	samples, err := run.Samples()
	if err != nil {
		return err
	}
	for _, d := range c.decays() {
		dir := filepath.Join(run.Dir(), HumanDir, "decay_"+decayName(d), "data_avg_followup")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := avgBehavior(ctx, run, samples, PassFollowupTokens(d), dir); err != nil {
			return err
		}
		opt.logf("%s: 4 tables from %d samples", dir, len(samples))
	}
	return nil
}

type distGroups struct {
	order []int // distances in increasing order at the end
	m     map[int]*kahanMean
}

func (g *distGroups) add(dist int, v float64) {
	if g.m == nil {
		g.m = map[int]*kahanMean{}
	}
	k := g.m[dist]
	if k == nil {
		k = &kahanMean{}
		g.m[dist] = k
		g.order = append(g.order, dist)
	}
	k.add(v)
}

func avgBehavior(ctx context.Context, run *store.Run, samples []string, pass, dir string) error {
	top := [][]string{{"unique_data_id", "current_token_position", "target_position", "prob_to_go_to_top1_target", "total_tokens", "distance_current_to_target"}}
	var topG, allG distGroups
	err := atomicfile.WriteWith(filepath.Join(dir, "df_entire_followup.csv"), func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		cw := csv.NewWriter(bw)
		_ = cw.Write([]string{"unique_data_id", "current_token_position", "target_position", "total_tokens", "distance_current_to_target", "prob_to_go_to_target", "followup_abs_value", "total_followup_abs_value"})
		for _, id := range samples {
			if err := ctx.Err(); err != nil {
				return err
			}
			shape, m, err := readArray(run, pass, id)
			if err != nil {
				return fmt.Errorf("%w (run getfollowup first)", err)
			}
			if len(shape) != 2 {
				return fmt.Errorf("%s: shape %v, want a matrix", run.DerivedPath(pass, id), shape)
			}
			r, n := shape[0], shape[1]
			norm := make([]float64, n)
			for i := 0; i < r; i++ {
				row := m[i*n : (i+1)*n]
				total := npSum(row)
				copy(norm, row)
				if total > 0 {
					for j := range norm {
						norm[j] = row[j] / total
					}
				}
				arg := 0
				for j, v := range row {
					if v > row[arg] {
						arg = j
					}
				}
				top = append(top, []string{id, strconv.Itoa(i), strconv.Itoa(arg), pyFloat(norm[arg]), strconv.Itoa(n), strconv.Itoa(arg - i)})
				topG.add(arg-i, norm[arg])
				for j := 0; j < n; j++ {
					_ = cw.Write([]string{id, strconv.Itoa(i), strconv.Itoa(j), strconv.Itoa(n), strconv.Itoa(j - i), pyFloat(norm[j]), pyFloat(row[j]), pyFloat(total)})
					allG.add(j-i, norm[j])
				}
			}
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(dir, "df_distance_in_from_top1_token.csv"), top); err != nil {
		return err
	}
	base := [][]string{{"distance_current_to_target", "mean_prob_to_go_to_top1_target", "number_of_samples"}}
	for _, dist := range sortedInts(topG.order) {
		k := topG.m[dist]
		base = append(base, []string{strconv.Itoa(dist), pyFloat(k.sum / float64(k.n)), strconv.Itoa(k.n)})
	}
	if err := writeCSV(filepath.Join(dir, "df_base_top1_prob_based_on_distance.csv"), base); err != nil {
		return err
	}
	reb := [][]string{{"distance_current_to_target", "prob_to_go_to_target_mean", "prob_to_go_to_target_count"}}
	for _, dist := range sortedInts(allG.order) {
		k := allG.m[dist]
		reb = append(reb, []string{strconv.Itoa(-dist), pyFloat(k.sum / float64(k.n)), strconv.Itoa(k.n)})
	}
	return writeCSV(filepath.Join(dir, "df_base_all_prob_based_on_distance_rebuttal.csv"), reb)
}

func sortedInts(a []int) []int { return uniqueSorted(a) }
