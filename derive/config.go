package derive

import (
	"errors"
	"fmt"
	"os"
	"regexp"
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
type Config struct {
	Passes []PassConfig `yaml:"passes"`
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
	seen := map[string]int{}
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
			if j, ok := seen[p.Input]; !ok || j >= i {
				return nil, errAt(at+".input", "pass %q: input %q is neither %q, %q nor an earlier pass", p.Name, p.Input, InputAttention, InputMetadata)
			}
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
		var in []store.Axis
		switch p.Input {
		case InputAttention:
			in = store.AttentionAxes()
		case InputMetadata:
		default:
			in = cfg.Passes[seen[p.Input]].axes
		}
		axes, err := spec.Axes(in, kw)
		if err != nil {
			return nil, errAt(at+".input", "pass %q: function %s cannot take input %q with axes %s: %v", p.Name, p.Function, p.Input, store.AxesString(in), err)
		}
		p.axes = axes
	}
	return &cfg, nil
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
