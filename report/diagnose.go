package report

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/viz"
)

// DiagnosePasses are the passes `attnscope diagnose` writes, in figure order.
var DiagnosePasses = []string{"jacobian", "confusion", "perturb", "layernorm"}

// diagnoseSamples lists the outputs of pass in a run, sorted.
func diagnoseSamples(r *store.Run, pass string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(r.Dir(), store.DerivedDir, pass))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".npy"); ok {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// diagnoseRun is one run's diagnostic output with the label it is drawn under.
type diagnoseRun struct {
	label string
	run   *store.Run
	pass  string
}

func openDiagnose(dirs, labels []string) ([]diagnoseRun, error) {
	if len(dirs) == 0 {
		return nil, errors.New("no run folders given")
	}
	var runs []diagnoseRun
	for i, d := range dirs {
		r, err := store.Open(d)
		if err != nil {
			return nil, err
		}
		passes, err := r.DerivedPasses()
		if err != nil {
			return nil, err
		}
		var pass string
		for _, p := range passes {
			if slices.Contains(DiagnosePasses, p.Name) {
				pass = p.Name
			}
		}
		if pass == "" {
			return nil, fmt.Errorf("run %s has no diagnose output (derived/%s)", d, strings.Join(DiagnosePasses, ", derived/"))
		}
		label := filepath.Base(d)
		if i < len(labels) && labels[i] != "" {
			label = labels[i]
		} else if s, err := r.ReadPassSettings(pass); err == nil {
			if m, ok := s.Kwargs["model"].(string); ok {
				label = m + " (" + filepath.Base(d) + ")"
			}
		}
		if len(runs) > 0 && runs[0].pass != pass {
			return nil, fmt.Errorf("run %s holds %s, run %s holds %s: draw runs of one diagnostic side by side", dirs[0], runs[0].pass, d, pass)
		}
		runs = append(runs, diagnoseRun{label: label, run: r, pass: pass})
	}
	return runs, nil
}

// concatDerived concatenates every output of the run's pass, taking column col
// of 2-d outputs with ncol columns (col < 0: every value).
func concatDerived(r diagnoseRun, col int) ([]float64, error) {
	ids, err := diagnoseSamples(r.run, r.pass)
	if err != nil {
		return nil, err
	}
	var out []float64
	for _, id := range ids {
		t, err := r.run.Derived(r.pass, id)
		if err != nil {
			return nil, err
		}
		if col < 0 {
			out = append(out, t.Data...)
			continue
		}
		nc := t.Shape[len(t.Shape)-1]
		for i := col; i < len(t.Data); i += nc {
			out = append(out, t.Data[i])
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("run %s: derived/%s holds no values", r.run.Dir(), r.pass)
	}
	return out, nil
}

// DiagnoseFigure draws runs of one diagnostic side by side (pretrained vs
// scratch, say): Jacobian singular-value densities (log10 σ), gradient
// confusion cosine histograms, perturbation distance histograms, or the mean
// per-token LayerNorm-input std through the layers. labels (optional) name the
// runs.
func DiagnoseFigure(dirs, labels []string) (*viz.Figure, error) {
	runs, err := openDiagnose(dirs, labels)
	if err != nil {
		return nil, err
	}
	if runs[0].pass == "layernorm" {
		return layerNormCurves(runs)
	}
	var panels []viz.HistPanel
	for _, r := range runs {
		var v []float64
		var xl string
		switch r.pass {
		case "jacobian":
			raw, err := concatDerived(r, -1)
			if err != nil {
				return nil, err
			}
			for _, x := range raw {
				if x > 0 {
					v = append(v, math.Log10(x))
				}
			}
			xl = "log10 singular value of ∂Y[p]/∂E[w]"
		case "confusion":
			if v, err = concatDerived(r, 2); err != nil {
				return nil, err
			}
			xl = "cosine between mini-batch gradients"
		case "perturb":
			if v, err = concatDerived(r, -1); err != nil {
				return nil, err
			}
			xl = "‖o₁ − o₂‖₂ of the last [CLS] vector"
		}
		panels = append(panels, viz.HistPanel{Values: v, Bins: 50, Title: r.label, XLabel: xl})
	}
	return viz.Histograms(panels, "diagnose "+runs[0].pass)
}

func layerNormCurves(runs []diagnoseRun) (*viz.Figure, error) {
	var series []viz.Series
	for _, r := range runs {
		ids, err := diagnoseSamples(r.run, r.pass)
		if err != nil {
			return nil, err
		}
		var sum [][2]float64
		count := 0
		for _, id := range ids {
			t, err := r.run.Derived(r.pass, id)
			if err != nil {
				return nil, err
			}
			if len(t.Shape) != 3 || t.Shape[1] != 2 {
				return nil, fmt.Errorf("run %s: derived/layernorm/%s.npy has shape %v, expected [layer, 2, token]", r.run.Dir(), id, t.Shape)
			}
			if sum == nil {
				sum = make([][2]float64, t.Shape[0])
			}
			n := t.Shape[2]
			for l := range min(len(sum), t.Shape[0]) {
				for k := range 2 {
					for i := range n {
						sum[l][k] += t.Data[(l*2+k)*n+i]
					}
				}
			}
			count += n
		}
		for k, name := range []string{"attention", "MLP"} {
			s := viz.Series{Name: r.label + ", " + name}
			for l := range sum {
				s.X = append(s.X, float64(l))
				s.Y = append(s.Y, sum[l][k]/float64(count))
			}
			series = append(series, s)
		}
	}
	return viz.Curves(series, viz.CurvesOptions{Title: "std of the residual sums entering each LayerNorm", XLabel: "layer", YLabel: "mean per-token std"})
}
