package train

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/model"
)

// SpecialIDs are the special tokens recorded in config.json.
type SpecialIDs struct{ BOS, EOS, Pad int }

// HFConfig returns the Hugging Face config.json of the model: GPT-2 (no
// dropout, tied embeddings, gelu_new) or Llama (silu, no biases, untied head).
func (c ModelConfig) HFConfig(ids SpecialIDs) map[string]any {
	if c.isLlama() {
		return map[string]any{
			"architectures":           []string{"LlamaForCausalLM"},
			"model_type":              "llama",
			"vocab_size":              c.VocabSize,
			"hidden_size":             c.NEmbd,
			"intermediate_size":       c.inner(),
			"num_hidden_layers":       c.NLayer,
			"num_attention_heads":     c.NHead,
			"num_key_value_heads":     c.kvHeads(),
			"head_dim":                c.NEmbd / c.NHead,
			"max_position_embeddings": c.NPositions,
			"hidden_act":              "silu",
			"rms_norm_eps":            c.normEps(),
			"rope_parameters":         map[string]any{"rope_theta": c.theta(), "rope_type": "default"},
			"rope_theta":              c.theta(),
			"attention_bias":          false,
			"mlp_bias":                false,
			"attention_dropout":       0.0,
			"tie_word_embeddings":     false,
			"initializer_range":       0.02,
			"bos_token_id":            ids.BOS,
			"eos_token_id":            ids.EOS,
			"pad_token_id":            ids.Pad,
			"dtype":                   "float32",
			"use_cache":               true,
		}
	}
	return map[string]any{
		"architectures":       []string{"GPT2LMHeadModel"},
		"model_type":          "gpt2",
		"activation_function": "gelu_new",
		"vocab_size":          c.VocabSize,
		"n_positions":         c.NPositions,
		"n_embd":              c.NEmbd,
		"n_layer":             c.NLayer,
		"n_head":              c.NHead,
		"n_inner":             nil,
		"layer_norm_epsilon":  c.normEps(),
		"initializer_range":   0.02,
		"attn_pdrop":          0.0, "embd_pdrop": 0.0, "resid_pdrop": 0.0,
		"scale_attn_weights":              true,
		"scale_attn_by_inverse_layer_idx": false,
		"reorder_and_upcast_attn":         false,
		"tie_word_embeddings":             true,
		"bos_token_id":                    ids.BOS,
		"eos_token_id":                    ids.EOS,
		"pad_token_id":                    ids.Pad,
		"dtype":                           "float32",
		"use_cache":                       true,
	}
}

// Save writes dir/model.safetensors (float32, Hugging Face GPT-2 tensor names)
// and dir/config.json, each atomically. metadata goes into the safetensors
// header (__metadata__, with "format": "pt" added as transformers expects).
func Save(dir string, cfg ModelConfig, weights [][]float32, ids SpecialIDs, metadata map[string]string) error {
	specs := cfg.Params()
	if len(weights) != len(specs) {
		return fmt.Errorf("save %s: %d tensors for %d parameters", dir, len(weights), len(specs))
	}
	infos := make([]checkpoint.TensorInfo, len(specs))
	for i, s := range specs {
		infos[i] = checkpoint.TensorInfo{Name: s.Name, DType: checkpoint.F32, Shape: s.Shape}
	}
	md := map[string]string{"format": "pt"}
	for k, v := range metadata {
		md[k] = v
	}
	if err := checkpoint.WriteSafetensors(filepath.Join(dir, "model.safetensors"), infos, weights, md); err != nil {
		return err
	}
	js, err := json.MarshalIndent(cfg.HFConfig(ids), "", "  ")
	if err != nil {
		return fmt.Errorf("save %s: config.json: %w", dir, err)
	}
	return atomicfile.WriteFile(filepath.Join(dir, "config.json"), append(js, '\n'))
}

// Load reads a GPT-2 checkpoint folder written by Save (or any Hugging Face
// GPT2LMHeadModel with tied embeddings) back into a config and weights.
func Load(dir string) (ModelConfig, [][]float32, error) {
	hc, err := model.ReadConfig(dir)
	if err != nil {
		return ModelConfig{}, nil, err
	}
	var cfg ModelConfig
	switch hc.ModelType {
	case "gpt2":
		if hc.Intermediate != 4*hc.Hidden {
			return ModelConfig{}, nil, fmt.Errorf("load %s: config.json n_inner %d is not 4·n_embd", dir, hc.Intermediate)
		}
		cfg = ModelConfig{Arch: "gpt2", VocabSize: hc.VocabSize, NPositions: hc.MaxPositions, NEmbd: hc.Hidden, NLayer: hc.Layers, NHead: hc.Heads}
	case "llama":
		switch {
		case hc.HeadDim*hc.Heads != hc.Hidden:
			return ModelConfig{}, nil, fmt.Errorf("load %s: config.json head_dim %d × heads %d is not hidden_size %d", dir, hc.HeadDim, hc.Heads, hc.Hidden)
		case hc.AttentionBias || hc.MLPBias || hc.TieWordEmbeddings:
			return ModelConfig{}, nil, fmt.Errorf("load %s: config.json: attention_bias, mlp_bias and tie_word_embeddings must be false for training", dir)
		case hc.RotaryFraction != 1:
			return ModelConfig{}, nil, fmt.Errorf("load %s: config.json: partial rotary embeddings are not supported for training", dir)
		}
		cfg = ModelConfig{Arch: "llama", VocabSize: hc.VocabSize, NPositions: hc.MaxPositions, NEmbd: hc.Hidden, NLayer: hc.Layers,
			NHead: hc.Heads, NKVHead: hc.KVHeads, NInner: hc.Intermediate, RopeTheta: hc.RopeTheta}
	default:
		return ModelConfig{}, nil, fmt.Errorf("load %s: config.json model_type is %q, expected \"gpt2\" or \"llama\"", dir, hc.ModelType)
	}
	if hc.NormEps != cfg.normEps() {
		cfg.NormEps = hc.NormEps
	}
	if err := cfg.validate(); err != nil {
		return ModelConfig{}, nil, fmt.Errorf("load %s: %w", dir, err)
	}
	w, err := checkpoint.OpenWeights(dir)
	if err != nil {
		return ModelConfig{}, nil, err
	}
	defer w.Close()
	var out [][]float32
	for _, s := range cfg.Params() {
		v, err := w.Float32(s.Name, s.Shape)
		if err != nil {
			return ModelConfig{}, nil, fmt.Errorf("load %s: %w", dir, err)
		}
		out = append(out, append([]float32(nil), v...))
	}
	return cfg, out, nil
}
