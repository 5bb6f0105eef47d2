package tasks

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// GeneratorNames lists the generator class names New accepts (the original's;
// snake_case aliases such as "long_addition" are accepted too).
var GeneratorNames = []string{
	"LongAdditionGenerator", "LongMultiplicationGenerator", "StringReversalGenerator",
	"SuccessorGenerator", "ValueAssignmentGenerator", "FlipFlopGenerator",
}

var aliases = map[string]string{
	"long_addition": "LongAdditionGenerator", "addition": "LongAdditionGenerator",
	"long_multiplication": "LongMultiplicationGenerator", "multiplication": "LongMultiplicationGenerator",
	"string_reversal": "StringReversalGenerator", "reversal": "StringReversalGenerator",
	"successor":        "SuccessorGenerator",
	"value_assignment": "ValueAssignmentGenerator",
	"flip_flop":        "FlipFlopGenerator",
}

// CanonicalName resolves a generator name or alias to its class name.
func CanonicalName(name string) (string, error) {
	if slices.Contains(GeneratorNames, name) {
		return name, nil
	}
	if c, ok := aliases[name]; ok {
		return c, nil
	}
	return "", fmt.Errorf("unknown generator %q (known: %s)", name, strings.Join(GeneratorNames, ", "))
}

var commonParams = []string{"seed", "instruction", "few_shot_prompt", "few_shot_samples", "use_instruction",
	"use_few_shot", "ignore_index", "generate_attn_labels", "apply_chat_template", "chat_template",
	"eos_token_id", "original_quirks"}

var taskParams = map[string][]string{
	"LongAdditionGenerator":       {"length", "num_of_nums", "pad_with_zeros"},
	"LongMultiplicationGenerator": {"length", "pad_with_zeros", "generate_carry"},
	"StringReversalGenerator":     {"charset", "length"},
	"SuccessorGenerator":          {"start_number_range", "length"},
	"ValueAssignmentGenerator":    {"charset_from", "charset_to", "length", "encoding_length"},
	"FlipFlopGenerator":           {"length", "use_flip", "num_registers"},
}

// Params lists the parameter names a generator accepts.
func Params(name string) ([]string, error) {
	c, err := CanonicalName(name)
	if err != nil {
		return nil, err
	}
	out := append(append([]string(nil), taskParams[c]...), commonParams...)
	sort.Strings(out)
	return out, nil
}

// New builds a generator from its (class or alias) name and parameters as they
// appear under generator_parameters in an AttentionSpan config: ranges are
// two-element lists, "${as_tuple:a,b}" or "a,b" strings; charsets are strings
// (one character each) or lists. An unknown parameter, a value of the wrong
// type or an impossible range is an error naming the parameter.
func New(name string, params map[string]any, tok Tokenizer) (Generator, error) {
	cname, err := CanonicalName(name)
	if err != nil {
		return nil, err
	}
	p := paramReader{task: cname, m: params}
	allowed, _ := Params(cname)
	for k := range params {
		if !slices.Contains(allowed, k) {
			return nil, fmt.Errorf("%s: unknown parameter %q (accepted: %s)", cname, k, strings.Join(allowed, ", "))
		}
	}
	c := Common{Tokenizer: tok}
	c.Seed = int64(p.integer("seed", 0))
	if v, ok := params["instruction"]; ok {
		s, ok := v.(string)
		if !ok {
			p.fail("instruction", "a string")
		}
		c.Instruction = &s
	}
	if _, ok := params["few_shot_prompt"]; ok {
		l := p.list("few_shot_prompt")
		if len(l) != 2 {
			p.fail("few_shot_prompt", "a list of two strings (intro, outro)")
		} else {
			c.FewShotPrompt = &[2]string{l[0], l[1]}
		}
	}
	c.FewShotSamples = p.list("few_shot_samples")
	c.UseInstruction = p.boolean("use_instruction", false)
	c.UseFewShot = p.boolean("use_few_shot", false)
	c.IgnoreIndex = p.integer("ignore_index", DefaultIgnoreIndex)
	c.NoLabels = !p.boolean("generate_attn_labels", true)
	c.Original = p.boolean("original_quirks", false)
	c.ChatTemplate = p.list("chat_template")
	if p.boolean("apply_chat_template", false) && len(c.ChatTemplate) == 0 {
		if ct, ok := tok.(interface{ ChatParts() []string }); ok && len(ct.ChatParts()) == 4 {
			c.ChatTemplate = ct.ChatParts()
		} else {
			p.fail("apply_chat_template", "a tokenizer with a chat template (a Hugging Face model's tokenizer_config.json), or chat_template (the rendered template split on {tokens}, 4 strings) alongside it")
		}
	}
	_ = p.integer("eos_token_id", 0) // accepted and unused, as in the original
	if p.err != nil {
		return nil, p.err
	}
	var g Generator
	switch cname {
	case "LongAdditionGenerator":
		length, nums, pad := p.rng("length", Range{1, 20}), p.rng("num_of_nums", Range{2, 3}), p.boolean("pad_with_zeros", true)
		if p.err == nil {
			g, err = NewLongAddition(c, length, nums, pad)
		}
	case "LongMultiplicationGenerator":
		length, pad, carry := p.rng("length", Range{1, 20}), p.boolean("pad_with_zeros", true), p.boolean("generate_carry", true)
		if p.err == nil {
			g, err = NewLongMultiplication(c, length, pad, carry)
		}
	case "StringReversalGenerator":
		cs, length := p.strings("charset", strings.Split(ReversalCharset, "")), p.rng("length", Range{1, 100})
		if p.err == nil {
			g, err = NewStringReversal(c, cs, length)
		}
	case "SuccessorGenerator":
		start, length := p.rng("start_number_range", Range{1, 100}), p.rng("length", Range{1, 100})
		if p.err == nil {
			g, err = NewSuccessor(c, start, length)
		}
	case "ValueAssignmentGenerator":
		from := p.strings("charset_from", strings.Split(AssignmentCharset, ""))
		to := p.strings("charset_to", strings.Split(AssignmentCharset, ""))
		length, enc := p.rng("length", Range{1, 100}), p.rng("encoding_length", Range{1, 100})
		if p.err == nil && params["encoding_length"] == nil {
			enc.Hi = min(enc.Hi, len(from), len(to))
		}
		if p.err == nil {
			g, err = NewValueAssignment(c, dedupe(from), dedupe(to), length, enc)
		}
	case "FlipFlopGenerator":
		length, flip, regs := p.rng("length", Range{1, 100}), p.boolean("use_flip", true), p.rng("num_registers", Range{1, 10})
		if p.err == nil {
			g, err = NewFlipFlop(c, length, flip, regs)
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	return g, err
}

// dedupe keeps the first occurrence of each character (the original's sets).
func dedupe(s []string) []string {
	var out []string
	for _, c := range s {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

type paramReader struct {
	task string
	m    map[string]any
	err  error
}

func (p *paramReader) fail(key, want string) {
	if p.err == nil {
		p.err = fmt.Errorf("%s: parameter %s: expected %s, got %v", p.task, key, want, p.m[key])
	}
}

func asInt(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case int64:
		return int(x), true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int(x), true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int(x), true
		}
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		return n, err == nil
	}
	return 0, false
}

func (p *paramReader) integer(key string, def int) int {
	v, ok := p.m[key]
	if !ok || v == nil {
		return def
	}
	n, ok := asInt(v)
	if !ok {
		p.fail(key, "an integer")
	}
	return n
}

func (p *paramReader) boolean(key string, def bool) bool {
	v, ok := p.m[key]
	if !ok || v == nil {
		return def
	}
	b, ok := v.(bool)
	if !ok {
		p.fail(key, "true or false")
	}
	return b
}

var asTupleRE = regexp.MustCompile(`^\$\{as_tuple:\s*(-?\d+)\s*,\s*(-?\d+)\s*\}$|^\(?\s*(-?\d+)\s*,\s*(-?\d+)\s*\)?$`)

// ParseRange parses a range given as a two-element list or a "${as_tuple:a,b}",
// "(a,b)" or "a,b" string.
func ParseRange(v any) (Range, bool) {
	switch x := v.(type) {
	case []any:
		if len(x) != 2 {
			return Range{}, false
		}
		a, ok1 := asInt(x[0])
		b, ok2 := asInt(x[1])
		return Range{a, b}, ok1 && ok2
	case []int:
		if len(x) != 2 {
			return Range{}, false
		}
		return Range{x[0], x[1]}, true
	case string:
		m := asTupleRE.FindStringSubmatch(strings.TrimSpace(x))
		if m == nil {
			return Range{}, false
		}
		a, b := m[1], m[2]
		if a == "" {
			a, b = m[3], m[4]
		}
		lo, _ := strconv.Atoi(a)
		hi, _ := strconv.Atoi(b)
		return Range{lo, hi}, true
	}
	return Range{}, false
}

func (p *paramReader) rng(key string, def Range) Range {
	v, ok := p.m[key]
	if !ok || v == nil {
		return def
	}
	r, ok := ParseRange(v)
	if !ok {
		p.fail(key, `a range: a list [lo, hi] or "${as_tuple:lo,hi}"`)
	}
	return r
}

func (p *paramReader) strings(key string, def []string) []string {
	v, ok := p.m[key]
	if !ok || v == nil {
		return def
	}
	if n, ok := v.(uint64); ok { // a charset of digits written without quotes
		v = strconv.FormatUint(n, 10)
	} else if n, ok := v.(int64); ok && n >= 0 {
		v = strconv.FormatInt(n, 10)
	}
	switch x := v.(type) {
	case string:
		var out []string
		for _, r := range x {
			out = append(out, string(r))
		}
		return out
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				p.fail(key, "a list of strings")
				return def
			}
			out[i] = s
		}
		return out
	case []string:
		return x
	}
	p.fail(key, "a string or a list of strings")
	return def
}

// list reads a list of strings (a plain string is not split into characters).
func (p *paramReader) list(key string) []string {
	switch p.m[key].(type) {
	case nil, []any, []string:
		return p.strings(key, nil)
	}
	p.fail(key, "a list of strings")
	return nil
}
