package experiment

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/store"
)

// sensemaking returns followup-attention's sensemaking prompts folder, skipping the
// test when the shared datasets are absent (failing under CI).
func sensemaking(t *testing.T) string {
	t.Helper()
	d := filepath.Join(filepath.Dir(refdata.RepoRoot()), "shared", "datasets", "followup-attention", "prompts_collection", "sensemaking")
	if _, err := os.Stat(d); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("followup-attention prompts not found at %s under CI", d)
		}
		t.Skipf("followup-attention prompts not found at %s", d)
	}
	return d
}

// shippedFor renders the shipped exp_v10.yaml with its paths moved: prompts from
// prompts, outputs under out, models from the reference folder; edit changes the
// rendered text further (old → new pairs).
func shippedFor(t *testing.T, prompts, out string, edit ...string) *Config {
	t.Helper()
	models := refdata.Path(t, "models")
	data, err := os.ReadFile(shippedPath())
	if err != nil {
		t.Fatal(err)
	}
	data, err = Render(shippedPath(), data, shippedVars)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	set := func(key, value string) {
		re := regexp.MustCompile(`(?m)^` + key + `: .*$`)
		if !re.MatchString(s) {
			t.Fatalf("no %s in the shipped config", key)
		}
		s = re.ReplaceAllLiteralString(s, key+": "+value)
	}
	set("input_data_folder", prompts)
	set("output_data_folder", out)
	set("analysis_data_folder", out)
	set("local_model_folder", models)
	for i := 0; i+1 < len(edit); i += 2 {
		if !strings.Contains(s, edit[i]) {
			t.Fatalf("%q not in the shipped config", edit[i])
		}
		s = strings.Replace(s, edit[i], edit[i+1], 1)
	}
	c, err := Parse("exp.yaml", []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// copyPrompts copies the named sensemaking prompts into a new folder.
func copyPrompts(t *testing.T, names ...string) string {
	src := sensemaking(t)
	dir := t.TempDir()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A .json file in the prompts folder is not a prompt (the original skips them).
	if err := os.WriteFile(filepath.Join(dir, "ground_truth.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readNpy(t *testing.T, path string) *checkpoint.NpyArray {
	t.Helper()
	a, err := checkpoint.ReadNpyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestRunFollowupLayout runs the shipped experiment (two sensemaking prompts, two
// tries, four new tokens) through every step and checks the run folder and the
// original's layout: names, shapes, the attention stored as the original stores it,
// the metadata keys, and the paper's pass outputs.
func TestRunFollowupLayout(t *testing.T) {
	out := t.TempDir()
	c := shippedFor(t, copyPrompts(t, "hannoi_Q1.py", "hannoi_Q2.cpp"), out,
		"number_of_tokens: 100", "number_of_tokens: 4", "n_queries: 3", "n_queries: 2")
	// Queried in the run layout, derived in the followup layout: the followup files
	// of the query appear with those of the passes.
	opts := Options{Layout: LayoutRun, Truncate: "left", Workers: 2}
	if err := Run(context.Background(), c, StepQueryExtract, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "metadata")); err == nil {
		t.Errorf("the run layout wrote the original's metadata/")
	}
	opts.Layout = LayoutFollowup
	for _, step := range []string{StepDeriveAll, StepGetAnswers} {
		if err := Run(context.Background(), c, step, opts); err != nil {
			t.Fatal(err)
		}
	}
	run, err := store.Open(filepath.Join(out, "runs", "code-gpt2-mini"))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := run.Samples()
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 4 {
		t.Fatalf("run samples %v, want 2 prompts × 2 tries", ids)
	}
	if g := run.Meta.Generation; g == nil || !g.DoSample || g.Temperature != 0.2 || g.MaxNewTokens != 4 || g.Tries != 2 || g.MaxTimeSeconds != 60 {
		t.Errorf("run.json generation %+v", run.Meta.Generation)
	}
	stems := map[string]bool{}
	for _, id := range ids {
		s, err := run.Sample(id)
		if err != nil {
			t.Fatal(err)
		}
		if s.Seed == nil || *s.Seed != int64(s.Try) {
			t.Errorf("sample %s: seed %v, want the try %d (the original's torch.manual_seed(i_try))", id, s.Seed, s.Try)
		}
		stem := Stem(filepath.Base(s.Source), s.Try, "code-gpt2-mini")
		stems[stem] = true
		checkSample(t, c, run, id, s, out, stem)
	}
	for _, want := range []string{"hannoi_Q1.py_0_code-gpt2-mini", "hannoi_Q1.py_1_code-gpt2-mini", "hannoi_Q2.cpp_0_code-gpt2-mini", "hannoi_Q2.cpp_1_code-gpt2-mini"} {
		if !stems[want] {
			t.Errorf("no sample with stem %s (have %v)", want, stems)
		}
	}
	// Every step resumes: a second run finds everything done.
	if err := Run(context.Background(), c, StepAll, opts); err != nil {
		t.Fatalf("rerun: %v", err)
	}
}

// checkSample checks one sample's files in the original's layout.
func checkSample(t *testing.T, c *Config, run *store.Run, id string, s *store.Sample, out, stem string) {
	t.Helper()
	// The prompt is the file cut after its "Answer:" line, without a final newline.
	src, err := os.ReadFile(s.Source)
	if err != nil {
		t.Fatal(err)
	}
	if want := CutAfterStopLine(string(src), "Answer:"); s.PromptText != want || !strings.HasSuffix(s.PromptText, "Answer:") {
		t.Errorf("%s: prompt %q, want the file cut after its Answer: line", stem, s.PromptText)
	}
	// att_tensor: (L, H, N, N) float32 with N = tokens − 1, the run's attention.
	att := readNpy(t, filepath.Join(out, "att_tensor", stem+".npy"))
	N := len(s.Tokens) - 1
	if att.DType != checkpoint.NpyFloat32 || !slices.Equal(att.Shape, []int{4, 4, N, N}) {
		t.Fatalf("%s: att_tensor %s %v, want float32 [4 4 %d %d]", stem, att.DType, att.Shape, N, N)
	}
	full, err := run.Attention(id)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(att.F32, full.Float32()) {
		t.Errorf("%s: att_tensor differs from the run's attention", stem)
	}
	// metadata/<stem>.json with the original's keys.
	var meta map[string]any
	b, err := os.ReadFile(filepath.Join(out, "metadata", stem+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"tokens_all", "tokens_prompt", "tokens_generated", "text_generated", "text_prompt", "generation_time_seconds", "source_file", "mode_name", "config_options"} {
		if _, ok := meta[k]; !ok {
			t.Errorf("%s: metadata has no %s", stem, k)
		}
	}
	P := len(meta["tokens_prompt"].([]any))
	if P != s.PromptLen || len(meta["tokens_all"].([]any)) != N+1 || len(meta["tokens_generated"].([]any)) != N+1-P {
		t.Errorf("%s: metadata token lists of %d/%d/%d, want prompt %d of %d", stem, P, len(meta["tokens_all"].([]any)), len(meta["tokens_generated"].([]any)), s.PromptLen, N+1)
	}
	if meta["mode_name"] != "code-gpt2-mini" || meta["source_file"] != filepath.Base(s.Source) {
		t.Errorf("%s: mode_name %v, source_file %v", stem, meta["mode_name"], meta["source_file"])
	}
	if g := meta["config_options"].(map[string]any)["generation"].(map[string]any); g["n_queries"] != 2.0 {
		t.Errorf("%s: config_options.generation %v", stem, g)
	}
	txt, err := os.ReadFile(filepath.Join(out, "generated_sequence", stem+".txt"))
	if err != nil || string(txt) != meta["text_generated"] || !strings.HasPrefix(string(txt), s.PromptText) {
		t.Errorf("%s: generated_sequence %q (%v), want text_generated, starting with the prompt", stem, txt, err)
	}
	ans, err := os.ReadFile(filepath.Join(out, "answers", stem+".txt"))
	if err != nil || !strings.HasPrefix(string(ans), stem+"\nQuestion") {
		t.Errorf("%s: answer %q (%v), want the stem then the text from Question on", stem, ans, err)
	}
	// Pass outputs with the original's shapes.
	shapes := map[string][]int{
		"followup": {N, N}, "naive_max": {N, N}, "naive_mean": {N, N}, "naive_max_sym": {N, N}, "naive_mean_sym": {N, N},
		"vector_naive_max_plus_mean_of_followers": {N}, "vector_naive_mean_plus_mean_of_followers": {N},
		"raw_weights_last_layer": {N, N}, "raw_weights_first_layer": {N, N}, "raw_weights_last_layer_sym": {N, N}, "raw_weights_first_layer_sym": {N, N},
		"att_roll_layer_matrix": {4, N, N}, "rollout_condensed_all": {N, N}, "att_uniform_matrix": {N, N},
		"att_copy_cat_matrix": {P, P}, "att_gaussian_neighbors_1000": {P, P},
	}
	for pass, want := range shapes {
		a := readNpy(t, filepath.Join(out, pass, stem+".npy"))
		if !slices.Equal(a.Shape, want) {
			t.Errorf("%s: %s shape %v, want %v", stem, pass, a.Shape, want)
		}
	}
	// One value against its definition: naive_max = max over layers and heads.
	nm := readNpy(t, filepath.Join(out, "naive_max", stem+".npy")).Float64s()
	for _, ij := range [][2]int{{N - 1, 0}, {N - 1, N - 1}, {N / 2, N / 3}} {
		want := 0.0
		for l := range 4 {
			for h := range 4 {
				want = math.Max(want, full.At(l, h, ij[0], ij[1]))
			}
		}
		if got := nm[ij[0]*N+ij[1]]; math.Abs(got-want) > 1e-6 {
			t.Errorf("%s: naive_max[%d,%d] = %g, want %g", stem, ij[0], ij[1], got, want)
		}
	}
}

// TestRunReducedAttention runs an experiment that reduces heads with max and
// normalises with more_weight_to_recent: att_tensor/<stem>.npy is (L, N, N) with
// max_h A[l,h,i,j]·sqrt(i+1), and the passes reading att_tensor read it.
func TestRunReducedAttention(t *testing.T) {
	out := t.TempDir()
	c := shippedFor(t, copyPrompts(t, "hannoi_Q1.py"), out,
		"number_of_tokens: 100", "number_of_tokens: 3", "n_queries: 3", "n_queries: 1",
		"strategy_reduce_head: keep", "strategy_reduce_head: max",
		"strategy_normalize_tokens: None", "strategy_normalize_tokens: more_weight_to_recent")
	if err := Run(context.Background(), c, StepAll, Options{Layout: LayoutFollowup, Truncate: "left", Workers: 1}); err != nil {
		t.Fatal(err)
	}
	run, err := store.Open(filepath.Join(out, "runs", "code-gpt2-mini"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := run.Sample("hannoi_Q1.py")
	if err != nil {
		t.Fatal(err)
	}
	full, err := run.Attention(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	stem := "hannoi_Q1.py_0_code-gpt2-mini"
	N := len(s.Tokens) - 1
	att := readNpy(t, filepath.Join(out, "att_tensor", stem+".npy"))
	if !slices.Equal(att.Shape, []int{4, N, N}) {
		t.Fatalf("att_tensor shape %v, want [4 %d %d]", att.Shape, N, N)
	}
	derived, err := run.Derived("att_tensor", s.ID)
	if err != nil {
		t.Fatal(err)
	}
	for l := range 4 {
		for i := range N {
			for j := range N {
				want := 0.0
				for h := range 4 {
					want = math.Max(want, full.At(l, h, i, j))
				}
				want *= math.Sqrt(float64(i + 1))
				if got := float64(att.F32[(l*N+i)*N+j]); math.Abs(got-want) > 1e-5*math.Max(1, want) {
					t.Fatalf("att_tensor[%d,%d,%d] = %g, want %g", l, i, j, got, want)
				}
				if got := derived.At(l, i, j); math.Abs(got-want) > 1e-5*math.Max(1, want) {
					t.Fatalf("run's att_tensor pass [%d,%d,%d] = %g, want %g", l, i, j, got, want)
				}
			}
		}
	}
	// raw_weights_last_layer reads att_tensor: the last layer's (single) head.
	raw := readNpy(t, filepath.Join(out, "raw_weights_last_layer", stem+".npy"))
	if got, want := raw.Float64s()[(N-1)*N+1], derived.At(3, N-1, 1); math.Abs(got-want) > 1e-9 {
		t.Errorf("raw_weights_last_layer over the reduced att_tensor: %g, want %g", got, want)
	}
}

// TestSensemakingEndToEnd runs the shipped experiment file over the whole
// sensemaking folder (45 prompts) with the trained reference GPT-2, one try of a few
// tokens each, and checks every stem's files.
func TestSensemakingEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("45 prompts of up to 512 tokens through capture and the paper's 16 passes take minutes")
	}
	dir := sensemaking(t)
	out := t.TempDir()
	c := shippedFor(t, dir, out, "number_of_tokens: 100", "number_of_tokens: 3", "n_queries: 3", "n_queries: 1")
	if err := Run(context.Background(), c, StepAll, Options{Layout: LayoutFollowup, Truncate: "left", Workers: 2}); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		n++
		stem := Stem(e.Name(), 0, "code-gpt2-mini")
		for _, f := range []string{"metadata/" + stem + ".json", "att_tensor/" + stem + ".npy", "generated_sequence/" + stem + ".txt", "answers/" + stem + ".txt"} {
			if _, err := os.Stat(filepath.Join(out, f)); err != nil {
				t.Errorf("missing %s", f)
			}
		}
		for _, p := range c.AnalysisPasses {
			if _, err := os.Stat(filepath.Join(out, p.Name, stem+".npy")); err != nil {
				t.Errorf("missing %s/%s.npy", p.Name, stem)
			}
		}
	}
	if n != 45 {
		t.Errorf("%d prompts in %s, want 45", n, dir)
	}
}
