package train

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/attnscope/attnscope/tasks"
)

// Experiment is an AttentionSpan-style experiment config (spec seeds.md §2.5):
// a model, optional training on a generator, and evaluation on an
// in-distribution dataset1 and an out-of-distribution dataset2. The keys of the
// original's schema are accepted; wandb and device settings are recorded and
// otherwise ignored (training runs on the GoMLX backend chosen by $GOMLX_BACKEND).
type Experiment struct {
	Name       string    `yaml:"name"`
	Seed       uint64    `yaml:"seed"` // weight initialisation and shuffling
	Wandb      *WandbCfg `yaml:"wandb"`
	Model      ModelCfg  `yaml:"model"`
	Training   *TrainCfg `yaml:"training"` // null: no training (evaluate only)
	Evaluation *EvalCfg  `yaml:"evaluation"`
}

// WandbCfg is accepted for compatibility with AttentionSpan configs; unused.
type WandbCfg struct {
	Project string `yaml:"project"`
	Name    string `yaml:"name"`
}

// ModelCfg describes the model to train or load.
type ModelCfg struct {
	Name               string         `yaml:"name"`         // free text (the original's HF model id)
	Architecture       string         `yaml:"architecture"` // "gpt2" (default) or "llama"
	NLayer             int            `yaml:"n_layer"`
	NHead              int            `yaml:"n_head"`
	NEmbd              int            `yaml:"n_embd"`
	NPositions         int            `yaml:"n_positions"`
	NKVHead            int            `yaml:"n_kv_head"`  // llama: key/value heads (default n_head)
	NInner             int            `yaml:"n_inner"`    // llama: MLP width (default 4·n_embd)
	RopeTheta          float64        `yaml:"rope_theta"` // llama: RoPE base (default 10000)
	Tokenizer          string         `yaml:"tokenizer"`  // "char": the character-level tokenizer
	LoadFromCheckpoint bool           `yaml:"load_from_checkpoint"`
	CheckpointDir      string         `yaml:"checkpoint_filepath"` // folder with model.safetensors + config.json
	IsPretrained       bool           `yaml:"is_pretrained"`
	ModelConfiguration map[string]any `yaml:"model_configuration"` // accepted, unused (as in the original)
}

// DatasetCfg is a generator and its parameters.
type DatasetCfg struct {
	Generator           string         `yaml:"generator"`
	GeneratorParameters map[string]any `yaml:"generator_parameters"`
	NumSamples          int            `yaml:"num_samples"`
}

// OptimizerCfg are AdamW's parameters.
type OptimizerCfg struct {
	Beta1       float64 `yaml:"beta1"`
	Beta2       float64 `yaml:"beta2"`
	WeightDecay float64 `yaml:"weight_decay"`
}

// TrainCfg configures training.
type TrainCfg struct {
	Epochs              int          `yaml:"epochs"`
	Steps               int          `yaml:"steps"` // 0: epochs × ⌈num_samples / batch_size⌉
	BatchSize           int          `yaml:"batch_size"`
	LearningRate        float64      `yaml:"learning_rate"`
	WarmupSteps         int          `yaml:"warmup_steps"`
	MinLRRatio          float64      `yaml:"min_lr_ratio"`
	GradClip            float64      `yaml:"grad_clip"`
	Device              string       `yaml:"device"`
	IgnoreIndex         *int         `yaml:"ignore_index"`
	SaveCheckpoint      bool         `yaml:"save_checkpoint"`
	CheckpointFilepath  string       `yaml:"checkpoint_filepath"` // output folder
	LogEvery            int          `yaml:"log_every"`
	ValEvery            int          `yaml:"val_every"`
	OptimizerParameters OptimizerCfg `yaml:"optimizer_parameters"`
	TrainDataset        DatasetCfg   `yaml:"train_dataset"`
	ValDataset          *DatasetCfg  `yaml:"val_dataset"`
}

// EvalCfg configures evaluation on two distributions.
type EvalCfg struct {
	Device    string      `yaml:"device"`
	BatchSize int         `yaml:"batch_size"`
	Visualize bool        `yaml:"visualize"`
	Name      string      `yaml:"name"`
	Dataset1  *DatasetCfg `yaml:"dataset1"`
	Dataset2  *DatasetCfg `yaml:"dataset2"`
}

// LoadExperiment reads a config file strictly (unknown keys are errors, with
// their line), applies key=value overrides and validates the result.
func LoadExperiment(path string, overrides []string) (*Experiment, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseExperiment(path, data, overrides)
}

// LoadModelExperiment reads a config for evaluating the Hugging Face model folder dir
// (EvaluateModel): the config's model section, which describes a character-level
// model to train or load, does not apply (is_pretrained with a hub name, as the
// original's configs have, is accepted), and training must be null.
func LoadModelExperiment(path string, overrides []string, dir string) (*Experiment, error) {
	o := append([]string{"++model.load_from_checkpoint=true", "++model.checkpoint_filepath=" + dir, "++model.is_pretrained=false"}, overrides...)
	e, err := LoadExperiment(path, o)
	if err != nil {
		return nil, err
	}
	if e.Training != nil {
		return nil, fmt.Errorf("%s: training a Hugging Face model is not supported: add training=null to evaluate %s", path, dir)
	}
	return e, nil
}

// ParseExperiment decodes config bytes (name is used in messages). Overrides
// are Hydra-like: "training.batch_size=32" replaces an existing key (a missing
// key is an error), "+training.steps=100" adds one (an existing key is an error),
// "++training.steps=100" adds or replaces, "training=null" disables
// training; values are YAML ("5e-3", "[1,4]", "${as_tuple:1,4}", "null").
func ParseExperiment(name string, data []byte, overrides []string) (*Experiment, error) {
	var e Experiment
	if err := strictDecode(data, &e); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(overrides) > 0 {
		var doc map[string]any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if doc == nil {
			doc = map[string]any{}
		}
		for _, o := range overrides {
			if err := applyOverride(doc, o); err != nil {
				return nil, err
			}
		}
		merged, err := yaml.Marshal(doc)
		if err != nil {
			return nil, fmt.Errorf("apply overrides: %w", err)
		}
		e = Experiment{}
		if err := strictDecode(merged, &e); err != nil {
			return nil, overrideError(name, data, overrides, err)
		}
	}
	if err := e.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &e, nil
}

// overrideError names the first override after which the config no longer decodes
// (its value does not fit the key, or it adds an unknown key), with what the key
// expects; err (the decode error of all overrides together) is the fallback.
func overrideError(name string, data []byte, overrides []string, err error) error {
	var doc map[string]any
	if yaml.Unmarshal(data, &doc) != nil || doc == nil {
		return fmt.Errorf("%s with overrides %s: %w", name, strings.Join(overrides, " "), err)
	}
	for _, o := range overrides {
		if applyOverride(doc, o) != nil {
			break
		}
		merged, mErr := yaml.Marshal(doc)
		if mErr != nil {
			break
		}
		var e Experiment
		if dErr := strictDecode(merged, &e); dErr != nil {
			key, val, _ := strings.Cut(strings.TrimLeft(o, "+"), "=")
			if m := typeMismatch.FindStringSubmatch(dErr.Error()); m != nil {
				return fmt.Errorf("%s: override %s: %q is not a valid value: %s expected", name, key, val, typeNames[m[1]])
			}
			return fmt.Errorf("%s: override %s: %s", name, o, dErr)
		}
	}
	return fmt.Errorf("%s with overrides %s: %w", name, strings.Join(overrides, " "), err)
}

// typeMismatch matches the YAML decoder's message for a value of the wrong type.
var typeMismatch = regexp.MustCompile(`cannot unmarshal \S+ into Go (?:struct field|value) \S* ?of type (int|int64|float64|bool|string)\b`)

var typeNames = map[string]string{"int": "an integer", "int64": "an integer", "float64": "a number", "bool": "true or false", "string": "a string"}

func strictDecode(data []byte, v any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed YAML (the parser failed: %v)", p)
		}
	}()
	if err := yaml.UnmarshalWithOptions(data, v, yaml.Strict()); err != nil {
		return errors.New(strings.TrimSpace(yaml.FormatError(err, false, false)))
	}
	return nil
}

func applyOverride(doc map[string]any, o string) error {
	force := strings.HasPrefix(o, "++")
	add := strings.HasPrefix(o, "+")
	kv := strings.TrimLeft(o, "+")
	key, val, ok := strings.Cut(kv, "=")
	if !ok || key == "" {
		return fmt.Errorf("override %q: expected key=value (e.g. training.batch_size=32)", o)
	}
	v, err := yamlValue(val)
	if err != nil {
		return fmt.Errorf("override %s: value %q is not valid YAML: %w", key, val, err)
	}
	parts := strings.Split(key, ".")
	cur := doc
	for i, p := range parts[:len(parts)-1] {
		next, ok := cur[p]
		if !ok {
			return fmt.Errorf("override %s: key %s does not exist in the config", key, strings.Join(parts[:i+1], "."))
		}
		m, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("override %s: %s is not a mapping (it is %v)", key, strings.Join(parts[:i+1], "."), next)
		}
		cur = m
	}
	last := parts[len(parts)-1]
	_, exists := cur[last]
	if !exists && !add {
		return fmt.Errorf("override %s: key does not exist in the config (use +%s=... to add it)", key, key)
	}
	if exists && add && !force {
		return fmt.Errorf("override +%s: key already exists in the config (use %s=... to replace it, or ++%s=... to add or replace)", key, key, key)
	}
	cur[last] = v
	return nil
}

func (d *DatasetCfg) validate(where string) error {
	if d.Generator == "" {
		return fmt.Errorf("%s.generator is missing", where)
	}
	if d.NumSamples <= 0 {
		return fmt.Errorf("%s.num_samples must be positive, got %d", where, d.NumSamples)
	}
	// Build the generator once so that an unknown generator or parameter, a value
	// of the wrong type or an impossible range is reported with the config.
	var tok tasks.Tokenizer = Tokenizer()
	if v, ok := d.GeneratorParameters["apply_chat_template"].(bool); ok && v {
		// The chat template comes with the evaluated model's tokenizer (EvaluateModel).
		tok = chatStub{Tokenizer()}
	}
	if _, err := tasks.New(d.Generator, d.GeneratorParameters, tok); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return nil
}

// chatStub stands in for a tokenizer with a chat template while a dataset's
// parameters are checked.
type chatStub struct{ *tasks.CharTokenizer }

func (chatStub) ChatParts() []string { return []string{"", "", "", ""} }

func (e *Experiment) validate() error {
	m := e.Model
	if m.Architecture == "" {
		e.Model.Architecture = "gpt2"
	}
	if e.Model.Architecture != "gpt2" && e.Model.Architecture != "llama" {
		return fmt.Errorf("model.architecture: %q is not supported for training (expected gpt2 or llama)", m.Architecture)
	}
	if m.Tokenizer == "" {
		e.Model.Tokenizer = "char"
	}
	if e.Model.Tokenizer != "char" {
		return fmt.Errorf("model.tokenizer: %q is not supported (expected char, the character-level tokenizer)", m.Tokenizer)
	}
	if m.IsPretrained {
		return fmt.Errorf("model.is_pretrained: downloading pretrained models is not supported; use load_from_checkpoint with checkpoint_filepath")
	}
	if m.LoadFromCheckpoint && m.CheckpointDir == "" {
		return fmt.Errorf("model.checkpoint_filepath is required with load_from_checkpoint")
	}
	if !m.LoadFromCheckpoint {
		if m.NLayer <= 0 || m.NHead <= 0 || m.NEmbd <= 0 || m.NPositions <= 0 {
			return fmt.Errorf("model: n_layer, n_head, n_embd and n_positions must be positive for a new model")
		}
		if m.NEmbd%m.NHead != 0 {
			return fmt.Errorf("model.n_embd %d is not a multiple of model.n_head %d", m.NEmbd, m.NHead)
		}
		if e.Model.Architecture == "gpt2" && (m.NKVHead != 0 || m.NInner != 0 || m.RopeTheta != 0) {
			return fmt.Errorf("model: n_kv_head, n_inner and rope_theta apply to architecture llama only")
		}
		if m.NKVHead < 0 || m.NInner < 0 || m.RopeTheta < 0 || (m.NKVHead > 0 && m.NHead%m.NKVHead != 0) {
			return fmt.Errorf("model.n_kv_head %d must divide model.n_head %d (n_inner and rope_theta ≥ 0)", m.NKVHead, m.NHead)
		}
	}
	if t := e.Training; t != nil {
		if t.Epochs <= 0 && t.Steps <= 0 {
			return fmt.Errorf("training: epochs or steps must be positive")
		}
		if t.BatchSize <= 0 {
			return fmt.Errorf("training.batch_size must be positive, got %d", t.BatchSize)
		}
		if t.LearningRate <= 0 {
			return fmt.Errorf("training.learning_rate must be positive, got %g", t.LearningRate)
		}
		if t.GradClip < 0 || t.WarmupSteps < 0 || t.MinLRRatio < 0 || t.MinLRRatio > 1 {
			return fmt.Errorf("training: grad_clip and warmup_steps must be ≥ 0, min_lr_ratio in [0, 1]")
		}
		if b := t.OptimizerParameters; b.Beta1 < 0 || b.Beta1 >= 1 || b.Beta2 < 0 || b.Beta2 >= 1 || b.WeightDecay < 0 {
			return fmt.Errorf("training.optimizer_parameters: beta1 and beta2 must be in [0, 1), weight_decay ≥ 0")
		}
		if t.SaveCheckpoint && t.CheckpointFilepath == "" {
			return fmt.Errorf("training.checkpoint_filepath is required with save_checkpoint")
		}
		if err := t.TrainDataset.validate("training.train_dataset"); err != nil {
			return err
		}
		if t.ValDataset != nil {
			if err := t.ValDataset.validate("training.val_dataset"); err != nil {
				return err
			}
		}
	} else if !m.LoadFromCheckpoint {
		return fmt.Errorf("training is null and model.load_from_checkpoint is false: there is no model to evaluate")
	}
	if ev := e.Evaluation; ev != nil {
		if ev.BatchSize <= 0 {
			return fmt.Errorf("evaluation.batch_size must be positive, got %d", ev.BatchSize)
		}
		for _, d := range []struct {
			n string
			c *DatasetCfg
		}{{"evaluation.dataset1", ev.Dataset1}, {"evaluation.dataset2", ev.Dataset2}} {
			if d.c == nil {
				return fmt.Errorf("%s is missing", d.n)
			}
			if err := d.c.validate(d.n); err != nil {
				return err
			}
		}
	}
	return nil
}

// IgnoreIndex returns the configured ignore index (default −100).
func (t *TrainCfg) ignoreIndex() int {
	if t.IgnoreIndex != nil {
		return *t.IgnoreIndex
	}
	return -100
}

// YAMLValue parses one YAML value as written after "key=" on a command line.
func YAMLValue(s string) (any, error) { return yamlValue(s) }

func yamlValue(s string) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed YAML (the parser failed: %v)", p)
		}
	}()
	var m map[string]any
	if err := yaml.Unmarshal([]byte("v: "+s), &m); err != nil {
		return nil, errors.New(strings.TrimSpace(yaml.FormatError(err, false, false)))
	}
	return m["v"], nil
}
