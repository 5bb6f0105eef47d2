package derive

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/attnscope/attnscope/store"
	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Input names with a fixed meaning; any other input names an earlier pass.
const (
	InputAttention = "attention"
	InputMetadata  = "metadata"
)

// Config is a derive configuration: an ordered list of analysis passes, in the spirit
// of followup-attention's analysis_passes (spec seeds.md §1.3).
//
//	passes:
//	  - name: rollout            # output folder RUN/derived/rollout/
//	    input: attention         # attention | metadata | an earlier pass's name
//	    function: compute_attention_rollout_from_tensor
//	    kwargs: {}               # the function's keyword arguments
//
// An input that is neither attention, metadata nor a pass of the config names a pass
// whose outputs the run folder already holds (the original's input_folder: any folder
// of the output), e.g. an earlier derive's pass or a human run's follow-up matrix
// (attnscope human); its axes are read from its pass.json when derive starts
// (ResolveRunInputs).
type Config struct {
	Passes []PassConfig `yaml:"passes"`

	name string // the config file, for error messages
}

// PassConfig is one pass of a Config.
type PassConfig struct {
	Name     string         `yaml:"name"`
	Input    string         `yaml:"input"`
	Function string         `yaml:"function"`
	Kwargs   map[string]any `yaml:"kwargs"`

	// Set by LoadConfig / ParseConfig.
	spec   *Spec
	kwargs Kwargs
	axes   []store.Axis
	line   int
	// fromRun: the input is a pass of the run folder, not of the config; its axes (and
	// those of the passes reading this one) are known after ResolveRunInputs.
	fromRun  bool
	resolved bool
}

// Spec returns the function spec the pass resolved to.
func (p *PassConfig) Spec() *Spec { return p.spec }

// Args returns the pass's checked keyword arguments with defaults filled in.
func (p *PassConfig) Args() Kwargs { return p.kwargs }

// Axes returns the axes of the pass's outputs, as its function declares them for its
// input and kwargs (recorded in pass.json).
func (p *PassConfig) Axes() []store.Axis { return p.axes }

var passNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.+-]*$`)

// LoadConfig reads and checks a derive config file against reg.
func LoadConfig(path string, reg *Registry) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read derive config: %w", err)
	}
	return ParseConfig(path, data, reg)
}

// ParseConfig decodes a derive config strictly (an unknown key is an error) and checks
// every pass: a unique folder-safe name, an input that is attention, metadata or an
// earlier pass, a registered function that accepts that input, and known keyword
// arguments of the right types. Errors name the file and line.
func ParseConfig(name string, data []byte, reg *Registry) (*Config, error) {
	var cfg Config
	file, err := decodeYAML(data, &cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", name, err)
	}
	lineOf := func(path string) int {
		p, err := yaml.PathString(path)
		if err != nil {
			return 0
		}
		n, err := p.FilterFile(file)
		if err != nil || n == nil || n.GetToken() == nil {
			return 0
		}
		return n.GetToken().Position.Line
	}
	errAt := func(path, format string, a ...any) error {
		msg := fmt.Sprintf(format, a...)
		if l := lineOf(path); l > 0 {
			return fmt.Errorf("%s:%d: %s", name, l, msg)
		}
		return fmt.Errorf("%s: %s", name, msg)
	}
	if len(cfg.Passes) == 0 {
		return nil, fmt.Errorf("%s: no passes (want a list under the key \"passes\")", name)
	}
	cfg.name = name
	seen := map[string]int{}
	later := map[string]bool{}
	for _, p := range cfg.Passes {
		later[p.Name] = true
	}
	for i := range cfg.Passes {
		p := &cfg.Passes[i]
		at := fmt.Sprintf("$.passes[%d]", i)
		p.line = lineOf(at)
		switch {
		case p.Name == "":
			return nil, errAt(at, "pass %d has no name", i+1)
		case !passNameRE.MatchString(p.Name) || p.Name == InputAttention || p.Name == InputMetadata:
			return nil, errAt(at+".name", "pass name %q must be a folder name of letters, digits, '_', '.', '+', '-' (and not %q or %q)", p.Name, InputAttention, InputMetadata)
		}
		if j, dup := seen[p.Name]; dup {
			return nil, errAt(at+".name", "pass name %q is used twice (passes %d and %d)", p.Name, j+1, i+1)
		}
		seen[p.Name] = i
		if p.Function == "" {
			return nil, errAt(at, "pass %q has no function", p.Name)
		}
		spec, ok := reg.Lookup(p.Function)
		if !ok {
			return nil, errAt(at+".function", "pass %q: unknown function %q (known: %s)", p.Name, p.Function, strings.Join(reg.Names(), ", "))
		}
		p.spec = spec
		if p.Input == "" {
			p.Input = InputAttention
			if spec.Input == TakesMetadata {
				p.Input = InputMetadata
			}
		}
		switch p.Input {
		case InputAttention, InputMetadata:
		default:
			if _, ok := seen[p.Input]; ok {
				break
			}
			if later[p.Input] {
				return nil, errAt(at+".input", "pass %q: input %q is a later pass of the config (a pass reads only earlier ones)", p.Name, p.Input)
			}
			if !passNameRE.MatchString(p.Input) {
				return nil, errAt(at+".input", "pass %q: input %q is neither %q, %q, an earlier pass nor a pass folder name", p.Name, p.Input, InputAttention, InputMetadata)
			}
			p.fromRun = true
		}
		if (spec.Input == TakesMetadata) != (p.Input == InputMetadata) {
			want := "a tensor (attention or an earlier pass)"
			if spec.Input == TakesMetadata {
				want = InputMetadata
			}
			return nil, errAt(at+".input", "pass %q: function %s takes %s, not input %q", p.Name, p.Function, want, p.Input)
		}
		kw := Kwargs{}
		for k, ks := range spec.Kwargs {
			kw[k], _ = ks.convert(ks.Default)
		}
		keys := make([]string, 0, len(p.Kwargs))
		for k := range p.Kwargs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ks, ok := spec.Kwargs[k]
			if !ok {
				return nil, errAt(at+".kwargs."+k, "pass %q: function %s has no keyword argument %q (known: %s)", p.Name, p.Function, k, knownKwargs(spec))
			}
			v, err := ks.convert(p.Kwargs[k])
			if err != nil {
				return nil, errAt(at+".kwargs."+k, "pass %q: keyword argument %s: %v", p.Name, k, err)
			}
			kw[k] = v
		}
		p.kwargs = kw
		if p.fromRun || (p.Input != InputAttention && p.Input != InputMetadata && !cfg.Passes[seen[p.Input]].resolved) {
			continue // axes known once the run's passes are read (ResolveRunInputs)
		}
		var in []store.Axis
		switch p.Input {
		case InputAttention:
			in = store.AttentionAxes()
		case InputMetadata:
		default:
			in = cfg.Passes[seen[p.Input]].axes
		}
		if err := p.setAxes(in); err != nil {
			return nil, errAt(at+".input", "%v", err)
		}
	}
	return &cfg, nil
}

func (p *PassConfig) setAxes(in []store.Axis) error {
	axes, err := p.spec.Axes(in, p.kwargs)
	if err != nil {
		return fmt.Errorf("pass %q: function %s cannot take input %q with axes %s: %v", p.Name, p.Function, p.Input, store.AxesString(in), err)
	}
	p.axes, p.resolved = axes, true
	return nil
}

// RunInputs lists the inputs of the config that are passes of the run folder rather
// than of the config, in order of first use.
func (c *Config) RunInputs() []string {
	var out []string
	for _, p := range c.Passes {
		if p.fromRun && !slices.Contains(out, p.Input) {
			out = append(out, p.Input)
		}
	}
	return out
}

// ResolveRunInputs gives the passes whose input is a pass of the run folder (and the
// passes reading them) their axes, from the input pass's recorded axes (pass.json),
// which lookup returns; a missing pass or one without axes is an error naming the
// config line. Derive calls it before deriving.
func (c *Config) ResolveRunInputs(lookup func(pass string) (store.PassInfo, error)) error {
	byName := map[string]*PassConfig{}
	for i := range c.Passes {
		p := &c.Passes[i]
		if !p.resolved {
			var in []store.Axis
			if p.fromRun {
				info, err := lookup(p.Input)
				if err != nil {
					return c.errLine(p, "pass %q: input %q: %v", p.Name, p.Input, err)
				}
				if len(info.Axes) == 0 {
					return c.errLine(p, "pass %q: input %q: its pass.json records no axes (made by an older attnscope): make it again", p.Name, p.Input)
				}
				in = info.Axes
			} else {
				in = byName[p.Input].axes
			}
			if err := p.setAxes(in); err != nil {
				return c.errLine(p, "%v", err)
			}
		}
		byName[p.Name] = p
	}
	return nil
}

func (c *Config) errLine(p *PassConfig, format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	if p.line > 0 {
		return fmt.Errorf("%s:%d: %s", c.name, p.line, msg)
	}
	return fmt.Errorf("%s: %s", c.name, msg)
}

// decodeYAML decodes data strictly into cfg and returns its syntax tree for line
// lookups. go-yaml v1.19.2 panics on some malformed documents (found by FuzzParseConfig,
// e.g. a tag with no node in a mapping); such input is reported as an error.
func decodeYAML(data []byte, cfg *Config) (file *ast.File, err error) {
	defer func() {
		if p := recover(); p != nil {
			file, err = nil, fmt.Errorf("malformed YAML (the parser failed: %v)", p)
		}
	}()
	if err := yaml.UnmarshalWithOptions(data, cfg, yaml.Strict()); err != nil {
		return nil, errors.New(strings.TrimSpace(yaml.FormatError(err, false, false)))
	}
	return parser.ParseBytes(data, 0)
}

func knownKwargs(s *Spec) string {
	if len(s.Kwargs) == 0 {
		return "none"
	}
	ks := make([]string, 0, len(s.Kwargs))
	for k := range s.Kwargs {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// Pass returns the pass called name.
func (c *Config) Pass(name string) (*PassConfig, error) {
	for i := range c.Passes {
		if c.Passes[i].Name == name {
			return &c.Passes[i], nil
		}
	}
	names := make([]string, len(c.Passes))
	for i, p := range c.Passes {
		names[i] = p.Name
	}
	return nil, fmt.Errorf("no pass %q in the config (passes: %s)", name, strings.Join(names, ", "))
}
