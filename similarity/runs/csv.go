package runs

import (
	"encoding/csv"
	"io"
	"slices"
	"strconv"
)

func ftoa(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// WriteSimilarityCSV writes res as rows sample, layer_a, layer_b, value, low, high
// (the pooled matrix under PooledID first, then each sample's; low and high empty
// without a bootstrap).
func WriteSimilarityCSV(w io.Writer, res *SimilarityResult) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"sample", "layer_a", "layer_b", "value", "low", "high"})
	rows := func(id string, v []float64, lo, hi []float64) {
		for i, a := range res.RowNames {
			for j, b := range res.ColNames {
				k := i*len(res.ColNames) + j
				rec := []string{id, a, b, ftoa(v[k]), "", ""}
				if lo != nil {
					rec[4], rec[5] = ftoa(lo[k]), ftoa(hi[k])
				}
				_ = cw.Write(rec)
			}
		}
	}
	rows(PooledID, res.Values, res.Low, res.High)
	ids := make([]string, 0, len(res.PerSample))
	for id := range res.PerSample {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		rows(id, res.PerSample[id], nil, nil)
	}
	cw.Flush()
	return cw.Error()
}

// MatchSummary is one compared run's per-layer statistics.
type MatchSummary struct {
	Run    string
	Result *MatchResult
}

// WriteMatchCSV writes rows run, layer, samples, mean, std, quirk_mean, quirk_std
// (population std over samples; the quirk columns empty where the original's value
// is undefined).
func WriteMatchCSV(w io.Writer, sums []MatchSummary) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"run", "layer", "samples", "mean", "std", "quirk_mean", "quirk_std"})
	for _, s := range sums {
		mean, std, err := s.Result.Summary(false)
		if err != nil {
			return err
		}
		qm, qs, qerr := s.Result.Summary(true)
		for l := range mean {
			rec := []string{s.Run, strconv.Itoa(l), strconv.Itoa(len(s.Result.Samples)), ftoa(mean[l]), ftoa(std[l]), "", ""}
			if qerr == nil {
				rec[5], rec[6] = ftoa(qm[l]), ftoa(qs[l])
			}
			_ = cw.Write(rec)
		}
	}
	cw.Flush()
	return cw.Error()
}
