// Package followup creates followup-attention's synthetic prompts with their ground
// truth (attwizard/creators and attwizard/script/experiment_creation.py of
// github.com/githubnext/followup-attention): assignment chains whose line weights follow
// the dependency tree of the queried variable, two functions and the test of one of
// them, and gibberish. Generation draws from a port of Python's random in the
// original's order, so a seed gives the original's prompts.
package followup

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
)

// Strategy is prompt_creation_strategy of a followup-attention experiment file
// (exp_vXX.yaml, parsed by package experiment): which creator makes the prompts,
// how many, and the creator's kwargs. Check it before Create.
type Strategy struct {
	Name           string         `yaml:"name"`
	Type           string         `yaml:"type"`
	AttentionLevel string         `yaml:"attention_level"`
	NPrompts       int            `yaml:"n_prompts"`
	Kwargs         map[string]any `yaml:"kwargs"`

	assignment *AssignmentChainArgs
	twoFuncs   *TwoFunctionsArgs
	gibberish  *GibberishArgs
	errf       Errorf // Check's, for Create's errors
}

// Errorf makes an error at keyPath, a key of the strategy relative to it ("" for the
// strategy itself, "n_prompts", "kwargs.arithmetic_ops[1]"): the experiment file's
// parser names the file, the line and the key.
type Errorf func(keyPath, format string, args ...any) error

// Strategy names.
const (
	AssignmentChain   = "assignment_chain"
	TwoFunctionsTest  = "two_functions_one_test"
	CompleteGibberish = "complete_gibberish"
)

// Strategies lists the strategy names Load accepts.
var Strategies = []string{AssignmentChain, TwoFunctionsTest, CompleteGibberish}

// Check checks the strategy and its kwargs, fills the defaults and reports the first
// problem through errf.
func (s *Strategy) Check(errf Errorf) error {
	s.errf = errf
	if !slices.Contains(Strategies, s.Name) {
		return errf("name", "unknown strategy %q (known: %s)", s.Name, strings.Join(Strategies, ", "))
	}
	if s.Name != CompleteGibberish && s.Type != "creator" {
		return errf("type", "must be creator for strategy %s, got %q", s.Name, s.Type)
	}
	if s.AttentionLevel == "" {
		s.AttentionLevel = "line"
	}
	if s.AttentionLevel != "line" {
		return errf("attention_level", "only line is implemented (as in the original), got %q", s.AttentionLevel)
	}
	if s.NPrompts < 1 {
		return errf("n_prompts", "must be at least 1, got %d", s.NPrompts)
	}
	switch s.Name {
	case AssignmentChain:
		s.assignment = &AssignmentChainArgs{}
		if err := s.kwargs(assignmentKeys, s.assignment); err != nil {
			return err
		}
		return checkAssignment(s.assignment, errf)
	case TwoFunctionsTest:
		s.twoFuncs = &TwoFunctionsArgs{}
		if err := s.kwargs(twoFunctionsKeys, s.twoFuncs); err != nil {
			return err
		}
		return checkTwoFunctions(s.twoFuncs, errf)
	default:
		s.gibberish = &GibberishArgs{}
		if err := s.kwargs(gibberishKeys, s.gibberish); err != nil {
			return err
		}
		return checkGibberish(s.gibberish, errf)
	}
}

// kwargs decodes prompt_creation_strategy.kwargs into v, refusing keys not in known.
func (s *Strategy) kwargs(known []string, v any) error {
	const kp = "kwargs"
	keys := make([]string, 0, len(s.Kwargs))
	for k := range s.Kwargs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(known, k) {
			return s.errf(kp+"."+k, "unknown key for strategy %s (known: %s)", s.Name, strings.Join(known, ", "))
		}
	}
	b, err := yaml.Marshal(s.Kwargs)
	if err != nil {
		return s.errf(kp, "%v", err)
	}
	if err := yaml.NewDecoder(bytes.NewReader(b), yaml.Strict()).Decode(v); err != nil {
		return s.errf(kp, "%s", strings.TrimSpace(yaml.FormatError(err, false, false)))
	}
	if seedField(v) == nil {
		return s.errf(kp, "seed: required (generation is seeded so that it can be reproduced)")
	}
	return nil
}

func seedField(v any) *int64 {
	switch a := v.(type) {
	case *AssignmentChainArgs:
		return a.Seed
	case *TwoFunctionsArgs:
		return a.Seed
	case *GibberishArgs:
		return a.Seed
	}
	return nil
}

func checkAssignment(a *AssignmentChainArgs, errf Errorf) error {
	const kp = "kwargs."
	switch {
	case a.NAssignments < 1:
		return errf(kp+"n_assignments", "must be at least 1, got %d", a.NAssignments)
	case a.NArithmeticOps < 1:
		return errf(kp+"n_arithmetic_ops", "must be at least 1 (the query picks a derived variable), got %d", a.NArithmeticOps)
	case a.InitMinIntValue > a.InitMaxIntValue:
		return errf(kp+"init_max_int_value", "must be at least init_min_int_value (%d), got %d", a.InitMinIntValue, a.InitMaxIntValue)
	case a.DistanceFn != "naive":
		return errf(kp+"distance_fn", "only naive is defined (as in the original), got %q", a.DistanceFn)
	case strings.Contains(a.CustomPrompt, "\n"):
		return errf(kp+"custom_prompt", "must be one line (each statement is one line of the ground truth)")
	case !strings.Contains(a.CustomPrompt, "<RELEVANT_VARIABLE>"):
		return errf(kp+"custom_prompt", "must contain <RELEVANT_VARIABLE>, got %q", a.CustomPrompt)
	case len(a.ArithmeticOps) == 0:
		return errf(kp+"arithmetic_ops", "must list at least one {symbol, min_n_args, max_n_args}")
	}
	for i, op := range a.ArithmeticOps {
		p := fmt.Sprintf("%sarithmetic_ops[%d]", kp, i)
		if op.Symbol == "" || op.MinNArgs < 1 || op.MaxNArgs < op.MinNArgs {
			return errf(p, "needs a symbol and 1 <= min_n_args <= max_n_args, got %+v", op)
		}
	}
	if a.MaxLevelOfDepth == 0 {
		a.MaxLevelOfDepth = 10
	}
	if a.MaxLevelOfDepth < 2 {
		return errf(kp+"max_level_of_depth", "must be at least 2, got %d", a.MaxLevelOfDepth)
	}
	return nil
}

func checkTwoFunctions(a *TwoFunctionsArgs, errf Errorf) error {
	const kp = "kwargs."
	if a.StartOfTestStatement == "" {
		return errf(kp+"start_of_test_statement", "required (the line prefix where each file's test starts)")
	}
	if st, err := os.Stat(a.FolderWithSeedFunction); err != nil || !st.IsDir() {
		return errf(kp+"folder_with_seed_functions", "%q is not a folder", a.FolderWithSeedFunction)
	}
	return nil
}

func checkGibberish(g *GibberishArgs, errf Errorf) error {
	const kp = "kwargs."
	g.defaults()
	switch {
	case *g.MaxLines < 2:
		return errf(kp+"max_lines", "must be at least 2, got %d", *g.MaxLines)
	case *g.MaxCharPerLine < 2:
		return errf(kp+"max_char_per_line", "must be at least 2, got %d", *g.MaxCharPerLine)
	case *g.MaxTokenLength < 1:
		return errf(kp+"max_token_length", "must be at least 1, got %d", *g.MaxTokenLength)
	case *g.MaxTokenLength == 1 && !(*g.SpaceProbability > 0):
		return errf(kp+"space_probability", "must be above 0 when max_token_length is 1 (tokens would all be empty and a line would never fill)")
	case len(*g.AllowedCharacters) == 0 || strings.ContainsAny(*g.AllowedCharacters, "\n\r"):
		return errf(kp+"allowed_characters", "must be a non-empty string without line breaks")
	}
	return nil
}
