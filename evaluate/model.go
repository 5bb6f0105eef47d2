package evaluate

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/attnscope/attnscope/model"
)

// ModelForwarder evaluates a Hugging Face causal LM loaded by package model (any
// family it supports, with its own tokenizer), as evaluate_transformers_model.py does
// with AutoModelForCausalLM(attn_implementation="eager"): teacher-forced predictions
// (argmax of every position's logits) and every layer's attention probabilities.
//
// Intervention, when set, edits activations in every forward pass (see
// model.Intervention).
type ModelForwarder struct {
	Model        model.Model
	Intervention *model.Intervention
}

// Forward runs each sequence alone (rows of a right-padded causal sequence do not see
// the padding, so the first len(sample) rows are the sample's own).
func (f ModelForwarder) Forward(ctx context.Context, ids [][]int, withAttention bool) ([][]int, [][][][]float32, error) {
	a, err := model.Architecture(f.Model.Config())
	if err != nil {
		return nil, nil, err
	}
	if !a.Causal() {
		return nil, nil, fmt.Errorf("evaluate: the model is not a causal LM (model_type %s)", f.Model.Config().ModelType)
	}
	preds := make([][]int, len(ids))
	var attn [][][][]float32
	if withAttention {
		attn = make([][][][]float32, len(ids))
	}
	for b, seq := range ids {
		var layers [][][]float32
		var rec model.Recorder
		if withAttention {
			rec = model.RecorderFunc(func(name string, shape []int, data []float32) error {
				l, ok := patternLayer(name)
				if !ok {
					return nil
				}
				if len(shape) != 3 || shape[1] != len(seq) || shape[2] != len(seq) {
					return fmt.Errorf("evaluate: %s has shape %v, want [heads, %d, %d]", name, shape, len(seq), len(seq))
				}
				for len(layers) <= l {
					layers = append(layers, nil)
				}
				nn := shape[1] * shape[2]
				heads := make([][]float32, shape[0])
				for h := range heads {
					heads[h] = append([]float32(nil), data[h*nn:(h+1)*nn]...)
				}
				layers[l] = heads
				return nil
			})
		}
		out, err := f.Model.Forward(ctx, model.Input{IDs: seq}, rec, model.ForwardOptions{Logits: model.LogitsAll, Intervention: f.Intervention})
		if err != nil {
			return nil, nil, err
		}
		if len(out.LogitsShape) != 2 || out.LogitsShape[0] != len(seq) {
			return nil, nil, fmt.Errorf("evaluate: logits of shape %v for %d tokens", out.LogitsShape, len(seq))
		}
		v := out.LogitsShape[1]
		preds[b] = make([]int, len(seq))
		for r := range seq {
			row := out.Logits[r*v : (r+1)*v]
			best := 0
			for j, x := range row {
				if x > row[best] {
					best = j
				}
			}
			preds[b][r] = best
		}
		if withAttention {
			for l, hs := range layers {
				if hs == nil {
					return nil, nil, fmt.Errorf("evaluate: the model recorded no attention for layer %d", l)
				}
			}
			attn[b] = layers
		}
	}
	return preds, attn, nil
}

// patternLayer parses "blocks.<l>.attn.pattern".
func patternLayer(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "blocks.")
	if !ok {
		return 0, false
	}
	num, ok := strings.CutSuffix(rest, ".attn.pattern")
	if !ok {
		return 0, false
	}
	l, err := strconv.Atoi(num)
	return l, err == nil
}
