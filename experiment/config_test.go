package experiment

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/capture"
	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/tensor"
	"github.com/attnscope/attnscope/tokenizer"
)

// shippedVars are the placeholder values the shipped experiment file needs.
var shippedVars = map[string]string{"model_huggingface_name": "code-gpt2-mini", "model_short_name": "gpt2mini"}

func shippedPath() string {
	return filepath.Join(refdata.RepoRoot(), "configs", "followup", "exp_v10.yaml")
}

// randomAttention returns a [L, H, N, N] tensor of non-negative values with lower
// triangular rows summing to 1, as a causal model's attention.
func randomAttention(r *rand.Rand, L, H, N int) *tensor.Tensor {
	t := tensor.New(L, H, N, N)
	for l := range L {
		for h := range H {
			for i := range N {
				sum := 0.0
				for j := 0; j <= i; j++ {
					v := r.Float64()
					t.Set(v, l, h, i, j)
					sum += v
				}
				for j := 0; j <= i; j++ {
					t.Set(t.At(l, h, i, j)/sum, l, h, i, j)
				}
			}
		}
	}
	return t
}

// refReduce is the definition of a reducer over a list of values.
func refReduce(fn string, vals []float64) float64 {
	switch fn {
	case "min":
		return slices.Min(vals)
	case "max":
		return slices.Max(vals)
	}
	s := 0.0
	for _, v := range vals {
		s += v
	}
	if fn == "mean" {
		return s / float64(len(vals))
	}
	return s
}

// TestReduceAgainstDefinition checks every pair of strategy_reduce_head and
// strategy_reduce_layer against a direct float64 evaluation of the definition
// (heads reduced first, then layers, as decoder.extract_att_matrix does), and the
// stored shape after the original's squeeze.
func TestReduceAgainstDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const L, H, N = 3, 4, 5
	att := randomAttention(r, L, H, N)
	for _, fh := range Reducers {
		for _, fl := range Reducers {
			got, err := Reduce(att, fh, fl)
			if err != nil {
				t.Fatal(err)
			}
			// Reference: C[l][i][j] = reduce_h A[l,h,i,j] (or A itself with keep),
			// then reduce_l over C.
			heads := func(l, h, i, j int) float64 {
				if fh == "keep" {
					return att.At(l, h, i, j)
				}
				vals := make([]float64, H)
				for k := range H {
					vals[k] = att.At(l, k, i, j)
				}
				return refReduce(fh, vals)
			}
			nl, nh := L, H
			if fl != "keep" {
				nl = 1
			}
			if fh != "keep" {
				nh = 1
			}
			if want := []int{nl, nh, N, N}; !slices.Equal(got.Shape, want) {
				t.Fatalf("%s/%s: shape %v, want %v", fh, fl, got.Shape, want)
			}
			for l := range nl {
				for h := range nh {
					for i := range N {
						for j := range N {
							var want float64
							if fl == "keep" {
								want = heads(l, h, i, j)
							} else {
								vals := make([]float64, L)
								for k := range L {
									vals[k] = heads(k, h, i, j)
								}
								want = refReduce(fl, vals)
							}
							if g := got.At(l, h, i, j); math.Abs(g-want) > 1e-12 {
								t.Fatalf("%s/%s [%d,%d,%d,%d] = %g, want %g", fh, fl, l, h, i, j, g, want)
							}
						}
					}
				}
			}
			// The stored shape: (L, H, N, N) without the reduced axes.
			var want []int
			if fl == "keep" {
				want = append(want, L)
			}
			if fh == "keep" {
				want = append(want, H)
			}
			want = append(want, N, N)
			if s := Squeeze(got.Shape); !slices.Equal(s, want) {
				t.Errorf("%s/%s: squeezed shape %v, want %v", fh, fl, s, want)
			}
		}
	}
	// The original's numpy squeeze also drops a kept axis of length 1.
	if s := Squeeze([]int{1, 4, 7, 7}); !slices.Equal(s, []int{4, 7, 7}) {
		t.Errorf("one layer kept: squeezed shape %v, want [4 7 7]", s)
	}
	if _, err := Reduce(att, "median", "keep"); err == nil || !strings.Contains(err.Error(), "strategy_reduce_head") {
		t.Errorf("unknown reducer: error %v, want one naming strategy_reduce_head", err)
	}
}

// TestMoreWeightToRecent checks the normalisation against its definition, applied
// as the original does: to each generation step's rows before the steps are summed
// (a step s ≥ 1 contributes row P+s−1 only), which must equal scaling the assembled
// matrix.
func TestMoreWeightToRecent(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const L, H, N, P = 2, 3, 6, 3
	att := randomAttention(r, L, H, N)
	got := att.Clone()
	MoreWeightToRecent(got)
	// The original: steps (S = N−P+1) each zero but their rows, each scaled row-wise
	// by sqrt(i+1), then summed over steps.
	want := tensor.New(L, H, N, N)
	for s := 0; s <= N-P; s++ {
		rows := []int{P + s - 1}
		if s == 0 {
			rows = []int{0, 1, 2}
		}
		for l := range L {
			for h := range H {
				for _, i := range rows {
					for j := range N {
						want.Set(want.At(l, h, i, j)+att.At(l, h, i, j)*math.Pow(float64(i+1), 0.5), l, h, i, j)
					}
				}
			}
		}
	}
	for k := range want.Data {
		if math.Abs(got.Data[k]-want.Data[k]) > 1e-12 {
			t.Fatalf("element %d: %g, want %g", k, got.Data[k], want.Data[k])
		}
	}
	if got.At(0, 0, 0, 0) != att.At(0, 0, 0, 0) {
		t.Errorf("row 0 must keep its weights (factor sqrt(1))")
	}
}

func TestRenderPlaceholders(t *testing.T) {
	src := "# {{comment_only}} stays\nmodels:\n  - {{model_huggingface_name}}\nout: runs/{{ model_short_name }}/x\n"
	got, err := Render("exp.yaml", []byte(src), shippedVars)
	if err != nil {
		t.Fatal(err)
	}
	want := "# {{comment_only}} stays\nmodels:\n  - code-gpt2-mini\nout: runs/gpt2mini/x\n"
	if string(got) != want {
		t.Errorf("rendered:\n%s\nwant:\n%s", got, want)
	}
	_, err = Render("exp.yaml", []byte(src), map[string]string{"model_huggingface_name": "m"})
	if err == nil || !strings.Contains(err.Error(), "exp.yaml:4: placeholder {{model_short_name}} has no value") || !strings.Contains(err.Error(), "--set model_short_name=") {
		t.Errorf("missing placeholder: error %v, want one naming exp.yaml:4 and model_short_name", err)
	}
	if _, err := ParseSets([]string{"a=b", "c=d=e"}); err != nil {
		t.Error(err)
	}
	if _, err := ParseSets([]string{"no-equals"}); err == nil {
		t.Error("--set without = accepted")
	}
}

func TestCutAfterStopLine(t *testing.T) {
	text := "a\n# Question: q?\n# Answer:\nrest\nmore\n"
	if got := CutAfterStopLine(text, "Answer:"); got != "a\n# Question: q?\n# Answer:" {
		t.Errorf("cut: %q (the original joins the kept lines without a final newline)", got)
	}
	if got := CutAfterStopLine(text, "nowhere"); got != text {
		t.Errorf("no stop line: %q, want the whole text", got)
	}
	if got := Stem("Nqueens_Q1.cpp", 0, "Salesforce/codegen-16B-multi"); got != "Nqueens_Q1.cpp_0_Salesforce_codegen-16B-multi" {
		t.Errorf("stem %q", got)
	}
}

// TestShippedConfig checks that configs/followup/exp_v10.yaml holds every key of
// the original's exp_v10 and maps its passes onto derive.
func TestShippedConfig(t *testing.T) {
	c, err := Load(shippedPath(), shippedVars)
	if err != nil {
		t.Fatal(err)
	}
	if c.NumberOfTokens() != 100 || c.NQueries() != 3 || c.Temperature() != 0.2 || c.MaxTimeSeconds() != 60 || *c.StopSignalLine != "Answer:" {
		t.Errorf("generation settings: %+v", c.Generation)
	}
	ps, err := c.DerivePasses(Registry())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range ps.Derive.Passes {
		names = append(names, p.Name)
	}
	want := []string{"followup", "naive_max", "naive_mean", "naive_max_sym", "naive_mean_sym",
		"vector_naive_max_plus_mean_of_followers", "vector_naive_mean_plus_mean_of_followers",
		"raw_weights_last_layer", "raw_weights_first_layer", "raw_weights_last_layer_sym", "raw_weights_first_layer_sym",
		"att_roll_layer_matrix", "rollout_condensed_all", "att_uniform_matrix", "att_copy_cat_matrix", "att_gaussian_neighbors_1000"}
	if !slices.Equal(names, want) {
		t.Errorf("passes %v\nwant %v", names, want)
	}
	if ps.AttTensorPass != "" || ps.Derive.Passes[0].Input != "attention" || ps.Derive.Passes[15].Input != "metadata" || ps.Derive.Passes[3].Input != "naive_max" {
		t.Errorf("inputs not mapped: %+v", ps.Derive.Passes[0])
	}
	// A reducing experiment gets a first pass computing the original's att_tensor,
	// which the passes reading att_tensor take.
	data, _ := os.ReadFile(shippedPath())
	data, _ = Render("exp.yaml", data, shippedVars)
	s := strings.Replace(string(data), "strategy_reduce_head: keep", "strategy_reduce_head: mean", 1)
	if c, err = Parse("exp.yaml", []byte(s)); err != nil {
		t.Fatal(err)
	}
	if ps, err = c.DerivePasses(Registry()); err != nil {
		t.Fatal(err)
	}
	if p := ps.Derive.Passes[0]; ps.AttTensorPass != "att_tensor" || p.Name != "att_tensor" || p.Function != AttTensorFunction || ps.Derive.Passes[1].Input != "att_tensor" {
		t.Errorf("reduced att_tensor not mapped: %+v", p)
	}
	// Reduced to one N×N matrix, it is no input for follow-up attention: an error at
	// the line of that pass.
	s = strings.Replace(s, "strategy_reduce_layer: keep", "strategy_reduce_layer: sum", 1)
	if c, err = Parse("exp.yaml", []byte(s)); err != nil {
		t.Fatal(err)
	}
	_, err = c.DerivePasses(Registry())
	wantAt := "exp.yaml:" + strconv.Itoa(strings.Count(s[:strings.Index(s, "  - name: followup")], "\n")+2) + ":" // its input_folder
	if err == nil || !strings.HasPrefix(err.Error(), wantAt) {
		t.Errorf("follow-up attention over an N×N att_tensor: error %v, want one starting %q", err, wantAt)
	}
}

// TestBadInput checks that mistakes in an experiment file are errors naming the file,
// the line and the key.
func TestBadInput(t *testing.T) {
	data, err := os.ReadFile(shippedPath())
	if err != nil {
		t.Fatal(err)
	}
	data, err = Render("exp.yaml", data, shippedVars)
	if err != nil {
		t.Fatal(err)
	}
	base := string(data)
	lineOf := func(s, sub string) string {
		i := strings.Index(s, sub)
		if i < 0 {
			t.Fatalf("%q not in the config", sub)
		}
		return "exp.yaml:" + strconv.Itoa(strings.Count(s[:i], "\n")+1) + ":"
	}
	cases := []struct {
		name, old, new, want string
	}{
		{"unknown key", "extract_attention: true", "extract_attention: true\nextract_atention: true", "extract_atention"},
		{"unknown generation key", "  n_queries: 3", "  n_queries: 3\n  n_querys: 2", "n_querys"},
		{"unknown pass key", "    function_name: compute_followup_attention", "    function_name: compute_followup_attention\n    pass_metdata: true", "pass_metdata"},
		{"unknown pass", "function_name: compute_naive_max_aggregation", "function_name: compute_naive_maximum", "unknown function_name \"compute_naive_maximum\""},
		{"unknown kwarg", "      sigma: 1000", "      sigmaa: 1000", "no keyword argument \"sigmaa\""},
		{"bad reducer", "strategy_reduce_head: keep", "strategy_reduce_head: median", "strategy_reduce_head is \"median\""},
		{"bad normalisation", "strategy_normalize_tokens: None", "strategy_normalize_tokens: recent", "more_weight_to_recent or None"},
		{"zero tokens", "number_of_tokens: 100", "number_of_tokens: 0", "number_of_tokens is 0"},
		{"raw output", "save_raw_model_output: false", "save_raw_model_output: true", "save_raw_model_output"},
		{"later input", "    input_folder: naive_max\n    function_name: make_symmetric", "    input_folder: rollout_condensed_all\n    function_name: make_symmetric", "later pass"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(base, tc.old) {
				t.Fatalf("%q not in the config", tc.old)
			}
			s := strings.Replace(base, tc.old, tc.new, 1)
			c, err := Parse("exp.yaml", []byte(s))
			if err == nil {
				_, err = c.DerivePasses(Registry())
			}
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			wantLine := lineOf(s, strings.Split(tc.new, "\n")[len(strings.Split(tc.new, "\n"))-1])
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not mention %q", msg, tc.want)
			}
			if !strings.Contains(msg, wantLine) && !lineInPass(msg, s, tc.new) {
				t.Errorf("error %q does not name %s (or its pass's line)", msg, wantLine)
			}
		})
	}
}

// lineInPass reports whether msg names the line of the "- name:" entry holding the
// edited text (errors about a pass's input are reported at the pass).
func lineInPass(msg, s, edited string) bool {
	i := strings.Index(s, edited)
	j := strings.LastIndex(s[:i], "  - name:")
	if j < 0 {
		return false
	}
	return strings.Contains(msg, "exp.yaml:"+strconv.Itoa(strings.Count(s[:j], "\n")+1)+":")
}

// TestOpenEndedGeneration checks number_of_tokens -1: the generation may fill the
// model's context after the longest prompt (it stops earlier at the end-of-text
// token), and a prompt that fills the context is an error at the key's line.
func TestOpenEndedGeneration(t *testing.T) {
	dir := refdata.Path(t, "models", "code-gpt2-mini")
	c, err := Parse("exp.yaml", []byte("input_data_folder: p\noutput_data_folder: o\nmodels: [m]\ngeneration:\n  number_of_tokens: -1\n  max_time_in_seconds: -1\n"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := c.generateOptions(dir, []capture.Input{{Text: "def f(x):\n    return x\n"}, {Text: "x = 1\n"}})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := tk.Encode("def f(x):\n    return x\n", true)
	if err != nil {
		t.Fatal(err)
	}
	if g.MaxNewTokens != 512-len(enc.IDs) || g.MaxTime != 0 || !g.DoSample {
		t.Errorf("open-ended generation: %+v, want %d new tokens at most (512 positions), no time limit, sampling", g, 512-len(enc.IDs))
	}
	_, err = c.generateOptions(dir, []capture.Input{{Text: strings.Repeat("x = 1\n", 400), Source: "long.py"}})
	if err == nil || !strings.HasPrefix(err.Error(), "exp.yaml:5: number_of_tokens -1: prompt long.py") {
		t.Errorf("prompt filling the context: error %v, want one at exp.yaml:5 naming long.py", err)
	}
}
