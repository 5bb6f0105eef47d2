package followup

import (
	"strings"
	"testing"
)

// Strategy.Check never panics on a decoded strategy, and what it accepts can be
// created without panics (experiment's FuzzParseCreation fuzzes the whole file).
func FuzzStrategy(f *testing.F) {
	f.Add(strings.Replace(chainYAML, "EXTRA", "", 1))
	f.Add("input_data_folder: p\nground_truth_folder: g\nprompt_creation_strategy:\n  name: complete_gibberish\n  n_prompts: 2\n  kwargs: {seed: 1, max_lines: 3}\n")
	f.Add("prompt_creation_strategy: {name: assignment_chain, kwargs: [1, 2]}\n")
	f.Add("input_data_folder: [\n")
	f.Fuzz(func(t *testing.T, data string) {
		c, err := parseStrategy("f.yaml", []byte(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if c.Name == TwoFunctionsTest || c.NPrompts > 50 {
			return // reads a folder; or too slow for a fuzz iteration
		}
		if a := c.assignment; a != nil && (a.NAssignments > 50 || a.NArithmeticOps > 50) {
			return
		}
		if g := c.gibberish; g != nil && (*g.MaxLines > 200 || *g.MaxCharPerLine > 2000 || *g.MaxTokenLength > 1000) {
			return
		}
		Create(c)
	})
}
