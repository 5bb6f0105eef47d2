package model

import (
	"fmt"
	"os"
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

// Architecture returns the graph definition of a config's family, one for each of
// checkpoint.ModelTypes.
func Architecture(c *checkpoint.Config) (arch.Architecture, error) {
	switch c.ModelType {
	case "gpt2":
		return gpt2.New(c), nil
	case "bert":
		return bert.New(c), nil
	case "llama", "mistral", "qwen2":
		return llama.New(c), nil
	case "gpt_neox":
		return gptneox.New(c), nil
	}
	return nil, fmt.Errorf("field model_type: %q is not supported (expected one of %s)", c.ModelType, strings.Join(checkpoint.ModelTypes, ", "))
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
	cfg, err := checkpoint.ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	a, err := Architecture(cfg)
	if err != nil {
		return nil, fmt.Errorf("read %s/config.json: %w", dir, err)
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
