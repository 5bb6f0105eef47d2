package experiment

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/attnscope/attnscope/derive"
	"github.com/attnscope/attnscope/store"
)

// Input folders of the original with a fixed meaning.
const (
	FolderAttTensor = "att_tensor"
	FolderMetadata  = "metadata"
)

// Passes is the analysis_passes list mapped onto a derive config.
type Passes struct {
	Derive *derive.Config
	// AttTensorPass is the name of the run folder's pass holding the reduced or
	// normalised att_tensor ("" when passes read the captured attention as is).
	AttTensorPass string
	cfg           *Config
	attLine       bool // the derive config starts with the att_tensor pass
}

// sentinel names the generated derive config in its errors, which MapError rewrites
// to the experiment file's lines.
const sentinel = "\x00experiment-passes"

var sentinelRE = regexp.MustCompile("\x00experiment-passes(?::(\\d+))?: ")

// DerivePasses maps analysis_passes onto derive: input_folder att_tensor is the
// captured attention (or, when the experiment reduces or normalises it, a first pass
// att_tensor computing the original's stored tensor), metadata is the sample's
// record, any other name an earlier pass; function_name and kwargs go to derive's
// function of that name. pass_metadata needs no mapping: derive gives every function
// the sample's record. Errors name the experiment file and the pass's line.
func (c *Config) DerivePasses(reg *derive.Registry) (*Passes, error) {
	if len(c.AnalysisPasses) == 0 {
		return nil, c.errAt("$", "analysis_passes is missing or empty: deriveall has nothing to do")
	}
	ps := &Passes{cfg: c}
	var lines []string
	attInput := derive.InputAttention
	a := c.Attention
	if a.StrategyReduceHead != "keep" || a.StrategyReduceLayer != "keep" || a.Normalize() != "" {
		norm := a.Normalize()
		if norm == "" {
			norm = "none"
		}
		ps.AttTensorPass, ps.attLine, attInput = FolderAttTensor, true, FolderAttTensor
		lines = append(lines, passLine(FolderAttTensor, derive.InputAttention, AttTensorFunction, map[string]any{
			"reduce_head": a.StrategyReduceHead, "reduce_layer": a.StrategyReduceLayer, "normalize_tokens": norm,
		}))
	}
	for i, p := range c.AnalysisPasses {
		at := fmt.Sprintf("$.analysis_passes[%d]", i)
		spec, ok := reg.Lookup(p.FunctionName)
		if !ok || p.FunctionName == AttTensorFunction {
			return nil, c.errAt(at+".function_name", "analysis pass %q: unknown function_name %q (known: %s)", p.Name, p.FunctionName, strings.Join(knownFunctions(reg), ", "))
		}
		for _, k := range sortedKeys(p.Kwargs) {
			if _, ok := spec.Kwargs[k]; !ok {
				return nil, c.errAt(at+".kwargs."+k, "analysis pass %q: function %s has no keyword argument %q", p.Name, p.FunctionName, k)
			}
		}
		input := *p.InputFolder
		switch input {
		case FolderAttTensor:
			input = attInput
		case FolderMetadata:
			input = derive.InputMetadata
		}
		lines = append(lines, passLine(p.Name, input, p.FunctionName, p.Kwargs))
	}
	data := "passes:\n" + strings.Join(lines, "")
	cfg, err := derive.ParseConfig(sentinel, []byte(data), reg)
	if err != nil {
		return nil, ps.MapError(err)
	}
	// Functions of attention need [layer, (head,) query, key]: catch a reduced
	// att_tensor or a pass output of fewer axes here rather than on the first sample.
	for i, p := range cfg.Passes {
		if p.Spec().Input != derive.TakesAttention || p.Input == derive.InputAttention {
			continue
		}
		in, err := cfg.Pass(p.Input)
		if err != nil || len(in.Axes()) == 0 || len(in.Axes()) >= 3 {
			continue
		}
		k := i
		if ps.attLine {
			k--
		}
		return nil, c.errAt(fmt.Sprintf("$.analysis_passes[%d].input_folder", k), "analysis pass %q: function %s takes attention [layer, head, query, key] or [layer, query, key], but its input %q has axes %s",
			p.Name, p.Function, *c.AnalysisPasses[k].InputFolder, store.AxesString(in.Axes()))
	}
	ps.Derive = cfg
	return ps, nil
}

func passLine(name, input, fn string, kw map[string]any) string {
	m := map[string]any{"name": name, "input": input, "function": fn}
	if len(kw) > 0 {
		m["kwargs"] = kw
	}
	b, _ := json.Marshal(m) // JSON is YAML's flow style: one pass per line
	return "  - " + string(b) + "\n"
}

// MapError rewrites an error of the generated derive config to name the experiment
// file and the line of the pass it concerns; other errors pass unchanged.
func (ps *Passes) MapError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	m := sentinelRE.FindStringSubmatchIndex(msg)
	if m == nil {
		return err
	}
	line := 0
	if m[2] >= 0 {
		gen, _ := strconv.Atoi(msg[m[2]:m[3]])
		idx := gen - 2 // line 1 is "passes:"
		if ps.attLine {
			idx--
		}
		if idx < 0 {
			line = ps.cfg.line("$.attention")
		} else {
			line = ps.cfg.line(fmt.Sprintf("$.analysis_passes[%d]", idx))
		}
	}
	prefix := ps.cfg.path + ": "
	if line > 0 {
		prefix = fmt.Sprintf("%s:%d: ", ps.cfg.path, line)
	}
	msg = msg[:m[0]] + prefix + msg[m[1]:]
	return errors.New(msg)
}

func knownFunctions(reg *derive.Registry) []string {
	var out []string
	for _, n := range reg.Names() {
		if n != AttTensorFunction {
			out = append(out, n)
		}
	}
	return out
}
