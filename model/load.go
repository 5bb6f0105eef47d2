package model

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/model/arch"
	"github.com/attnscope/attnscope/model/bert"
	"github.com/attnscope/attnscope/model/gpt2"
	"github.com/attnscope/attnscope/model/gptneox"
	"github.com/attnscope/attnscope/model/llama"
	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend" // pure-Go backend
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

// NewBackend returns the GoMLX backend named by config ("go", "xla:cuda",
// ...); empty means $GOMLX_BACKEND, else the pure-Go backend. The Go backend
// uses GOMAXPROCS threads, read when it is created.
func NewBackend(config string) (b compute.Backend, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("backend %q: %v", config, p)
		}
	}()
	if config == "" {
		if _, ok := os.LookupEnv(compute.ConfigEnvVar); !ok {
			config = "go"
		}
	}
	if config == "" {
		return compute.New()
	}
	return compute.NewWithConfig(config)
}

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
	r, err := newRunner(dir, cfg, a, w, backend)
	if err != nil {
		return nil, err
	}
	return r, nil
}
