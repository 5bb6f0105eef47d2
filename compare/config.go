package compare

import (
	"errors"
	"fmt"
	"github.com/attnscope/attnscope/internal/strictyaml"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Config is a comparator configuration (followup-attention's cmp_vXX.yaml, same
// keys). Folders are run folders: a side's subfolder names a derived pass, whose
// outputs RUN/derived/<subfolder>/<sample>.npy are compared.
//
//	human_att_folder: runs/human            # run folder of the human sessions
//	machine_att_folder: runs/codegen        # run folder of the model
//	output_comparison_folder: comparisons
//	comparisons:
//	  - name: tl_top3
//	    comparison_function: top_3_overlap
//	    comparison_output_subcolumns: [value, token_index]
//	    transformations: [{name: keep_only_tokens_seen_by_model}, ...]
//	    human: {subfolder: followup_tokens, suffix: _human}
//	    machine: [{subfolder: followup, suffix: _followup}, {subfolder: naive_max, suffix: _max}]
type Config struct {
	HumanAttFolder   string       `yaml:"human_att_folder"`
	MachineAttFolder string       `yaml:"machine_att_folder"`
	OutputFolder     string       `yaml:"output_comparison_folder"`
	Comparisons      []Comparison `yaml:"comparisons"`

	file string // config path, for messages
	dir  string // config folder: relative paths start here
}

// Comparison is one entry of Config.Comparisons.
type Comparison struct {
	Name string `yaml:"name"`
	// Type is informational (vector or matrix), as in the original.
	Type             string         `yaml:"type"`
	Function         string         `yaml:"comparison_function"`
	Kwargs           map[string]any `yaml:"comparison_kwargs"`
	OutputColumn     string         `yaml:"comparison_output_column"`
	OutputSubcolumns []string       `yaml:"comparison_output_subcolumns"`
	Transformations  []Step         `yaml:"transformations"`
	Human            HumanSide      `yaml:"human"`
	Machine          MachineSides   `yaml:"machine"`
	// HumanPairs compares every ordered pair of human sessions on the same file
	// (default true, as the original).
	HumanPairs *bool `yaml:"human_pairs"`

	fn     *Function
	kwargs Kwargs
	line   int
}

// Step is one transformation of a chain.
type Step struct {
	Name   string         `yaml:"name"`
	Kwargs map[string]any `yaml:"kwargs"`

	t      *Transformation
	kwargs Kwargs
}

// HumanSide says where the human arrays are. Tokenizer and ModelFolder are accepted
// for compatibility with the original's configs; the tokens come from each sample's
// sample.json.
type HumanSide struct {
	Subfolder       string `yaml:"subfolder"`
	FileExtension   string `yaml:"file_extension"`
	Tokenizer       string `yaml:"tokenizer"`
	ModelFolder     string `yaml:"model_folder"`
	Suffix          string `yaml:"suffix"`
	Transformations []Step `yaml:"transformations"`
}

// MachineSide says where one machine artefact is. Folder overrides the config's
// machine_att_folder (another model's run: two models compared through
// characters or lines).
type MachineSide struct {
	Subfolder     string `yaml:"subfolder"`
	FileExtension string `yaml:"file_extension"`
	Suffix        string `yaml:"suffix"`
	Folder        string `yaml:"machine_att_folder"`
}

// MachineSides is one machine section or a list of them.
type MachineSides []MachineSide

// UnmarshalYAML accepts a mapping or a list of mappings.
func (m *MachineSides) UnmarshalYAML(unmarshal func(any) error) error {
	var raw any
	if err := unmarshal(&raw); err != nil {
		return err
	}
	if _, isList := raw.([]any); isList {
		var list []MachineSide
		if err := unmarshal(&list); err != nil {
			return err
		}
		*m = list
		return nil
	}
	var one MachineSide
	if err := unmarshal(&one); err != nil {
		return err
	}
	*m = MachineSides{one}
	return nil
}

// Output is the file stem of the comparison's CSV for machine section s:
// <name><suffix>.
func (c *Comparison) Output(s MachineSide) string { return c.Name + s.Suffix }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.+-]*$`)

// LoadConfig reads and checks a comparator config.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read compare config: %w", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig decodes a comparator config strictly (an unknown key is an error)
// and checks every comparison: names, functions, transformations and their keyword
// arguments. Errors name the file, line and field.
func ParseConfig(name string, data []byte) (*Config, error) {
	var cfg Config
	file, err := strictyaml.Decode(data, &cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", name, err)
	}
	cfg.file, cfg.dir = name, filepath.Dir(name)
	errAt := func(path, format string, a ...any) error {
		if l := strictyaml.Line(file, path); l > 0 {
			return fmt.Errorf("%s:%d: %s", name, l, fmt.Sprintf(format, a...))
		}
		return fmt.Errorf("%s: %s", name, fmt.Sprintf(format, a...))
	}
	for _, f := range []struct{ key, v string }{{"human_att_folder", cfg.HumanAttFolder}, {"output_comparison_folder", cfg.OutputFolder}} {
		if f.v == "" {
			return nil, errAt("$", "%s is missing (a folder expected)", f.key)
		}
	}
	if len(cfg.Comparisons) == 0 {
		return nil, errAt("$", "no comparisons (a list under the key \"comparisons\" expected)")
	}
	fns, trs := Functions(), Transformations()
	seen := map[string]bool{}
	for i := range cfg.Comparisons {
		c := &cfg.Comparisons[i]
		at := fmt.Sprintf("$.comparisons[%d]", i)
		c.line = strictyaml.Line(file, at)
		if !nameRE.MatchString(c.Name) {
			return nil, errAt(at+".name", "comparison %d: name %q must be a file name of letters, digits, '_', '.', '+', '-'", i+1, c.Name)
		}
		if c.Type != "" && c.Type != "vector" && c.Type != "matrix" {
			return nil, errAt(at+".type", "comparison %q: type %q, vector or matrix expected", c.Name, c.Type)
		}
		fn, ok := fns[c.Function]
		if !ok {
			return nil, errAt(at+".comparison_function", "comparison %q: unknown comparison_function %q (known: %s)", c.Name, c.Function, keys(fns))
		}
		c.fn = fn
		var bad string
		if c.kwargs, bad, err = checkKwargs(fn.Kwargs, c.Kwargs, "pass_metadata"); err != nil {
			return nil, errAt(at+".comparison_kwargs."+bad, "comparison %q: comparison_kwargs: %v", c.Name, err)
		}
		list := fn.List(c.kwargs)
		if c.OutputColumn != "" && c.OutputColumn != list {
			return nil, errAt(at+".comparison_output_column", "comparison %q: comparison_output_column %q, but %s returns the list %q", c.Name, c.OutputColumn, c.Function, list)
		}
		if len(c.OutputSubcolumns) > 0 && list == "" {
			return nil, errAt(at+".comparison_output_subcolumns", "comparison %q: %s returns no list to explode into comparison_output_subcolumns", c.Name, c.Function)
		}
		if len(c.OutputSubcolumns) > len(fn.Fields) {
			return nil, errAt(at+".comparison_output_subcolumns", "comparison %q: %d sub-columns, but the elements of %s have %d fields (%s)", c.Name, len(c.OutputSubcolumns), list, len(fn.Fields), strings.Join(fn.Fields, ", "))
		}
		if err := checkSteps(c.Transformations, trs, at+".transformations", c.Name, errAt); err != nil {
			return nil, err
		}
		if err := checkSteps(c.Human.Transformations, trs, at+".human.transformations", c.Name, errAt); err != nil {
			return nil, err
		}
		if c.Human.Subfolder == "" {
			return nil, errAt(at+".human", "comparison %q: human.subfolder is missing (the human run's derived pass to compare)", c.Name)
		}
		if len(c.Machine) == 0 {
			return nil, errAt(at, "comparison %q: no machine section", c.Name)
		}
		exts := []struct{ path, ext string }{{at + ".human.file_extension", c.Human.FileExtension}}
		for j, s := range c.Machine {
			mat := fmt.Sprintf("%s.machine[%d]", at, j)
			if s.Subfolder == "" {
				return nil, errAt(mat, "comparison %q: machine section %d has no subfolder (the derived pass to compare)", c.Name, j+1)
			}
			if s.Folder == "" && cfg.MachineAttFolder == "" {
				return nil, errAt(mat, "comparison %q: machine section %d has no run folder (machine_att_folder)", c.Name, j+1)
			}
			out := c.Output(s)
			if seen[out] {
				return nil, errAt(mat+".suffix", "comparison %q: output %s.csv is written twice (give the machine sections different suffixes)", c.Name, out)
			}
			seen[out] = true
			exts = append(exts, struct{ path, ext string }{mat + ".file_extension", s.FileExtension})
		}
		if c.humanPairs() {
			if out := c.Name + c.Human.Suffix; seen[out] {
				return nil, errAt(at+".human.suffix", "comparison %q: the human pairs' output %s.csv is also a machine section's (give human.suffix another value)", c.Name, out)
			} else {
				seen[out] = true
			}
		}
		for _, e := range exts {
			if e.ext != "" && e.ext != ".npy" {
				return nil, errAt(e.path, "comparison %q: file_extension %q, only .npy is read", c.Name, e.ext)
			}
		}
	}
	return &cfg, nil
}

func (c *Comparison) humanPairs() bool { return c.HumanPairs == nil || *c.HumanPairs }

func checkSteps(steps []Step, trs map[string]*Transformation, at, comp string, errAt func(string, string, ...any) error) error {
	for k := range steps {
		s := &steps[k]
		t, ok := trs[s.Name]
		if !ok {
			return errAt(fmt.Sprintf("%s[%d].name", at, k), "comparison %q: unknown transformation %q (known: %s)", comp, s.Name, keys(trs))
		}
		s.t = t
		kw, bad, err := checkKwargs(t.Kwargs, s.Kwargs)
		if err != nil {
			return errAt(fmt.Sprintf("%s[%d].kwargs.%s", at, k, bad), "comparison %q: transformation %s: %v", comp, s.Name, err)
		}
		s.kwargs = kw
	}
	return nil
}

func keys[V any](m map[string]V) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// checkKwargs fills in defaults and converts given values to the defaults' types;
// ignored names are accepted and dropped. On error it also returns the offending name.
func checkKwargs(defaults, given map[string]any, ignored ...string) (Kwargs, string, error) {
	kw := Kwargs{}
	for k, v := range defaults {
		kw[k] = v
	}
	names := make([]string, 0, len(given))
	for k := range given {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		def, ok := defaults[k]
		if !ok {
			if contains(ignored, k) {
				continue
			}
			known := "none"
			if len(defaults) > 0 {
				known = keys(defaults)
			}
			return nil, k, fmt.Errorf("unknown keyword %q (known: %s)", k, known)
		}
		v, err := convertKwarg(def, given[k])
		if err != nil {
			return nil, k, fmt.Errorf("keyword %s: %v", k, err)
		}
		kw[k] = v
	}
	return kw, "", nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func convertKwarg(def, v any) (any, error) {
	num := func() (float64, bool) {
		switch x := v.(type) {
		case uint64:
			return float64(x), true
		case int64:
			return float64(x), true
		case int:
			return float64(x), true
		case float64:
			return x, true
		}
		return 0, false
	}
	switch def.(type) {
	case int:
		f, ok := num()
		if !ok || f != math.Trunc(f) {
			return nil, fmt.Errorf("%v is not an integer", v)
		}
		return int(f), nil
	case float64:
		f, ok := num()
		if !ok {
			return nil, fmt.Errorf("%v is not a number", v)
		}
		return f, nil
	case bool:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("%v is not true or false", v)
		}
		return b, nil
	case string:
		if v == nil {
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%v is not a string", v)
		}
		return s, nil
	case []string:
		list, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("%v is not a list of strings", v)
		}
		out := make([]string, len(list))
		for i, e := range list {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("element %d (%v) is not a string", i, e)
			}
			out[i] = s
		}
		return out, nil
	case map[string]any:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%v is not a mapping", v)
		}
		return m, nil
	}
	return nil, errors.New("unsupported keyword type")
}
