package diagnose

import (
	"fmt"
	"math"

	"github.com/attnscope/attnscope/stats"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

// HistogramBins is the number of bins of the diagnostics' run-level histograms.
const HistogramBins = 50

// Names of the run-level outputs (RUN/run-outputs) of the diagnostics: what report
// and serve draw for a diagnose run, which has no samples.
const (
	JacobianDensity  = "jacobian_log10_singular_density" // [bin] density of log10 σ over every J_w of every example
	ConfusionDensity = "confusion_cosine_density"        // [bin] density of the cosines between gradient pairs
	PerturbDensity   = "perturb_distance_density"        // [bin] density of ‖o₁ − o₂‖₂ over the examples
	LayerNormMeanStd = "layernorm_mean_std"              // [layer, criterion(attn, mlp)] mean per-token std
)

// writeDensity stores the density histogram of values (numpy.histogram with
// density=True, HistogramBins bins over their range) as the run-level output name,
// [bin] labelled with each bin's range.
func writeDensity(r *store.Run, name, fn, what string, kw map[string]any, values []float64) error {
	edges, d, err := stats.Histogram(values, HistogramBins)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	labels := make([]string, len(d))
	for i := range labels {
		labels[i] = fmt.Sprintf("%.6g…%.6g", edges[i], edges[i+1])
	}
	k := map[string]any{"bins": HistogramBins, "values": what, "count": len(values)}
	for key, v := range kw {
		k[key] = v
	}
	t, err := tensor.FromFloat64([]int{len(d)}, d)
	if err != nil {
		return err
	}
	return r.WriteRunOutput(name, store.PassSettings{Function: fn, Input: "model", Kwargs: k,
		Axes: []store.Axis{{Name: store.AxisBin, Labels: labels}}}, t)
}

// log10Positive returns log10 of the positive values (a zero singular value has no
// logarithm; the count of those left out is returned).
func log10Positive(v []float64) (out []float64, zeros int) {
	for _, x := range v {
		if x > 0 {
			out = append(out, math.Log10(x))
		} else {
			zeros++
		}
	}
	return out, zeros
}

// layerNormMean accumulates the per-token std of [layer, 2, token] batches into the
// mean per layer and criterion over every token.
type layerNormMean struct {
	sum    []float64 // [layer*2 + criterion]
	tokens int
}

func (m *layerNormMean) add(v []float64, layers, tokens int) {
	if m.sum == nil {
		m.sum = make([]float64, 2*layers)
	}
	for lk := range 2 * layers {
		for i := range tokens {
			m.sum[lk] += v[lk*tokens+i]
		}
	}
	m.tokens += tokens
}

func (m *layerNormMean) write(r *store.Run, kw map[string]any) error {
	if m.tokens == 0 {
		return fmt.Errorf("%s: no tokens", LayerNormMeanStd)
	}
	t := tensor.New(len(m.sum)/2, 2)
	for i, s := range m.sum {
		t.Data[i] = s / float64(m.tokens)
	}
	k := map[string]any{"tokens": m.tokens, "values": "mean over every token (padding included) of the per-token std"}
	for key, v := range kw {
		k[key] = v
	}
	return r.WriteRunOutput(LayerNormMeanStd, store.PassSettings{Function: "diagnose.LayerNormStd mean", Input: "model", Kwargs: k,
		Axes: []store.Axis{{Name: store.AxisLayer}, {Name: store.AxisCriterion, Labels: []string{"attn", "mlp"}}}}, t)
}

// Summarize writes the run-level outputs of a diagnose run from its stored
// per-example (per-batch, per-step) outputs, read in id order: the density of log10
// of every positive singular value (JacobianDensity), the mean per-token std per
// layer (LayerNormMeanStd), the density of the perturbation distances
// (PerturbDensity) and, for the joined shards of a confusion run, the pairs of step
// gradients with their cosine density (ConfusionDensity; the gradients are removed). An unsharded run calls it before it is committed and
// attnscope merge on the joined shards, so both give the same bytes. A run without
// those passes (a capture) is left as it is.
func Summarize(r *store.Run) error {
	if set, err := r.ReadPassSettings("jacobian"); err == nil && set.Function == "diagnose.Jacobians.SingularValues" {
		var logs []float64
		zeros := 0
		err := eachDerived(r, "jacobian", func(t *tensor.Tensor) error {
			l, z := log10Positive(t.Data)
			logs, zeros = append(logs, l...), zeros+z
			return nil
		})
		if err != nil {
			return err
		}
		kw := set.Kwargs
		kw["zero_singular_values"] = zeros
		if err := writeDensity(r, JacobianDensity, "diagnose.Jacobians.SingularValues density", "log10 of the positive singular values of every J_w", kw, logs); err != nil {
			return err
		}
	}
	if set, err := r.ReadPassSettings("layernorm"); err == nil && set.Function == "diagnose.LayerNormStd" {
		var mean layerNormMean
		err := eachDerived(r, "layernorm", func(t *tensor.Tensor) error {
			if len(t.Shape) != 3 || t.Shape[1] != 2 {
				return fmt.Errorf("%s: per-batch output of shape %v, want [layer, 2, token]", LayerNormMeanStd, t.Shape)
			}
			mean.add(t.Data, t.Shape[0], t.Shape[2])
			return nil
		})
		if err != nil {
			return err
		}
		if err := mean.write(r, set.Kwargs); err != nil {
			return err
		}
	}
	if set, err := r.ReadPassSettings("perturb"); err == nil && set.Function == "diagnose.Perturbation" {
		var dists []float64
		err := eachDerived(r, "perturb", func(t *tensor.Tensor) error {
			dists = append(dists, t.Data...)
			return nil
		})
		if err != nil {
			return err
		}
		if err := writeDensity(r, PerturbDensity, "diagnose.Perturbation density", "‖o₁ − o₂‖₂ of the last [CLS] vector, per example", set.Kwargs, dists); err != nil {
			return err
		}
	}
	if set, err := r.ReadPassSettings(ConfusionGradients); err == nil && set.Function == "diagnose.Gradients" {
		if err := summarizeConfusion(r, set); err != nil {
			return err
		}
	}
	return nil
}

// eachDerived calls fn with every derived output of pass, in id order.
func eachDerived(r *store.Run, pass string, fn func(*tensor.Tensor) error) error {
	ids, err := r.DerivedOutputs(pass)
	if err != nil {
		return err
	}
	for _, id := range ids {
		t, err := r.Derived(pass, id)
		if err != nil {
			return err
		}
		if err := fn(t); err != nil {
			return err
		}
	}
	return nil
}
