package derive

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

// toyAttention is the shared toy of spec §7: one head, causal, N = 3, L = 2.
func toyAttention() *tensor.Tensor {
	return &tensor.Tensor{Shape: []int{2, 1, 3, 3}, Data: []float64{
		1, 0, 0, 0.5, 0.5, 0, 0.2, 0.3, 0.5,
		1, 0, 0, 0.9, 0.1, 0, 0.1, 0.1, 0.8,
	}}
}

// runPass calls a built-in function through the registry, with kwargs checked and
// defaulted by the config parser, as derive does.
func runPass(t *testing.T, function, kwargs string, in *Input) *tensor.Tensor {
	t.Helper()
	input := "attention"
	if in.Tensor == nil {
		input = "metadata"
	}
	text := "passes:\n  - name: p\n    input: " + input + "\n    function: " + function + "\n"
	if kwargs != "" {
		text += "    kwargs: " + kwargs + "\n"
	}
	cfg, err := ParseConfig("test.yaml", []byte(text), DefaultRegistry())
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Passes[0]
	if in.Tensor != nil && p.Spec().Input == TakesAttention {
		if in.Tensor, err = checkAttention(in.Tensor, p.Spec().RowStochastic, 0); err != nil {
			t.Fatal(err)
		}
	}
	res, err := compute(context.Background(), p.Spec(), in, p.Args())
	if err != nil {
		t.Fatalf("%s: %v", function, err)
	}
	return res.Tensor
}

func wantTensor(t *testing.T, name string, got *tensor.Tensor, shape []int, data []float64) {
	t.Helper()
	if len(got.Shape) != len(shape) {
		t.Fatalf("%s: shape %v, want %v", name, got.Shape, shape)
	}
	for i := range shape {
		if got.Shape[i] != shape[i] {
			t.Fatalf("%s: shape %v, want %v", name, got.Shape, shape)
		}
	}
	for i := range data {
		if math.Abs(got.Data[i]-data[i]) > 1e-6 {
			t.Fatalf("%s: %v, want %v", name, got.Data, data)
		}
	}
}

// The registry wires each function with the original's kwargs and defaults: the
// oracles of spec §7.1 through derive.
func TestAnalysisPassesOracles(t *testing.T) {
	att := func() *Input { return &Input{Tensor: toyAttention()} }
	r1 := []float64{1, 0, 0, 0.95, 0.05, 0, 0.31, 0.29, 0.4}
	wantTensor(t, "rollout pass", runPass(t, "compute_attention_rollout_from_tensor", "", att()), []int{2, 3, 3},
		append([]float64{1, 0, 0, 0.5, 0.5, 0, 0.2, 0.3, 0.5}, r1...))
	wantTensor(t, "rollout residual", runPass(t, "compute_attention_rollout", "", att()), []int{2, 3, 3},
		[]float64{1, 0, 0, 0.25, 0.75, 0, 0.1, 0.15, 0.75, 1, 0, 0, 0.5875, 0.4125, 0, 0.1525, 0.1725, 0.675})
	left := runPass(t, "compute_transitive_attention", "", att())
	wantTensor(t, "transitive left", &tensor.Tensor{Shape: []int{3, 3}, Data: left.Data[9:]}, []int{3, 3},
		[]float64{1.5, 0, 0, 1.175, 0.325, 0, 0.305, 0.345, 0.85})
	right := runPass(t, "compute_transitive_attention", "{mult_direction: right}", att())
	wantTensor(t, "transitive right", &tensor.Tensor{Shape: []int{3, 3}, Data: right.Data[9:]}, []int{3, 3},
		[]float64{1.5, 0, 0, 1.175, 0.325, 0, 0.41, 0.24, 0.85})
	wantTensor(t, "followup", runPass(t, "compute_followup_attention", "", att()), []int{3, 3},
		[]float64{0.959371, 0.919145, 1, 0.909065, 0.970143, 1, 1, 1, 1})
	wantTensor(t, "naive max", runPass(t, "compute_naive_max_aggregation", "", att()), []int{3, 3},
		[]float64{1, 0, 0, 0.9, 0.5, 0, 0.2, 0.3, 0.8})
	wantTensor(t, "naive mean", runPass(t, "compute_naive_mean_aggregation", "", att()), []int{3, 3},
		[]float64{1, 0, 0, 0.7, 0.3, 0, 0.15, 0.2, 0.65})
	wantTensor(t, "mean of followers", runPass(t, "compute_mean_of_followers", "",
		&Input{Tensor: &tensor.Tensor{Shape: []int{3, 3}, Data: toyAttention().Data[:9]}}), []int{3}, []float64{0.566667, 0.4, 0.5})
	m := func() *Input {
		return &Input{Tensor: &tensor.Tensor{Shape: []int{3, 3}, Data: []float64{1, 2, 0, 3, 4, 0, 5, 6, 7}}}
	}
	wantTensor(t, "symmetric sum", runPass(t, "make_symmetric", "", m()), []int{3, 3}, []float64{1, 5, 5, 5, 4, 6, 5, 6, 7})
	wantTensor(t, "symmetric max", runPass(t, "make_symmetric", "{strategy: max}", m()), []int{3, 3}, []float64{1, 3, 5, 3, 4, 6, 5, 6, 7})
	meta := &store.Sample{Tokens: []string{"a", "b", "a", "gen"}, PromptLen: 3}
	wantTensor(t, "uniform", runPass(t, "generate_uniform_attention_from_metadata", "", &Input{Meta: meta}), []int{3, 3},
		[]float64{1, 0, 0, 0.5, 0.5, 0, 1. / 3, 1. / 3, 1. / 3})
	wantTensor(t, "copy-cat", runPass(t, "generate_copy_cat_attention", "", &Input{Meta: meta}), []int{3, 3},
		[]float64{1, 0, 1, 0, 1, 0, 1, 0, 1})
	g := runPass(t, "generate_gaussian_attention_in_neighborhood_from_metadata", "{sigma: 1}", &Input{Meta: &store.Sample{PromptLen: 5}})
	wantTensor(t, "gaussian row 0", &tensor.Tensor{Shape: []int{5}, Data: g.Data[:5]}, []int{5}, []float64{0.398943, 0.241971, 0.053991, 0.004432, 0.000134})
	wantTensor(t, "raw last layer", runPass(t, "raw_weights_last_layer", "", att()), []int{3, 3}, toyAttention().Data[9:])
	wantTensor(t, "half lower", runPass(t, "extract_half_and_sum", "{dim: 1, half: upper}",
		&Input{Tensor: &tensor.Tensor{Shape: []int{1, 3}, Data: []float64{1, 2, 4}}}), []int{1}, []float64{6})
	cut := runPass(t, "max_10_predictions", "", &Input{Tensor: tensor.New(2, 15, 15), Meta: &store.Sample{PromptLen: 3}})
	wantTensor(t, "max 10 predictions", cut, []int{2, 13, 13}, nil)
}

// Oracle §7.1 11 through the registry: attention flow, L = 2, N = 2.
func TestFlowPassOracle(t *testing.T) {
	in := func() *Input {
		return &Input{Tensor: &tensor.Tensor{Shape: []int{2, 1, 2, 2}, Data: []float64{1, 0, 0.5, 0.5, 1, 0, 0.25, 0.75}}}
	}
	f := runPass(t, "compute_attention_flow_from_tensor", "", in())
	if f.Shape[0] != 6 || f.Shape[1] != 6 {
		t.Fatalf("flow shape %v, want [6 6]", f.Shape)
	}
	// Intended layout: every layer's flow in the input columns 0..1.
	for _, c := range []struct {
		row  int
		want [2]float64
	}{{2, [2]float64{1, 0}}, {3, [2]float64{0.5, 0.5}}, {4, [2]float64{1, 0}}, {5, [2]float64{0.6, 0.4}}} {
		got := f.Data[c.row*6:][:2]
		if math.Abs(got[0]-c.want[0]) > 1e-9 || math.Abs(got[1]-c.want[1]) > 1e-9 {
			t.Errorf("row %d = %v, want %v", c.row, got, c.want)
		}
	}
	orig := runPass(t, "compute_attention_flow_from_tensor", "{previous_layer_columns: true}", in())
	if got := orig.Data[5*6+2 : 5*6+4]; math.Abs(got[0]-0.6) > 1e-9 || math.Abs(got[1]-0.4) > 1e-9 {
		t.Errorf("original layout: row 5 cols 2-3 = %v, want [0.6 0.4]", got)
	}
	v := runPass(t, "attention_flow_values", "", in())
	wantTensor(t, "flow values layer 2", &tensor.Tensor{Shape: []int{2, 2}, Data: v.Data[4:]}, []int{2, 2}, []float64{1, 0, 0.75, 0.5})
}

// Rollout with the residual identity treats attention rows as distributions: derive
// rejects rows that do not sum to 1, naming the pass, sample, layer, head and row.
func TestRolloutRejectsUnnormalisedRows(t *testing.T) {
	run := newMemRun(t, 2)
	bad := run.att["s01"]
	bad.Data[5*5+1] += 0.3 // layer 0 head 1 row 0
	cfg, err := ParseConfig("r.yaml", []byte("passes:\n  - {name: roll, function: compute_attention_rollout}\n"), DefaultRegistry())
	if err != nil {
		t.Fatal(err)
	}
	_, err = Derive(context.Background(), run, cfg, Options{})
	want := `pass "roll" (compute_attention_rollout): sample "s01": layer 0 head 1: row 0 sums to 1.3`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

// Oracle §7.3 29 through the registry, with the metrics the passes report.
func TestStatsPassesOracle(t *testing.T) {
	w := func() *Input {
		return &Input{Tensor: &tensor.Tensor{Shape: []int{1, 1, 2, 2}, Data: []float64{1, 0, 0.95, 0.05}}}
	}
	u := func() *Input {
		return &Input{Tensor: &tensor.Tensor{Shape: []int{1, 1, 2, 2}, Data: []float64{0.5, 0.5, 0.5, 0.5}}}
	}
	metric := func(function, kwargs string, in *Input, name string, layer, head int) float64 {
		t.Helper()
		cfg, err := ParseConfig("t.yaml", []byte("passes:\n  - name: p\n    function: "+function+"\n    kwargs: "+kwargs+"\n"), DefaultRegistry())
		if err != nil {
			t.Fatal(err)
		}
		p := cfg.Passes[0]
		res, err := compute(context.Background(), p.Spec(), in, p.Args())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range res.Metrics {
			if m.Name == name && m.Layer == layer && m.Head == head {
				return m.Value
			}
		}
		t.Fatalf("%s: no metric %s (%d,%d) in %+v", function, name, layer, head, res.Metrics)
		return 0
	}
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-6 {
			t.Errorf("%s = %g, want %g", name, got, want)
		}
	}
	e := runPass(t, "attention_entropy", "{convention: analyzer}", w())
	wantTensor(t, "row entropies", e, []int{1, 1, 2}, []float64{0, 0.198515})
	near("head entropy", metric("attention_entropy", "{convention: analyzer}", w(), "entropy", 0, 0), 0.099258)
	near("layer entropy", metric("attention_entropy", "{convention: analyzer}", w(), "entropy", 0, -1), 0.099258)
	near("uniform entropy", metric("attention_entropy", "{}", u(), "entropy", -1, -1), math.Ln2)
	near("sparsity", metric("attention_sparsity", "{}", w(), "sparsity", 0, 0), 0.5)
	near("uniform sparsity", metric("attention_sparsity", "{threshold: 0.1}", u(), "sparsity", -1, -1), 0)
	wantTensor(t, "received", runPass(t, "attention_received", "", u()), []int{1, 2}, []float64{1, 1})
	near("max weight", metric("attention_max_weight", "{}", w(), "max_weight", 0, 0), 0.975)
	// Two identical heads: redundant, JS distance 0, no diversity.
	two := &tensor.Tensor{Shape: []int{1, 2, 2, 2}, Data: []float64{1, 0, 0.95, 0.05, 1, 0, 0.95, 0.05}}
	near("redundant pairs", metric("head_redundancy", "{}", &Input{Tensor: two}, "redundant_pairs", 0, -1), 1)
	near("diversity", metric("head_diversity", "{}", &Input{Tensor: two}, "head_diversity", 0, -1), 0)
	near("uniform collapse", metric("head_collapse", "{}", u(), "uniform_collapse", 0, 0), 1)
}
