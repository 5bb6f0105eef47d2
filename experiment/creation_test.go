package experiment

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/tasks/followup"
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
`

// ParseCreation's errors name the file, the line and the key of the strategy.
func TestParseCreationErrors(t *testing.T) {
	base := chainYAML
	for _, c := range []struct{ yaml, want string }{
		{base + "colour: red\n", "exp.yaml:22: unknown field \"colour\""},
		{strings.Replace(base, "    seed: 42\n", "    seed: 42\n    n_assignment: 3\n", 1), "exp.yaml:12: prompt_creation_strategy.kwargs.n_assignment: unknown key for strategy assignment_chain"},
		{strings.Replace(base, "    seed: 42\n", "", 1), "exp.yaml:11: prompt_creation_strategy.kwargs: seed: required"},
		{strings.Replace(base, "n_prompts: 6", "n_prompts: 0", 1), "exp.yaml:9: prompt_creation_strategy.n_prompts: must be at least 1"},
		{strings.Replace(base, "name: assignment_chain", "name: chains", 1), "exp.yaml:6: prompt_creation_strategy.name: unknown strategy \"chains\""},
		{strings.Replace(base, "distance_fn: naive", "distance_fn: exp", 1), "exp.yaml:17: prompt_creation_strategy.kwargs.distance_fn: only naive"},
		{strings.Replace(base, "min_n_args: 2, max_n_args: 3", "min_n_args: 3, max_n_args: 2", 1), "exp.yaml:21: prompt_creation_strategy.kwargs.arithmetic_ops[1]: needs a symbol"},
		{strings.Replace(base, "ground_truth_folder: TRUTH\n", "", 1), "exp.yaml: ground_truth_folder: required"},
		{strings.Replace(base, "input_data_folder: PROMPTS\n", "", 1), "exp.yaml: input_data_folder: required"},
		{strings.Replace(base, "n_assignments: 4", "n_assignments: four", 1), "exp.yaml:11: prompt_creation_strategy.kwargs: "},
		{strings.Replace(base, "attention_level: line", "attention_level: token", 1), "exp.yaml:8: prompt_creation_strategy.attention_level: only line"},
		{strings.Replace(base, "  n_prompts: 6\n", "  n_prompts: six\n", 1), "exp.yaml:9: "},
		{base[:strings.Index(base, "prompt_creation_strategy:")], "exp.yaml: prompt_creation_strategy: required"},
	} {
		_, err := ParseCreation("exp.yaml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want one containing %q", err, c.want)
		}
	}
}

// tasks create reads the run's keys with the run's types, but needs none of them;
// attnscope run decodes prompt_creation_strategy and ignores its values.
func TestParseCreationAndRun(t *testing.T) {
	c, err := ParseCreation("exp.yaml", []byte(chainYAML))
	if err != nil {
		t.Fatal(err)
	}
	s := c.PromptCreationStrategy
	if s.Name != followup.AssignmentChain || s.NPrompts != 6 || c.InputDataFolder != "PROMPTS" || c.GroundTruthFolder != "TRUTH" {
		t.Fatalf("parsed %+v", c)
	}
	ps, err := followup.Create(s)
	if err != nil || len(ps) != 6 {
		t.Fatalf("create: %d prompts, %v", len(ps), err)
	}
	if _, err := ParseCreation("exp.yaml", []byte(strings.Replace(chainYAML, "models: [Salesforce/codegen-350M-mono]", "models: {a: 1}", 1))); err == nil || !strings.HasPrefix(err.Error(), "exp.yaml:4:") {
		t.Errorf("models of the wrong type: %v, want an error at exp.yaml:4", err)
	}
	run := strings.Replace(chainYAML, "n_prompts: 6", "n_prompts: 0", 1) + "generation: {number_of_tokens: 5}\n"
	if _, err := Parse("exp.yaml", []byte(run)); err != nil {
		t.Errorf("run refused a strategy it ignores: %v", err)
	}
	if _, err := Parse("exp.yaml", []byte(chainYAML)); err == nil || !strings.Contains(err.Error(), "number_of_tokens is missing") {
		t.Errorf("run without generation: %v", err)
	}
}

// LoadCreation renders placeholders as Load does.
func TestLoadCreationPlaceholders(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "exp.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(chainYAML, "PROMPTS", "{{where}}/prompts", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCreation(path, nil); err == nil || !strings.Contains(err.Error(), path+":1: placeholder {{where}} has no value") {
		t.Errorf("missing placeholder: %v", err)
	}
	c, err := LoadCreation(path, map[string]string{"where": dir})
	if err != nil || c.InputDataFolder != dir+"/prompts" {
		t.Fatalf("%v %+v", err, c)
	}
}
