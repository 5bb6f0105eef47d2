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
	"github.com/goccy/go-yaml/ast"

	"github.com/attnscope/attnscope/internal/strictyaml"
)

// Config is a followup-attention experiment file (exp_vXX.yaml). Creation reads
// input_data_folder, ground_truth_folder and prompt_creation_strategy; the other keys
// of the format are accepted and left to `attnscope run`.
type Config struct {
	InputDataFolder    string    `yaml:"input_data_folder"`
	GroundTruthFolder  string    `yaml:"ground_truth_folder"`
	PromptCreation     *Strategy `yaml:"prompt_creation_strategy"`
	OutputDataFolder   any       `yaml:"output_data_folder"`
	AnalysisDataFolder any       `yaml:"analysis_data_folder"`
	LocalModelFolder   any       `yaml:"local_model_folder"`
	StopSignalLine     any       `yaml:"stop_signal_line"`
	Models             any       `yaml:"models"`
	ModelName          any       `yaml:"model_name"`
	Generation         any       `yaml:"generation"`
	ExtractAttention   any       `yaml:"extract_attention"`
	Attention          any       `yaml:"attention"`
	SaveAttention      any       `yaml:"save_attention_matrix"`
	SaveRawOutput      any       `yaml:"save_raw_model_output"`
	AnalysisPasses     any       `yaml:"analysis_passes"`

	path string
	file *ast.File
}

// Strategy is prompt_creation_strategy.
type Strategy struct {
	Name           string         `yaml:"name"`
	Type           string         `yaml:"type"`
	AttentionLevel string         `yaml:"attention_level"`
	NPrompts       int            `yaml:"n_prompts"`
	Kwargs         map[string]any `yaml:"kwargs"`

	assignment *AssignmentChainArgs
	twoFuncs   *TwoFunctionsArgs
	gibberish  *GibberishArgs
}

// Strategy names.
const (
	AssignmentChain   = "assignment_chain"
	TwoFunctionsTest  = "two_functions_one_test"
	CompleteGibberish = "complete_gibberish"
)

// Strategies lists the strategy names Load accepts.
var Strategies = []string{AssignmentChain, TwoFunctionsTest, CompleteGibberish}

// Load reads and checks an experiment file; every error names the file and, where it
// can, the line.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse checks an experiment file's content (path names it in errors).
func Parse(path string, data []byte) (*Config, error) {
	c := &Config{}
	file, err := strictyaml.Decode(data, c)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	c.path, c.file = path, file
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// errf is an error at the YAML path p of the file.
func (c *Config) errf(p, format string, args ...any) error {
	where := c.path
	if l := strictyaml.Line(c.file, p); l > 0 {
		where = fmt.Sprintf("%s:%d", c.path, l)
	}
	return fmt.Errorf("%s: %s: %s", where, strings.TrimPrefix(p, "$."), fmt.Sprintf(format, args...))
}

func (c *Config) check() error {
	if c.InputDataFolder == "" {
		return fmt.Errorf("%s: input_data_folder: required (the folder the prompts are written to)", c.path)
	}
	s := c.PromptCreation
	if s == nil {
		return fmt.Errorf("%s: prompt_creation_strategy: required", c.path)
	}
	const sp = "$.prompt_creation_strategy"
	if !slices.Contains(Strategies, s.Name) {
		return c.errf(sp+".name", "unknown strategy %q (known: %s)", s.Name, strings.Join(Strategies, ", "))
	}
	if c.GroundTruthFolder == "" {
		return fmt.Errorf("%s: ground_truth_folder: required (the folder the ground truth is written to)", c.path)
	}
	if s.Name != CompleteGibberish && s.Type != "creator" {
		return c.errf(sp+".type", "must be creator for strategy %s, got %q", s.Name, s.Type)
	}
	if s.AttentionLevel == "" {
		s.AttentionLevel = "line"
	}
	if s.AttentionLevel != "line" {
		return c.errf(sp+".attention_level", "only line is implemented (as in the original), got %q", s.AttentionLevel)
	}
	if s.NPrompts < 1 {
		return c.errf(sp+".n_prompts", "must be at least 1, got %d", s.NPrompts)
	}
	switch s.Name {
	case AssignmentChain:
		s.assignment = &AssignmentChainArgs{}
		if err := c.kwargs(assignmentKeys, s.assignment); err != nil {
			return err
		}
		return c.checkAssignment(s.assignment)
	case TwoFunctionsTest:
		s.twoFuncs = &TwoFunctionsArgs{}
		if err := c.kwargs(twoFunctionsKeys, s.twoFuncs); err != nil {
			return err
		}
		return c.checkTwoFunctions(s.twoFuncs)
	default:
		s.gibberish = &GibberishArgs{}
		if err := c.kwargs(gibberishKeys, s.gibberish); err != nil {
			return err
		}
		return c.checkGibberish(s.gibberish)
	}
}

// kwargs decodes prompt_creation_strategy.kwargs into v, refusing keys not in known.
func (c *Config) kwargs(known []string, v any) error {
	const kp = "$.prompt_creation_strategy.kwargs"
	keys := make([]string, 0, len(c.PromptCreation.Kwargs))
	for k := range c.PromptCreation.Kwargs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(known, k) {
			return c.errf(kp+"."+k, "unknown key for strategy %s (known: %s)", c.PromptCreation.Name, strings.Join(known, ", "))
		}
	}
	b, err := yaml.Marshal(c.PromptCreation.Kwargs)
	if err != nil {
		return c.errf(kp, "%v", err)
	}
	if err := yaml.NewDecoder(bytes.NewReader(b), yaml.Strict()).Decode(v); err != nil {
		return c.errf(kp, "%s", strings.TrimSpace(yaml.FormatError(err, false, false)))
	}
	if seedField(v) == nil {
		return c.errf(kp, "seed: required (generation is seeded so that it can be reproduced)")
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

func (c *Config) checkAssignment(a *AssignmentChainArgs) error {
	const kp = "$.prompt_creation_strategy.kwargs."
	switch {
	case a.NAssignments < 1:
		return c.errf(kp+"n_assignments", "must be at least 1, got %d", a.NAssignments)
	case a.NArithmeticOps < 1:
		return c.errf(kp+"n_arithmetic_ops", "must be at least 1 (the query picks a derived variable), got %d", a.NArithmeticOps)
	case a.InitMinIntValue > a.InitMaxIntValue:
		return c.errf(kp+"init_max_int_value", "must be at least init_min_int_value (%d), got %d", a.InitMinIntValue, a.InitMaxIntValue)
	case a.DistanceFn != "naive":
		return c.errf(kp+"distance_fn", "only naive is defined (as in the original), got %q", a.DistanceFn)
	case strings.Contains(a.CustomPrompt, "\n"):
		return c.errf(kp+"custom_prompt", "must be one line (each statement is one line of the ground truth)")
	case !strings.Contains(a.CustomPrompt, "<RELEVANT_VARIABLE>"):
		return c.errf(kp+"custom_prompt", "must contain <RELEVANT_VARIABLE>, got %q", a.CustomPrompt)
	case len(a.ArithmeticOps) == 0:
		return c.errf(kp+"arithmetic_ops", "must list at least one {symbol, min_n_args, max_n_args}")
	}
	for i, op := range a.ArithmeticOps {
		p := fmt.Sprintf("%sarithmetic_ops[%d]", kp, i)
		if op.Symbol == "" || op.MinNArgs < 1 || op.MaxNArgs < op.MinNArgs {
			return c.errf(p, "needs a symbol and 1 <= min_n_args <= max_n_args, got %+v", op)
		}
	}
	if a.MaxLevelOfDepth == 0 {
		a.MaxLevelOfDepth = 10
	}
	if a.MaxLevelOfDepth < 2 {
		return c.errf(kp+"max_level_of_depth", "must be at least 2, got %d", a.MaxLevelOfDepth)
	}
	return nil
}

func (c *Config) checkTwoFunctions(a *TwoFunctionsArgs) error {
	const kp = "$.prompt_creation_strategy.kwargs."
	if a.StartOfTestStatement == "" {
		return c.errf(kp+"start_of_test_statement", "required (the line prefix where each file's test starts)")
	}
	if st, err := os.Stat(a.FolderWithSeedFunction); err != nil || !st.IsDir() {
		return c.errf(kp+"folder_with_seed_functions", "%q is not a folder", a.FolderWithSeedFunction)
	}
	return nil
}

func (c *Config) checkGibberish(g *GibberishArgs) error {
	const kp = "$.prompt_creation_strategy.kwargs."
	g.defaults()
	switch {
	case *g.MaxLines < 2:
		return c.errf(kp+"max_lines", "must be at least 2, got %d", *g.MaxLines)
	case *g.MaxCharPerLine < 2:
		return c.errf(kp+"max_char_per_line", "must be at least 2, got %d", *g.MaxCharPerLine)
	case *g.MaxTokenLength < 1:
		return c.errf(kp+"max_token_length", "must be at least 1, got %d", *g.MaxTokenLength)
	case *g.MaxTokenLength == 1 && !(*g.SpaceProbability > 0):
		return c.errf(kp+"space_probability", "must be above 0 when max_token_length is 1 (tokens would all be empty and a line would never fill)")
	case len(*g.AllowedCharacters) == 0 || strings.ContainsAny(*g.AllowedCharacters, "\n\r"):
		return c.errf(kp+"allowed_characters", "must be a non-empty string without line breaks")
	}
	return nil
}
