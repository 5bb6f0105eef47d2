package train

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/atomicfile"
)

// SpecialIDs are the special tokens recorded in config.json.
type SpecialIDs struct{ BOS, EOS, Pad int }

// HFConfig returns the Hugging Face config.json of a GPT-2 model (no dropout,
// tied embeddings, gelu_new).
func (c GPT2Config) HFConfig(ids SpecialIDs) map[string]any {
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
		"layer_norm_epsilon":  1e-5,
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
func Save(dir string, cfg GPT2Config, weights [][]float32, ids SpecialIDs, metadata map[string]string) error {
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
func Load(dir string) (GPT2Config, [][]float32, error) {
	hc, err := checkpoint.ReadConfig(dir)
	if err != nil {
		return GPT2Config{}, nil, err
	}
	if hc.ModelType != "gpt2" {
		return GPT2Config{}, nil, fmt.Errorf("load %s: config.json model_type is %q, expected \"gpt2\"", dir, hc.ModelType)
	}
	if hc.Intermediate != 4*hc.Hidden {
		return GPT2Config{}, nil, fmt.Errorf("load %s: config.json n_inner %d is not 4·n_embd", dir, hc.Intermediate)
	}
	cfg := GPT2Config{VocabSize: hc.VocabSize, NPositions: hc.MaxPositions, NEmbd: hc.Hidden, NLayer: hc.Layers, NHead: hc.Heads}
	if err := cfg.validate(); err != nil {
		return GPT2Config{}, nil, fmt.Errorf("load %s: %w", dir, err)
	}
	w, err := checkpoint.OpenWeights(dir)
	if err != nil {
		return GPT2Config{}, nil, err
	}
	defer w.Close()
	var out [][]float32
	for _, s := range cfg.Params() {
		v, err := w.Float32(s.Name, s.Shape)
		if err != nil {
			return GPT2Config{}, nil, fmt.Errorf("load %s: %w", dir, err)
		}
		out = append(out, append([]float32(nil), v...))
	}
	return cfg, out, nil
}
