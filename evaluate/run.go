package evaluate

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"

	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tasks"
	"github.com/attnscope/attnscope/tensor"
)

// Forwarder runs teacher-forced forward passes over a right-padded batch
// ids [B][T]: the argmax prediction at every position and, when asked, every
// layer's attention, attn[b][l][h] a T×T row-major matrix.
type Forwarder interface {
	Forward(ctx context.Context, ids [][]int, withAttention bool) (preds [][]int, attn [][][][]float32, err error)
}

// Options control Dataset.
type Options struct {
	BatchSize   int
	IgnoreIndex int // 0: −100
	Pad         int // padding token id
	// DropLast reproduces the original's DataLoader(drop_last=True): samples that
	// do not fill a last batch are not evaluated. Off by default.
	DropLast bool
	// NoAttention skips attention (accuracy only).
	NoAttention bool
	// OnSample, when set, receives every evaluated sample (e.g. to capture it).
	OnSample func(i int, s *tasks.Sample, preds []int, attn [][][]float32) error
	// Batch, when set, says which batches (0, 1, … in sample order) to evaluate: a
	// shard of the dataset. The batches are the unsharded run's, so every sample is
	// evaluated exactly as it is there; MergeParts joins the shards.
	Batch func(b int) bool
	// Store, when set, keeps every evaluated batch and gives back those an earlier,
	// interrupted run evaluated, which are then not evaluated again (a shard's rerun).
	Store BatchStore
}

// BatchStore keeps the evaluated batches of a run (ShardWork: a shard's).
type BatchStore interface {
	// Load returns the samples of batch b of dataset (of batches in all) when an
	// earlier run evaluated it.
	Load(dataset string, b, batches int) (parts []PartSample, ok bool, err error)
	// Save records batch b of dataset evaluated, with its samples.
	Save(dataset string, b, batches int, parts []PartSample) error
}

// SampleResult is one evaluated sample.
type SampleResult struct {
	Index     int       `json:"index"`
	Text      string    `json:"text"`
	Correct   bool      `json:"correct"`
	Piecewise []int     `json:"piecewise"`           // 1 per scored position predicted right
	Predicted string    `json:"predicted,omitempty"` // decoded predictions at scored positions
	RefShare  []float64 `json:"reference_attention"` // per scored label row
	RefMean   *float64  `json:"reference_attention_mean"`
}

// DatasetResult is the evaluation of one dataset (spec §2.5).
type DatasetResult struct {
	Name           string         `json:"name"`
	N              int            `json:"n"`
	Accuracy       float64        `json:"accuracy"` // percent of samples exactly right (teacher-forced)
	Piecewise      ErrorPositions `json:"piecewise"`
	AttentionEval  *AttentionEval `json:"attention_eval,omitempty"`
	PredictionCorr *Comparison    `json:"attn_prediction_corr,omitempty"`
	Samples        []SampleResult `json:"samples"`
	percentages    [][]float64
	parts          []PartSample // the evaluated samples, with what the aggregates need
	batches        int          // batches of the dataset (evaluated or not)
}

// Dataset evaluates a model on samples: exact-match and piecewise accuracy,
// rollout-aggregated attention on reference tokens, and its correlation with
// correctness.
func Dataset(ctx context.Context, f Forwarder, name string, samples []*tasks.Sample, opt Options, decode func([]int) string) (*DatasetResult, error) {
	ignore := opt.IgnoreIndex
	if ignore == 0 {
		ignore = tasks.DefaultIgnoreIndex
	}
	bs := opt.BatchSize
	if bs <= 0 {
		bs = 16
	}
	res := &DatasetResult{Name: name, Samples: []SampleResult{}}
	var parts []PartSample
	withAttn := !opt.NoAttention
	nb := len(samples) / bs
	if !opt.DropLast && len(samples)%bs != 0 {
		nb++
	}
	for start := 0; start < len(samples); start += bs {
		end := min(start+bs, len(samples))
		if opt.DropLast && end-start < bs {
			break
		}
		res.batches++
		if opt.Batch != nil && !opt.Batch(start/bs) {
			continue
		}
		if opt.Store != nil {
			old, ok, err := opt.Store.Load(name, start/bs, nb)
			if err != nil {
				return nil, err
			}
			if ok {
				parts = append(parts, old...)
				continue
			}
		}
		first := len(parts)
		batch := tasks.Collate(samples[start:end], opt.Pad, ignore)
		// Bucket the length to a multiple of 8 so few graphs are compiled.
		n := (batch.N + 7) / 8 * 8
		for i := range batch.InputIDs {
			for len(batch.InputIDs[i]) < n {
				batch.InputIDs[i] = append(batch.InputIDs[i], opt.Pad)
			}
		}
		preds, attn, err := f.Forward(ctx, batch.InputIDs, withAttn)
		if err != nil {
			return nil, fmt.Errorf("evaluate %s samples %d–%d: %w", name, start, end-1, err)
		}
		for bi, s := range samples[start:end] {
			idx := start + bi
			t := len(s.InputIDs)
			sr := SampleResult{Index: idx, Text: s.Text, Correct: true, Piecewise: []int{}, RefShare: []float64{}}
			var predScored []int
			for j := 0; j < t; j++ {
				if s.TargetIDs[j] == ignore {
					continue
				}
				ok := preds[bi][j] == s.TargetIDs[j]
				predScored = append(predScored, preds[bi][j])
				if ok {
					sr.Piecewise = append(sr.Piecewise, 1)
				} else {
					sr.Piecewise = append(sr.Piecewise, 0)
					sr.Correct = false
				}
			}
			if decode != nil {
				sr.Predicted = decode(predScored)
			}
			var sampleAttn [][][]float32
			part := PartSample{}
			if withAttn && s.Labels != nil {
				sampleAttn = crop(attn[bi], n, t)
				agg, err := AggregateAttention(toTensor(sampleAttn, t), nil)
				if err != nil {
					return nil, fmt.Errorf("evaluate %s sample %d: %w", name, idx, err)
				}
				sr.RefShare = ComputePercentages(agg, s.Labels, ignore)
				if len(sr.RefShare) > 0 {
					m := mean(sr.RefShare)
					sr.RefMean = &m
				}
				part.Scored = true
				part.Right, part.Wrong = scoredShares(Scored{Agg: agg, Labels: s.Labels, Targets: s.TargetIDs, Predictions: preds[bi][:t]}, ignore)
			}
			if opt.OnSample != nil {
				if sampleAttn == nil && withAttn {
					sampleAttn = crop(attn[bi], n, t)
				}
				if err := opt.OnSample(idx, s, preds[bi][:t], sampleAttn); err != nil {
					return nil, err
				}
			}
			part.Result = sr
			parts = append(parts, part)
		}
		if opt.Store != nil {
			if err := opt.Store.Save(name, start/bs, nb, parts[first:]); err != nil {
				return nil, err
			}
		}
	}
	res.finish(parts)
	return res, nil
}

// finish computes the dataset's aggregates from its evaluated samples, in order.
func (res *DatasetResult) finish(parts []PartSample) {
	res.parts, res.Samples, res.percentages = parts, []SampleResult{}, nil
	res.Accuracy = 0
	var pieces [][]int
	var ok, bad []float64
	for _, p := range parts {
		if p.Result.Correct {
			res.Accuracy++
		}
		pieces = append(pieces, p.Result.Piecewise)
		res.Samples = append(res.Samples, p.Result)
		if p.Scored {
			res.percentages = append(res.percentages, p.Result.RefShare)
			ok, bad = append(ok, p.Right...), append(bad, p.Wrong...)
		}
	}
	res.N = len(res.Samples)
	if res.N > 0 {
		res.Accuracy = 100 * res.Accuracy / float64(res.N)
	}
	res.Piecewise = AnalyzeErrorPositions(pieces)
	if len(res.percentages) > 0 {
		e := EvaluatePercentages(res.percentages)
		res.AttentionEval = &e
		c := correlation(ok, bad)
		res.PredictionCorr = &c
	}
}

func mean(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// crop cuts [L][H] n×n matrices down to their top-left t×t block.
func crop(a [][][]float32, n, t int) [][][]float32 {
	out := make([][][]float32, len(a))
	for l := range a {
		out[l] = make([][]float32, len(a[l]))
		for h, m := range a[l] {
			c := make([]float32, t*t)
			for r := 0; r < t; r++ {
				copy(c[r*t:(r+1)*t], m[r*n:r*n+t])
			}
			out[l][h] = c
		}
	}
	return out
}

// toTensor stacks [L][H] t×t float32 matrices into a [L, H, t, t] tensor.
func toTensor(a [][][]float32, t int) *tensor.Tensor {
	H := 0
	if len(a) > 0 {
		H = len(a[0])
	}
	out := tensor.New(len(a), H, t, t)
	for l := range a {
		for h, m := range a[l] {
			if h >= H {
				break
			}
			for i, x := range m {
				out.Data[((l*H+h)*t*t)+i] = float64(x)
			}
		}
	}
	return out
}

// Report is the evaluation on two distributions (evaluate_two_distributions).
type Report struct {
	Name string         `json:"name"`
	ID   *DatasetResult `json:"dataset1"`
	OOD  *DatasetResult `json:"dataset2"`
	// Comparison is the Welch test of reference attention, dataset1 vs dataset2
	// (attn_distribution_comparison); ComparisonError says why it is absent.
	Comparison      *Comparison `json:"attn_distribution_comparison,omitempty"`
	ComparisonError string      `json:"attn_distribution_comparison_error,omitempty"`
	// Intervention is the intervention file the evaluated forward passes
	// applied (evaluate --intervene); nil for a clean evaluation.
	Intervention *store.InterventionInfo `json:"intervention,omitempty"`
}

// Compare fills the ID/OOD comparison.
func (r *Report) Compare() {
	c, err := CompareAttentionRuns(r.ID.percentages, r.OOD.percentages)
	if err != nil {
		r.ComparisonError = err.Error()
		return
	}
	r.Comparison = c
}

// WriteJSON writes the report as indented JSON (NaN and ±Inf become null).
func (r *Report) WriteJSON(path string) error {
	return atomicfile.WriteWith(path, func(w io.Writer) error {
		b, err := json.MarshalIndent(sanitize(r), "", "  ")
		if err != nil {
			return fmt.Errorf("encode %s: %w", path, err)
		}
		_, err = w.Write(append(b, '\n'))
		return err
	})
}

// sanitize round-trips the report through a generic value with NaN → nil,
// since encoding/json rejects NaN.
func sanitize(r *Report) any {
	fix := func(d *DatasetResult) {
		if d == nil || d.AttentionEval == nil {
			return
		}
		if math.IsNaN(d.AttentionEval.Mean) {
			d.AttentionEval.Mean, d.AttentionEval.CILower, d.AttentionEval.CIUpper = 0, 0, 0
		}
	}
	fix(r.ID)
	fix(r.OOD)
	return r
}

func f(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func fp(v *float64) string {
	if v == nil {
		return ""
	}
	return f(*v)
}

// WriteCSV writes summary.csv (dataset, metric, value) and samples.csv (one row
// per evaluated sample) into dir; pandas reads both.
func (r *Report) WriteCSV(dir string) error {
	err := atomicfile.WriteWith(filepath.Join(dir, "summary.csv"), func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write([]string{"dataset", "metric", "value"})
		for _, d := range []*DatasetResult{r.ID, r.OOD} {
			if d == nil {
				continue
			}
			rows := [][2]string{{"n", strconv.Itoa(d.N)}, {"accuracy", f(d.Accuracy)},
				{"piecewise_accuracy", f(d.Piecewise.PiecewiseAccuracy)},
				{"mean_error_position", fp(d.Piecewise.MeanErrorPosition)}, {"error_position_variance", fp(d.Piecewise.Variance)}}
			if e := d.AttentionEval; e != nil {
				rows = append(rows, [2]string{"reference_attention_mean", f(e.Mean)}, [2]string{"reference_attention_variance", f(e.Variance)},
					[2]string{"reference_attention_ci_lower", f(e.CILower)}, [2]string{"reference_attention_ci_upper", f(e.CIUpper)},
					[2]string{"reference_attention_rows", strconv.Itoa(e.N)})
			}
			if c := d.PredictionCorr; c != nil {
				rows = append(rows, [2]string{"reference_attention_correct_mean", fp(c.Group1.Mean)}, [2]string{"reference_attention_correct_n", strconv.Itoa(c.Group1.N)},
					[2]string{"reference_attention_error_mean", fp(c.Group2.Mean)}, [2]string{"reference_attention_error_n", strconv.Itoa(c.Group2.N)},
					[2]string{"correct_vs_error_t", fp(c.TStat)}, [2]string{"correct_vs_error_df", fp(c.DF)}, [2]string{"correct_vs_error_p", fp(c.PValue)})
			}
			for _, row := range rows {
				cw.Write([]string{d.Name, row[0], row[1]})
			}
		}
		if c := r.Comparison; c != nil {
			cw.Write([]string{"dataset1_vs_dataset2", "t", fp(c.TStat)})
			cw.Write([]string{"dataset1_vs_dataset2", "df", fp(c.DF)})
			cw.Write([]string{"dataset1_vs_dataset2", "p", fp(c.PValue)})
		}
		cw.Flush()
		return cw.Error()
	})
	if err != nil {
		return err
	}
	return atomicfile.WriteWith(filepath.Join(dir, "samples.csv"), func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write([]string{"dataset", "index", "text", "predicted", "correct", "scored_tokens", "correct_tokens", "reference_attention_mean"})
		for _, d := range []*DatasetResult{r.ID, r.OOD} {
			if d == nil {
				continue
			}
			for _, s := range d.Samples {
				ok := 0
				for _, v := range s.Piecewise {
					ok += v
				}
				cw.Write([]string{d.Name, strconv.Itoa(s.Index), s.Text, s.Predicted, strconv.FormatBool(s.Correct),
					strconv.Itoa(len(s.Piecewise)), strconv.Itoa(ok), fp(s.RefMean)})
			}
		}
		cw.Flush()
		return cw.Error()
	})
}
