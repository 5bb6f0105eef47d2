package followup

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/attnscope/attnscope/internal/pyoracle"
	"github.com/attnscope/attnscope/tasks"
)

const chainYAML = `input_data_folder: PROMPTS
ground_truth_folder: TRUTH
output_data_folder: ./out
models: [Salesforce/codegen-350M-mono]
prompt_creation_strategy:
  name: assignment_chain
  type: creator
  attention_level: line
  n_prompts: 6
  kwargs:
    seed: 42
    n_assignments: 4
    init_min_int_value: 0
    init_max_int_value: 1000
    n_arithmetic_ops: 5
    allow_reuse_of_derived_nodes: true
    distance_fn: naive
    custom_prompt: "if (<RELEVANT_VARIABLE> == "
    arithmetic_ops:
      - {symbol: "+", min_n_args: 2, max_n_args: 4}
      - {symbol: "*", min_n_args: 2, max_n_args: 3}
EXTRA`

// parseStrategy decodes a file's prompt_creation_strategy and checks it. The file
// itself is parsed by experiment.ParseCreation, which imports this package; its tests
// check the errors' files and lines.
func parseStrategy(path string, data []byte) (s *Strategy, err error) {
	defer func() {
		if p := recover(); p != nil { // go-yaml's parser on malformed input, not Check
			s, err = nil, fmt.Errorf("%s: malformed YAML: %v", path, p)
		}
	}()
	var f struct {
		S *Strategy `yaml:"prompt_creation_strategy"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if f.S == nil {
		return nil, fmt.Errorf("%s: prompt_creation_strategy: required", path)
	}
	return f.S, f.S.Check(func(p, format string, a ...any) error {
		return fmt.Errorf("%s: %s: %s", path, p, fmt.Sprintf(format, a...))
	})
}

func parseChain(t *testing.T, extra string) *Strategy {
	t.Helper()
	s, err := parseStrategy("exp.yaml", []byte(strings.Replace(chainYAML, "EXTRA", extra, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func near(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-12 {
			return false
		}
	}
	return true
}

// The original's test_attention_computation_with_derived_dependencies
// (attwizard/creators/test_assignment_chain.py): its pickled program rebuilt statement
// by statement, with the weights it asserts.
func TestLineWeightsOriginalFixture(t *testing.T) {
	p := &program{rng: tasks.NewPyRandom(0)}
	vars := map[string]*depNode{}
	assign := func(name, val string) {
		v := p.newNode(name, false)
		vars[name] = v
		p.safeAppend(p.newOp("assign", "=", []*depNode{p.newNode(val, true)}, []*depNode{v}))
	}
	infix := func(out, sym string, a, b string) {
		v := p.newNode(out, false)
		p.safeAppend(p.newOp("infix", sym, []*depNode{vars[a], vars[b]}, []*depNode{v}))
		vars[out] = v
	}
	assign("var_0", "388")
	assign("var_1", "284")
	assign("var_2", "552")
	assign("var_3", "859")
	infix("derived_0", "-", "var_0", "var_2")
	infix("derived_1", "+", "var_2", "var_0")
	infix("derived_2", "*", "derived_1", "var_1")
	infix("derived_3", "+", "derived_2", "derived_1")
	infix("derived_4", "/", "derived_2", "derived_3")
	p.safeAppend(p.newOp("query", "if (<RELEVANT_VARIABLE> == ", []*depNode{vars["derived_3"]}, nil))
	want := []float64{2.0 / 9, 2.0 / 9, 2.0 / 9, 0, 0, 5.0 / 9, 5.0 / 9, 8.0 / 9, 0, 1}
	if got := p.lineWeights(10); !near(got, want) {
		t.Errorf("weights %v, want %v", got, want)
	}
	if got := p.ops[7].line(); got != "derived_3 = derived_2 + derived_1" {
		t.Errorf("line 8 %q", got)
	}
	if got := p.ops[9].line(); got != "if (derived_3 == " {
		t.Errorf("query line %q", got)
	}
	// max_level_of_depth cuts the tree: with 5 levels (depths 0..4) the var lines
	// (depth 7) drop out and max_depth becomes 4.
	if got := p.lineWeights(5); !near(got, []float64{0, 0, 0, 0, 0, 0, 0, 0.75, 0, 1}) {
		t.Errorf("max_level_of_depth 5: %v", got)
	}
}

// The original's test_get_att_weights_all_relevant: name = marco; surname = polo;
// full_name = name + surname; query full_name → [1/3, 1/3, 5/6, 1].
func TestLineWeightsAllRelevant(t *testing.T) {
	p := &program{rng: tasks.NewPyRandom(0)}
	name, surname, full := p.newNode("name", false), p.newNode("surname", false), p.newNode("full_name", false)
	p.safeAppend(p.newOp("assign", "=", []*depNode{p.newNode("marco", true)}, []*depNode{name}))
	p.safeAppend(p.newOp("assign", "=", []*depNode{p.newNode("polo", true)}, []*depNode{surname}))
	p.safeAppend(p.newOp("infix", "+", []*depNode{name, surname}, []*depNode{full}))
	p.safeAppend(p.newOp("query", `print(<RELEVANT_VARIABLE>) # prints the value "`, []*depNode{full}, nil))
	if got := p.lineWeights(10); !near(got, []float64{1.0 / 3, 1.0 / 3, 5.0 / 6, 1}) {
		t.Errorf("weights %v", got)
	}
}

func TestCreateDeterministic(t *testing.T) {
	a, err := Create(parseChain(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Create(parseChain(t, ""))
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two runs with seed 42 differ")
	}
	c, _ := Create(parseChain(t, "    max_level_of_depth: 10\n"))
	for i := range a {
		c[i].Truth.Args = a[i].Truth.Args
	}
	if !reflect.DeepEqual(a, c) {
		t.Fatal("max_level_of_depth 10 is not the default")
	}
	other := parseChain(t, "")
	s := int64(43)
	other.assignment.Seed = &s
	d, _ := Create(other)
	if reflect.DeepEqual(a[0].Text, d[0].Text) && reflect.DeepEqual(a[1].Text, d[1].Text) {
		t.Fatal("seeds 42 and 43 give the same prompts")
	}
	for _, p := range a {
		lines := strings.Split(p.Text, "\n")
		if len(lines) != 4+5+1 || len(p.Truth.AttentionWeights) != len(lines) || !reflect.DeepEqual(lines, p.Truth.AttendableParts) {
			t.Fatalf("%s: %d lines, %d weights", p.Name, len(lines), len(p.Truth.AttentionWeights))
		}
		if w := p.Truth.AttentionWeights; w[len(w)-1] != 1 || !strings.HasPrefix(lines[len(lines)-1], "if (derived_") {
			t.Errorf("%s: query line %q weight %v", p.Name, lines[len(lines)-1], w[len(w)-1])
		}
	}
	if a[0].Name != "prompt_0_assignment_chain" || a[0].Truth.CreationStrategy != "AssignmentChainCreator" {
		t.Errorf("name %q strategy %q", a[0].Name, a[0].Truth.CreationStrategy)
	}
}

var operands = regexp.MustCompile(`^derived_\d+ = (.*)$`)

// The quirk: the original draws randint(min_n_args, min_n_args) operands; with
// original_n_args: false the count spans [min_n_args, max_n_args].
func TestNArgsQuirk(t *testing.T) {
	counts := func(c *Strategy) map[int]bool {
		c.NPrompts = 40
		ps, err := Create(c)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int]bool{}
		for _, p := range ps {
			for _, l := range p.Truth.AttendableParts {
				if m := operands.FindStringSubmatch(l); m != nil {
					seen[len(regexp.MustCompile(`[+*]`).FindAllString(m[1], -1))+1] = true
				}
			}
		}
		return seen
	}
	if got := counts(parseChain(t, "")); !reflect.DeepEqual(got, map[int]bool{2: true}) {
		t.Errorf("original: operand counts %v, want only 2 (min_n_args)", got)
	}
	if got := counts(parseChain(t, "    original_n_args: false\n")); !reflect.DeepEqual(got, map[int]bool{2: true, 3: true, 4: true}) {
		t.Errorf("original_n_args false: operand counts %v, want 2, 3 and 4", got)
	}
}

// runOracle runs testdata/oracle.py (CPython's random, networkx) for a strategy.
func runOracle(t *testing.T, strategy string, kw map[string]any, n int) [][2]json.RawMessage {
	t.Helper()
	py := pyoracle.Python(t, "networkx")
	b, _ := json.Marshal(kw)
	out, err := exec.Command(py, "testdata/oracle.py", strategy, string(b), strconv.Itoa(n)).Output()
	if err != nil {
		t.Fatalf("oracle: %v", err)
	}
	var res [][2]json.RawMessage
	if err := json.Unmarshal(out, &res); err != nil || len(res) != n {
		t.Fatalf("oracle gave %d prompts, want %d: %v", len(res), n, err)
	}
	return res
}

// The prompts and weights are the original's for the same seed: compared with an
// independent Python version using CPython's random and networkx.
func TestAssignmentChainMatchesPython(t *testing.T) {
	for _, extra := range []string{"", "    original_n_args: false\n", "    allow_reuse_of_derived_nodes: false\n", "    max_level_of_depth: 6\n"} {
		yml := strings.Replace(chainYAML, "EXTRA", extra, 1)
		if strings.Contains(extra, "allow_reuse") {
			yml = strings.Replace(yml, "    allow_reuse_of_derived_nodes: true\n", "", 1)
		}
		c, err := parseStrategy("exp.yaml", []byte(yml))
		if err != nil {
			t.Fatal(err)
		}
		ps, err := Create(c)
		if err != nil {
			t.Fatal(err)
		}
		want := runOracle(t, AssignmentChain, c.Kwargs, c.NPrompts)
		for i, p := range ps {
			var parts []string
			var w []float64
			json.Unmarshal(want[i][0], &parts)
			json.Unmarshal(want[i][1], &w)
			if !reflect.DeepEqual(parts, p.Truth.AttendableParts) || !near(w, p.Truth.AttentionWeights) {
				t.Errorf("%q prompt %d:\n go %q %v\n py %q %v", extra, i, p.Truth.AttendableParts, p.Truth.AttentionWeights, parts, w)
			}
		}
	}
}

func TestGibberishAndTwoFunctionsMatchPython(t *testing.T) {
	g, err := parseStrategy("g.yaml", []byte("input_data_folder: p\nground_truth_folder: g\nprompt_creation_strategy:\n  name: complete_gibberish\n  n_prompts: 5\n  kwargs: {seed: 7, max_lines: 6}\n"))
	if err != nil {
		t.Fatal(err)
	}
	gs, err := Create(g)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range runOracle(t, CompleteGibberish, g.Kwargs, 5) {
		var text string
		json.Unmarshal(r[0], &text)
		if text != gs[i].Text || gs[i].Truth.AttentionWeights != nil || gs[i].Name != "prompt_"+string(rune('0'+i)) {
			t.Errorf("gibberish %d: go %q, py %q", i, gs[i].Text, text)
		}
	}
	f, err := parseStrategy("f.yaml", []byte("input_data_folder: p\nground_truth_folder: g\nprompt_creation_strategy:\n  name: two_functions_one_test\n  type: creator\n  n_prompts: 6\n  kwargs: {seed: 3, folder_with_seed_functions: testdata/seed_functions, start_of_test_statement: '# Write a test'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Create(f)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range runOracle(t, TwoFunctionsTest, f.Kwargs, 6) {
		var parts []string
		var w []float64
		json.Unmarshal(r[0], &parts)
		json.Unmarshal(r[1], &w)
		if !reflect.DeepEqual(parts, fs[i].Truth.AttendableParts) || !near(w, fs[i].Truth.AttentionWeights) {
			t.Errorf("two functions %d:\n go %q %v\n py %q %v", i, fs[i].Truth.AttendableParts, fs[i].Truth.AttentionWeights, parts, w)
		}
	}
	// Hand check of one prompt: the lines of the function whose test closes the prompt
	// and the test weigh 1, the other function and the two blank separators 0.
	p := fs[0].Truth
	test := strings.TrimSuffix(strings.TrimPrefix(p.AttendableParts[len(p.AttendableParts)-2], "assert "), "(")
	for k, part := range p.AttendableParts {
		if name, ok := strings.CutPrefix(part, "def "); ok {
			if want := strings.HasPrefix(name, test+"("); want != (p.AttentionWeights[k] == 1) {
				t.Errorf("line %d %q weight %v (test of %s)", k, part, p.AttentionWeights[k], test)
			}
		}
	}
	var zeros, blanks int
	for k, part := range p.AttendableParts {
		if part == "" && p.AttentionWeights[k] == 0 {
			blanks++
		}
		if p.AttentionWeights[k] == 0 {
			zeros++
		}
	}
	if blanks < 2 || zeros < 3 {
		t.Errorf("prompt 0: %d zero-weight blank lines, %d zero-weight lines: %q %v", blanks, zeros, p.AttendableParts, p.AttentionWeights)
	}
	if n := 6; len(fs) != n {
		t.Fatalf("%d prompts", len(fs))
	}
	f.NPrompts = 7 // 4 files make 6 pairs
	if _, err := Create(f); err == nil || !strings.Contains(err.Error(), "only 6 pairs") {
		t.Errorf("7 prompts from 6 pairs: %v", err)
	}
}

// The file's errors (file, line, key) are tested with experiment.ParseCreation; here
// the strategy's own errors, through the Errorf given to Check.
func TestBadStrategy(t *testing.T) {
	base := strings.Replace(chainYAML, "EXTRA", "", 1)
	for _, c := range []struct{ yaml, want string }{
		{strings.Replace(base, "    seed: 42\n", "    seed: 42\n    n_assignment: 3\n", 1), "exp.yaml: kwargs.n_assignment: unknown key"},
		{strings.Replace(base, "    seed: 42\n", "", 1), "exp.yaml: kwargs: seed: required"},
		{strings.Replace(base, "n_prompts: 6", "n_prompts: 0", 1), "exp.yaml: n_prompts: must be at least 1"},
		{strings.Replace(base, "name: assignment_chain", "name: chains", 1), "exp.yaml: name: unknown strategy"},
		{strings.Replace(base, "distance_fn: naive", "distance_fn: exp", 1), "exp.yaml: kwargs.distance_fn: only naive"},
		{strings.Replace(base, "min_n_args: 2, max_n_args: 3", "min_n_args: 3, max_n_args: 2", 1), "exp.yaml: kwargs.arithmetic_ops[1]: needs a symbol"},
		{strings.Replace(base, "n_assignments: 4", "n_assignments: four", 1), "exp.yaml: kwargs: "},
		{strings.Replace(base, "attention_level: line", "attention_level: token", 1), "exp.yaml: attention_level: only line"},
	} {
		_, err := parseStrategy("exp.yaml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want one containing %q", err, c.want)
		}
	}
	if _, err := Create(&Strategy{Name: AssignmentChain}); err == nil || !strings.Contains(err.Error(), "not checked") {
		t.Errorf("Create of an unchecked strategy: %v", err)
	}
	// A sample larger than the population (the original's ValueError) is an error.
	c := parseChain(t, "")
	c.assignment.NAssignments = 1
	if _, err := Create(c); err == nil || !strings.Contains(err.Error(), "only 1 variables") {
		t.Errorf("2 operands of 1 variable: %v", err)
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	c := parseChain(t, "")
	prompts, truth := filepath.Join(dir, "prompts"), filepath.Join(dir, "truth")
	ps, err := Create(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(prompts, truth, ps, false); err != nil {
		t.Fatal(err)
	}
	if err := Write(prompts, truth, ps, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("second write without force: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "prompts", "prompt_3_assignment_chain.txt"))
	if err != nil || string(b) != ps[3].Text {
		t.Fatalf("prompt file: %v %q", err, b)
	}
	g, err := ReadGroundTruth(filepath.Join(dir, "truth", "prompt_3_assignment_chain.json"))
	if err != nil || !near(g.AttentionWeights, ps[3].Truth.AttentionWeights) || g.Args["seed"] == nil {
		t.Fatalf("ground truth: %v %+v", err, g)
	}
	// pandas reads the CSV: per prompt, the line count and the weight sum of the JSON.
	py := pyoracle.Python(t, "pandas")
	script := `import sys, pandas as pd
d = pd.read_csv(sys.argv[1])
g = d.groupby("prompt").agg(n=("line", "size"), w=("weight", "sum"))
print(g.loc["prompt_3_assignment_chain", "n"], repr(float(g.loc["prompt_3_assignment_chain", "w"])), len(g))`
	out, err := exec.Command(py, "-c", script, filepath.Join(dir, "truth", CSVName)).Output()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, w := range ps[3].Truth.AttentionWeights {
		sum += w
	}
	var n, groups int
	var pySum float64
	if _, err := fmt.Sscan(string(out), &n, &pySum, &groups); err != nil || n != 10 || groups != 6 || math.Abs(pySum-sum) > 1e-12 {
		t.Errorf("pandas: %q (want 10 lines, sum %v, 6 prompts): %v", out, sum, err)
	}
}
