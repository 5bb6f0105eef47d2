// Package experiment runs followup-attention's experiment files (exp_vXX.yaml) as
// they are: the prompts of a folder, cut after the stop-signal line, are continued
// by each model of the file n_queries times (capture with generation), the attention
// is reduced as the file says, and the ordered analysis passes run through derive.
// Results go to an attnscope run folder per model and, on request, also to the
// original's output layout (metadata/<stem>.json, att_tensor/<stem>.npy,
// generated_sequence/<stem>.txt, <pass>/<stem>.npy) so that its notebooks read them.
//
// Source: githubnext/followup-attention, attwizard/script/batch_attention_extraction.py
// (queryextract), attwizard/analysis_pass/analyzer.py (deriveall, getanswers) and
// attwizard/decoder.py (attention assembly, reducers, more_weight_to_recent);
// Paltenghi et al., "Follow-up Attention: An Empirical Study of Developer and Neural
// Model Code Exploration" (2022).
package experiment

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/attnscope/attnscope/internal/strictyaml"
	"github.com/attnscope/attnscope/tasks/followup"
)

// Config is an experiment file, exp_vXX.yaml: every key the original reads or ships.
// It is the one parser of the format: `attnscope run` (Load, Parse) and
// `attnscope tasks create` (LoadCreation, ParseCreation) both read it.
type Config struct {
	InputDataFolder    string `yaml:"input_data_folder"`
	GroundTruthFolder  string `yaml:"ground_truth_folder"`
	OutputDataFolder   string `yaml:"output_data_folder"`
	AnalysisDataFolder string `yaml:"analysis_data_folder"`
	LocalModelFolder   string `yaml:"local_model_folder"`
	// StopSignalLine cuts each prompt after the first line containing it (that line
	// kept); nil (YAML null or absent) keeps the whole file.
	StopSignalLine *string  `yaml:"stop_signal_line"`
	Models         []string `yaml:"models"`
	// PromptCreationStrategy configures the synthetic prompt creators (tasks create,
	// checked by ParseCreation); queryextract ignores it, as the original does for
	// exp_v08/v10, so Parse only decodes it.
	PromptCreationStrategy *followup.Strategy `yaml:"prompt_creation_strategy"`
	Generation             Generation         `yaml:"generation"`
	ExtractAttention       *bool              `yaml:"extract_attention"`
	Attention              Attention          `yaml:"attention"`
	SaveAttentionMatrix    *bool              `yaml:"save_attention_matrix"`
	SaveRawModelOutput     bool               `yaml:"save_raw_model_output"`
	AnalysisPasses         []AnalysisPass     `yaml:"analysis_passes"`

	path  string    // the file, for error messages
	file  *ast.File // its syntax tree, for lines
	plain any       // the rendered file decoded as plain YAML (metadata's config_options)
}

// Generation are the sampling settings: number_of_tokens new tokens (-1: until the
// end-of-sequence token or the model's context is full), at most max_time_in_seconds
// per generation (-1: no limit), temperature, and n_queries tries per prompt with the
// seed of try i equal to i (the original's torch.manual_seed(i_try)).
type Generation struct {
	NumberOfTokens   *int     `yaml:"number_of_tokens"`
	MaxTimeInSeconds *float64 `yaml:"max_time_in_seconds"`
	Temperature      *float64 `yaml:"temperature"`
	NQueries         *int     `yaml:"n_queries"`
}

// Attention holds the reducers of the stored attention tensor.
type Attention struct {
	StrategyReduceHead  string `yaml:"strategy_reduce_head"`
	StrategyReduceLayer string `yaml:"strategy_reduce_layer"`
	// StrategyNormalizeTokens is "more_weight_to_recent" or off ("None", null, "").
	StrategyNormalizeTokens *string `yaml:"strategy_normalize_tokens"`
}

// AnalysisPass is one entry of analysis_passes.
type AnalysisPass struct {
	Name         string         `yaml:"name"`
	InputFolder  *string        `yaml:"input_folder"`
	FunctionName string         `yaml:"function_name"`
	Kwargs       map[string]any `yaml:"kwargs"`
	PassMetadata bool           `yaml:"pass_metadata"`
}

// Path returns the experiment file's path.
func (c *Config) Path() string { return c.path }

// Normalize reports the token normalisation ("" when off).
func (a Attention) Normalize() string {
	if a.StrategyNormalizeTokens == nil || *a.StrategyNormalizeTokens == "None" {
		return ""
	}
	return *a.StrategyNormalizeTokens
}

// Reducers are the values of strategy_reduce_head and strategy_reduce_layer.
var Reducers = []string{"min", "max", "mean", "sum", "keep"}

var posRE = regexp.MustCompile(`(?s)^\[(\d+):(\d+)\] (.*)$`)

var placeholderRE = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_]+)\s*\}\}`)

// Render replaces every {{name}} of data with vars[name], as the original's shell
// scripts do with sed. A placeholder without a value is an error naming the file and
// line, except in comment lines, which are left as they are.
func Render(path string, data []byte, vars map[string]string) ([]byte, error) {
	lines := strings.SplitAfter(string(data), "\n")
	var missing []string
	for i, line := range lines {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		lines[i] = placeholderRE.ReplaceAllStringFunc(line, func(m string) string {
			name := placeholderRE.FindStringSubmatch(m)[1]
			v, ok := vars[name]
			if !ok {
				missing = append(missing, fmt.Sprintf("%s:%d: placeholder {{%s}} has no value (give it with --set %s=VALUE)", path, i+1, name, name))
				return m
			}
			return v
		})
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(missing, "\n"))
	}
	return []byte(strings.Join(lines, "")), nil
}

// Load reads an experiment file, renders its placeholders from vars and checks it
// for a run (see Parse).
func Load(path string, vars map[string]string) (*Config, error) {
	return load(path, vars, Parse)
}

// LoadCreation reads an experiment file, renders its placeholders from vars and
// checks it for prompt creation (see ParseCreation).
func LoadCreation(path string, vars map[string]string) (*Config, error) {
	return load(path, vars, ParseCreation)
}

func load(path string, vars map[string]string, parse func(string, []byte) (*Config, error)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read experiment file: %w", err)
	}
	data, err = Render(path, data, vars)
	if err != nil {
		return nil, err
	}
	return parse(path, data)
}

// Parse decodes a rendered experiment file strictly (an unknown key is an error with
// its line) and checks its values for a run; errors name the file, line and key.
func Parse(path string, data []byte) (*Config, error) {
	c, err := decode(path, data)
	if err != nil {
		return nil, err
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// ParseCreation decodes a rendered experiment file as Parse does and checks what
// prompt creation reads: input_data_folder, ground_truth_folder and
// prompt_creation_strategy (followup.Strategy.Check); the run's keys may be absent.
func ParseCreation(path string, data []byte) (*Config, error) {
	c, err := decode(path, data)
	if err != nil {
		return nil, err
	}
	s := c.PromptCreationStrategy
	switch {
	case c.InputDataFolder == "":
		return nil, c.keyErr("input_data_folder", "required (the folder the prompts are written to)")
	case s == nil:
		return nil, c.keyErr("prompt_creation_strategy", "required (the creator of the prompts: name %s; n_prompts; kwargs)", strings.Join(followup.Strategies, ", "))
	case c.GroundTruthFolder == "":
		return nil, c.keyErr("ground_truth_folder", "required (the folder the ground truth is written to)")
	}
	err = s.Check(func(p, format string, a ...any) error {
		return c.keyErr(strings.TrimSuffix("prompt_creation_strategy."+p, "."), format, a...)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

func decode(path string, data []byte) (*Config, error) {
	var c Config
	file, err := strictyaml.Decode(data, &c)
	if err != nil {
		// go-yaml reports "[line:column] message".
		if m := posRE.FindStringSubmatch(err.Error()); m != nil {
			return nil, fmt.Errorf("%s:%s: %s (column %s)", path, m[1], m[3], m[2])
		}
		return nil, fmt.Errorf("%s: %s", path, err)
	}
	c.path, c.file = path, file
	if err := yaml.Unmarshal(data, &c.plain); err != nil {
		return nil, fmt.Errorf("%s: %s", path, err)
	}
	return &c, nil
}

// keyErr formats an error at key (a dotted key such as "a.b[1].c"), naming the file,
// the key's line where it has one, and the key.
func (c *Config) keyErr(key, format string, a ...any) error {
	where := c.path
	if l := c.line("$." + key); l > 0 {
		where = fmt.Sprintf("%s:%d", c.path, l)
	}
	return fmt.Errorf("%s: %s: %s", where, key, fmt.Sprintf(format, a...))
}

// errAt formats an error at the YAML path's line.
func (c *Config) errAt(ypath, format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	if l := strictyaml.Line(c.file, ypath); l > 0 {
		return fmt.Errorf("%s:%d: %s", c.path, l, msg)
	}
	return fmt.Errorf("%s: %s", c.path, msg)
}

// line returns the line of a YAML path (0 if unknown).
func (c *Config) line(ypath string) int { return strictyaml.Line(c.file, ypath) }

func (c *Config) check() error {
	if c.InputDataFolder == "" {
		return c.errAt("$", "input_data_folder is missing (want the folder of prompt files)")
	}
	if c.OutputDataFolder == "" {
		return c.errAt("$", "output_data_folder is missing (want the output folder)")
	}
	if c.AnalysisDataFolder == "" {
		c.AnalysisDataFolder = c.OutputDataFolder
	}
	if len(c.Models) == 0 {
		return c.errAt("$", "models is missing or empty (want a list of model names)")
	}
	for i, m := range c.Models {
		if m == "" || strings.Contains(m, "..") {
			return c.errAt(fmt.Sprintf("$.models[%d]", i), "models[%d] %q is not a model name (org/name)", i, m)
		}
	}
	g := c.Generation
	switch {
	case g.NumberOfTokens == nil:
		return c.errAt("$.generation", "generation.number_of_tokens is missing (want a positive number, or -1 for open-ended generation)")
	case *g.NumberOfTokens == 0 || *g.NumberOfTokens < -1:
		return c.errAt("$.generation.number_of_tokens", "generation.number_of_tokens is %d; want a positive number, or -1 for open-ended generation", *g.NumberOfTokens)
	case g.NQueries != nil && *g.NQueries < 1:
		return c.errAt("$.generation.n_queries", "generation.n_queries is %d; want at least 1", *g.NQueries)
	case g.Temperature != nil && *g.Temperature <= 0:
		return c.errAt("$.generation.temperature", "generation.temperature is %g; want a positive number (generation always samples)", *g.Temperature)
	case g.MaxTimeInSeconds != nil && *g.MaxTimeInSeconds <= 0 && *g.MaxTimeInSeconds != -1:
		return c.errAt("$.generation.max_time_in_seconds", "generation.max_time_in_seconds is %g; want a positive number, or -1 for no limit", *g.MaxTimeInSeconds)
	}
	a := &c.Attention
	for _, r := range []struct {
		key string
		v   *string
	}{{"strategy_reduce_head", &a.StrategyReduceHead}, {"strategy_reduce_layer", &a.StrategyReduceLayer}} {
		if *r.v == "" {
			*r.v = "keep"
		}
		if !contains(Reducers, *r.v) {
			return c.errAt("$.attention."+r.key, "attention.%s is %q; want one of %s", r.key, *r.v, strings.Join(Reducers, ", "))
		}
	}
	if n := a.Normalize(); n != "" && n != "more_weight_to_recent" {
		return c.errAt("$.attention.strategy_normalize_tokens", "attention.strategy_normalize_tokens is %q; want more_weight_to_recent or None", n)
	}
	if c.SaveRawModelOutput {
		return c.errAt("$.save_raw_model_output", "save_raw_model_output: true asks for PyTorch's raw generate() output (.pt), which attnscope cannot write; set it to false (the run folder keeps every attention matrix)")
	}
	return c.checkPasses()
}

func (c *Config) checkPasses() error {
	seen := map[string]int{}
	for i, p := range c.AnalysisPasses {
		at := fmt.Sprintf("$.analysis_passes[%d]", i)
		switch {
		case p.Name == "":
			return c.errAt(at, "analysis pass %d has no name", i+1)
		case p.FunctionName == "":
			return c.errAt(at, "analysis pass %q has no function_name", p.Name)
		case p.InputFolder == nil || *p.InputFolder == "":
			return c.errAt(at, "analysis pass %q has no input_folder (the output folder itself holds no inputs; want att_tensor, metadata or an earlier pass's name)", p.Name)
		case p.Name == "att_tensor" || p.Name == "metadata" || p.Name == "generated_sequence" || p.Name == "answers":
			return c.errAt(at+".name", "analysis pass name %q is a folder of the output layout; choose another name", p.Name)
		}
		if j, dup := seen[p.Name]; dup {
			return c.errAt(at+".name", "analysis pass name %q is used twice (passes %d and %d)", p.Name, j+1, i+1)
		}
		seen[p.Name] = i
	}
	return nil
}

// Plain returns the rendered experiment file decoded as plain YAML (the original's
// config_options).
func (c *Config) Plain() any { return c.plain }

// NumberOfTokens returns generation.number_of_tokens (-1: open-ended).
func (c *Config) NumberOfTokens() int { return *c.Generation.NumberOfTokens }

// NQueries returns generation.n_queries (1 when absent).
func (c *Config) NQueries() int {
	if c.Generation.NQueries == nil {
		return 1
	}
	return *c.Generation.NQueries
}

// Temperature returns generation.temperature (1 when absent).
func (c *Config) Temperature() float64 {
	if c.Generation.Temperature == nil {
		return 1
	}
	return *c.Generation.Temperature
}

// MaxTimeSeconds returns generation.max_time_in_seconds (0: no limit).
func (c *Config) MaxTimeSeconds() float64 {
	if t := c.Generation.MaxTimeInSeconds; t != nil && *t > 0 {
		return *t
	}
	return 0
}

// SaveAttention reports save_attention_matrix (true when absent).
func (c *Config) SaveAttention() bool { return c.SaveAttentionMatrix == nil || *c.SaveAttentionMatrix }

// ParseSets turns --set NAME=VALUE arguments into placeholder values.
func ParseSets(sets []string) (map[string]string, error) {
	vars := map[string]string{}
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok || !regexp.MustCompile(`^[A-Za-z0-9_]+$`).MatchString(k) {
			return nil, fmt.Errorf("--set %q: want NAME=VALUE with NAME of letters, digits and _", s)
		}
		vars[k] = v
	}
	return vars, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
