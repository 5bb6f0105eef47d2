package experiment

import (
	"os"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/tasks/followup"
)

// FuzzParse feeds experiment files to Render, Parse and DerivePasses: any input gives
// a config or an error naming the file, never a panic.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile(shippedPath()); err == nil {
		f.Add(string(b))
	}
	f.Add("input_data_folder: p\noutput_data_folder: o\nmodels: [m]\ngeneration: {number_of_tokens: -1}\nanalysis_passes:\n  - {name: a, input_folder: att_tensor, function_name: compute_naive_max_aggregation}\n")
	f.Add("models: [{{x}}]\n")
	f.Add("attention: {strategy_reduce_head: max, strategy_normalize_tokens: more_weight_to_recent}\n")
	reg := Registry()
	f.Fuzz(func(t *testing.T, src string) {
		data, err := Render("exp.yaml", []byte(src), shippedVars)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "exp.yaml:") {
				t.Fatalf("render error %q does not name the file", err)
			}
			return
		}
		c, err := Parse("exp.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "exp.yaml") {
				t.Fatalf("parse error %q does not name the file", err)
			}
			return
		}
		if _, err := c.DerivePasses(reg); err != nil && !strings.HasPrefix(err.Error(), "exp.yaml") {
			t.Fatalf("passes error %q does not name the file", err)
		}
	})
}

func writeString(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }

// FuzzParseCreation: any experiment file gives a checked strategy or an error naming
// the file, never a panic; a small accepted strategy is created without panics.
func FuzzParseCreation(f *testing.F) {
	f.Add(chainYAML)
	f.Add("input_data_folder: p\nground_truth_folder: g\nprompt_creation_strategy:\n  name: complete_gibberish\n  n_prompts: 2\n  kwargs: {seed: 1, max_lines: 3}\n")
	f.Add("prompt_creation_strategy: {name: assignment_chain, kwargs: [1, 2]}\n")
	f.Add("input_data_folder: [\n")
	f.Fuzz(func(t *testing.T, data string) {
		c, err := ParseCreation("f.yaml", []byte(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if s := c.PromptCreationStrategy; s.Name == followup.CompleteGibberish && s.NPrompts <= 5 && len(data) < 300 {
			followup.Create(s)
		}
	})
}
