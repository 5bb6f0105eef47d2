package model

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/model/arch"
	"github.com/attnscope/attnscope/model/bert"
	"github.com/attnscope/attnscope/model/codegen"
	"github.com/attnscope/attnscope/model/gemma"
	"github.com/attnscope/attnscope/model/gpt2"
	"github.com/attnscope/attnscope/model/gptj"
	"github.com/attnscope/attnscope/model/gptneo"
	"github.com/attnscope/attnscope/model/gptneox"
	"github.com/attnscope/attnscope/model/llama"
	"github.com/attnscope/attnscope/model/phi"
	"github.com/attnscope/attnscope/model/phi3"
	"github.com/attnscope/attnscope/model/roberta"
	"github.com/gomlx/gomlx/core/tensors"
)

// A family is one architecture: the config.json model_type values it
// serves, how it reads their config, and its graph definition.
type family struct {
	types []string
	parse func(checkpoint.RawConfig) (*arch.Config, error)
	new   func(*arch.Config) arch.Architecture
}

// families is the registry of supported architectures: a new family is one
// package (model/<family>) and one line here.
var families = []family{
	{[]string{"gpt2"}, gpt2.ParseConfig, gpt2.New},
	{[]string{"bert"}, bert.ParseConfig, bert.New},
	{[]string{"llama", "mistral", "qwen2"}, llama.ParseConfig, llama.New},
	{[]string{"gpt_neox"}, gptneox.ParseConfig, gptneox.New},
	{[]string{"gpt_neo"}, gptneo.ParseConfig, gptneo.New},
	{[]string{"gptj"}, gptj.ParseConfig, gptj.New},
	{[]string{"codegen"}, codegen.ParseConfig, codegen.New},
	{[]string{"roberta", "xlm-roberta"}, roberta.ParseConfig, roberta.New},
	{[]string{"phi3"}, phi3.ParseConfig, phi3.New},
	{[]string{"phi"}, phi.ParseConfig, phi.New},
	{[]string{"gemma", "gemma2"}, gemma.ParseConfig, gemma.New},
}

// ModelTypes lists the supported config.json model_type values.
func ModelTypes() []string {
	var out []string
	for _, f := range families {
		out = append(out, f.types...)
	}
	return out
}

func familyOf(modelType string) (family, error) {
	if modelType == "" {
		return family{}, fmt.Errorf("field model_type is missing")
	}
	for _, f := range families {
		if slices.Contains(f.types, modelType) {
			return f, nil
		}
	}
	return family{}, fmt.Errorf("field model_type: %q is not supported (expected one of %s)", modelType, strings.Join(ModelTypes(), ", "))
}

// ParseConfig reads a config.json's values through its family (chosen by
// model_type); errors name the field as the file spells it.
func ParseConfig(raw checkpoint.RawConfig) (*arch.Config, error) {
	mt, err := raw.ModelType()
	if err != nil {
		return nil, err
	}
	f, err := familyOf(mt)
	if err != nil {
		return nil, err
	}
	return f.parse(raw)
}

// ReadConfig reads and parses dir/config.json; errors name the file.
func ReadConfig(dir string) (*arch.Config, error) {
	raw, err := checkpoint.ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	c, err := ParseConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, "config.json"), err)
	}
	return c, nil
}

// Architecture returns the graph definition of a config's family.
func Architecture(c *arch.Config) (arch.Architecture, error) {
	f, err := familyOf(c.ModelType)
	if err != nil {
		return nil, err
	}
	return f.new(c), nil
}

// DefaultBackend is the backend config used when neither the caller nor $GOMLX_BACKEND
// names one: GoMLX's pure-Go backend running one op at a time, each op (the matrix
// multiplications above all) split over every core. The Go backend's default mode runs
// independent ops concurrently instead, which on 2 cores left each matmul on one core:
// GPT-2-small capture at N=128 took 205 ms with 2 threads against 130 ms this way, and
// a 2048² matmul reached 162 against 312 GFLOP/s (attnscope bench capture --backend).
const DefaultBackend = "go:ops_sequential"

// Load reads a model folder: config.json (dispatching on model_type) and
// model.safetensors or model.safetensors.index.json (F32, F16 or BF16, read
// as float32). Every tensor the architecture needs is checked for presence and
// shape; errors name the file and the tensor.
func Load(dir string, opts LoadOptions) (Model, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	a, err := Architecture(cfg)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, "config.json"), err)
	}
	w, err := checkpoint.OpenWeights(dir)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	backend, err := NewBackend(opts.Backend)
	if err != nil {
		return nil, err
	}
	r, err := newRunner(dir, cfg, a, w, backend, opts.Float64Attention)
	if err != nil {
		return nil, err
	}
	if msg := unusedTensors(w, r.weights, cfg); msg != "" {
		if opts.Strict {
			r.Close()
			return nil, fmt.Errorf("%s (refused with strict loading)", msg)
		}
		if opts.Warn != nil {
			opts.Warn(msg)
		} else {
			fmt.Fprintln(os.Stderr, "attnscope: warning: "+msg)
		}
	}
	return r, nil
}

// buffers are checkpoint entries that are not weights (attention masks and
// rotary tables some exporters save), ignored as transformers ignores them.
var buffers = regexp.MustCompile(`(^|\.)(attn\.bias|attn\.masked_bias|attention\.bias|attention\.masked_bias|position_ids|rotary_emb\.inv_freq)$`)

// layerIndex finds the layer number in a tensor name (transformer.h.3.,
// model.layers.3., bert.encoder.layer.3.).
var layerIndex = regexp.MustCompile(`\.(?:h|layers|layer)\.(\d+)\.`)

// unusedTensors describes the checkpoint's tensors that the architecture did
// not load ("" when none), like transformers' "Some weights of the model
// checkpoint were not used" warning; tensors of layers beyond config.json's
// layer count are named as such.
func unusedTensors(w *checkpoint.Weights, loaded map[string]*tensors.Tensor, cfg *arch.Config) string {
	var unused []string
	top := -1
	for _, n := range w.Names() {
		if _, ok := loaded[n]; ok || buffers.MatchString(n) {
			continue
		}
		unused = append(unused, n)
		if m := layerIndex.FindStringSubmatch(n); m != nil {
			if l, err := strconv.Atoi(m[1]); err == nil && l >= cfg.Layers {
				top = max(top, l)
			}
		}
	}
	if len(unused) == 0 {
		return ""
	}
	list := strings.Join(unused[:min(len(unused), 5)], ", ")
	if len(unused) > 5 {
		list += fmt.Sprintf(", ... (%d more)", len(unused)-5)
	}
	msg := fmt.Sprintf("%s: %d tensors are not used by the %s architecture of config.json: %s", strings.Join(w.Files(), ", "), len(unused), cfg.ModelType, list)
	if top >= 0 {
		msg += fmt.Sprintf("; the checkpoint has layers up to %d but config.json's %s is %d", top, cfg.Keys.Layers, cfg.Layers)
	}
	return msg
}
