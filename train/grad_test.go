package train

import (
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/model"
)

// gradConfigs are small random configs of every family package model knows,
// with their distinguishing options on: GPT-2 (Conv1D, tied head), BERT
// (post-norm, token types, MLM head, no mask), Llama (RMSNorm, RoPE,
// grouped-query attention, SwiGLU), Qwen2 (q/k/v biases, one kv head),
// GPT-NeoX (partial rotary, parallel residual).
var gradConfigs = map[string]string{
	"gpt2":     `{"model_type":"gpt2","vocab_size":11,"n_embd":8,"n_layer":2,"n_head":2,"n_positions":8}`,
	"bert":     `{"model_type":"bert","vocab_size":11,"hidden_size":8,"num_hidden_layers":2,"num_attention_heads":2,"intermediate_size":12,"max_position_embeddings":8,"type_vocab_size":2,"hidden_act":"gelu"}`,
	"llama":    `{"model_type":"llama","vocab_size":11,"hidden_size":8,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":12,"max_position_embeddings":8,"hidden_act":"silu","rms_norm_eps":1e-5}`,
	"qwen2":    `{"model_type":"qwen2","vocab_size":11,"hidden_size":8,"num_hidden_layers":2,"num_attention_heads":2,"num_key_value_heads":1,"intermediate_size":12,"max_position_embeddings":8,"hidden_act":"silu","tie_word_embeddings":true,"rope_theta":1000000}`,
	"gpt_neox": `{"model_type":"gpt_neox","vocab_size":11,"hidden_size":16,"num_hidden_layers":2,"num_attention_heads":2,"intermediate_size":24,"max_position_embeddings":8,"hidden_act":"gelu","rotary_pct":0.25,"use_parallel_residual":true}`,
	// Families and options added with RoPE scaling and sliding windows (windows of 3 over 5 tokens).
	"mistral-yarn": `{"model_type":"mistral","vocab_size":11,"hidden_size":8,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":12,"max_position_embeddings":8,"sliding_window":3,"rope_scaling":{"rope_type":"yarn","factor":4.0}}`,
	"gpt_neo":      `{"model_type":"gpt_neo","vocab_size":11,"hidden_size":8,"num_layers":2,"num_heads":2,"max_position_embeddings":8,"window_size":3,"attention_types":[[["global","local"],1]]}`,
	"gptj":         `{"model_type":"gptj","vocab_size":11,"n_embd":16,"n_layer":2,"n_head":2,"n_positions":8,"rotary_dim":4}`,
	"codegen":      `{"model_type":"codegen","vocab_size":11,"n_embd":16,"n_layer":2,"n_head":4,"n_positions":8,"rotary_dim":2}`,
	"roberta":      `{"model_type":"roberta","vocab_size":11,"hidden_size":8,"num_hidden_layers":2,"num_attention_heads":2,"intermediate_size":12,"max_position_embeddings":10,"pad_token_id":1,"type_vocab_size":1}`,
	"phi":          `{"model_type":"phi","vocab_size":11,"hidden_size":16,"num_hidden_layers":2,"num_attention_heads":2,"intermediate_size":24,"max_position_embeddings":8,"partial_rotary_factor":0.5}`,
	"phi3":         `{"model_type":"phi3","vocab_size":11,"hidden_size":8,"num_hidden_layers":2,"num_attention_heads":2,"num_key_value_heads":1,"intermediate_size":12,"max_position_embeddings":8,"sliding_window":3}`,
	"gemma2":       `{"model_type":"gemma2","vocab_size":11,"hidden_size":8,"num_hidden_layers":2,"num_attention_heads":2,"num_key_value_heads":1,"head_dim":4,"intermediate_size":12,"max_position_embeddings":8,"sliding_window":3,"attn_logit_softcapping":5.0,"final_logit_softcapping":3.0,"query_pre_attn_scalar":6}`,
}

// TestGradientsMatchFiniteDifferences checks the gradient of the unified
// architecture (the graph train builds from model/arch) for every family in
// float64: for a random projection of the logits, loss = Σ R ⊙ logits over a
// batch of two sequences, every parameter's autodiff gradient (some entries
// of each tensor) equals the central difference (loss(θ+h) − loss(θ−h))/2h.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	be, err := Backend("")
	if err != nil {
		t.Fatal(err)
	}
	for family, js := range gradConfigs {
		t.Run(family, func(t *testing.T) {
			raw, err := checkpoint.ParseConfig([]byte(js))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := model.ParseConfig(raw)
			if err != nil {
				t.Fatal(err)
			}
			n, err := newNet(cfg)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(7, 11))
			const B, T = 2, 5
			ids := make([]int32, B*T)
			for i := range ids {
				ids[i] = int32(rng.IntN(cfg.VocabSize))
			}
			params := make([][]float64, len(n.params))
			for i, p := range n.params {
				params[i] = make([]float64, numel(p.Shape))
				for j := range params[i] {
					params[i][j] = rng.NormFloat64() * 0.5
				}
			}
			proj := make([]float64, B*T*cfg.VocabSize)
			for i := range proj {
				proj[i] = rng.NormFloat64()
			}
			np := len(params)
			lossOf := func(in []*Node) *Node {
				logits, _ := n.forward(in[:np], in[np], false)
				r := Reshape(Const(in[np].Graph(), proj), B, T, cfg.VocabSize)
				return ReduceAllSum(Mul(logits, r))
			}
			lossExec, err := NewExec(be, func(in []*Node) *Node { return lossOf(in) })
			if err != nil {
				t.Fatal(err)
			}
			gradExec, err := NewExec(be, func(in []*Node) []*Node { return Gradient(lossOf(in), in[:np]...) })
			if err != nil {
				t.Fatal(err)
			}
			args := func() []any {
				a := make([]any, 0, np+1)
				for i, p := range n.params {
					a = append(a, tensors.FromFlatDataAndDimensions(append([]float64(nil), params[i]...), p.Shape...))
				}
				return append(a, tensors.FromFlatDataAndDimensions(ids, B, T))
			}
			loss := func() float64 {
				out, err := lossExec.Call(args()...)
				if err != nil {
					t.Fatal(err)
				}
				return out[0].Value().(float64)
			}
			grads, err := gradExec.Call(args()...)
			if err != nil {
				t.Fatal(err)
			}
			const h = 1e-5
			checked := 0
			for i, p := range n.params {
				g, err := tensors.CopyFlatData[float64](grads[i])
				if err != nil {
					t.Fatal(err)
				}
				for range 3 {
					j := rng.IntN(len(params[i]))
					orig := params[i][j]
					params[i][j] = orig + h
					up := loss()
					params[i][j] = orig - h
					down := loss()
					params[i][j] = orig
					fd := (up - down) / (2 * h)
					if d := math.Abs(fd - g[j]); d > 1e-6*math.Max(1, math.Abs(fd)) {
						t.Errorf("%s[%d]: autodiff gradient %.10g, central difference %.10g (|Δ| %.2g)", p.Name, j, g[j], fd, d)
					}
					checked++
				}
			}
			if checked < 3*len(n.params) || len(n.params) < 10 {
				t.Fatalf("checked %d entries of %d parameters", checked, len(n.params))
			}
		})
	}
}

// TestArchTrainerEveryFamily: NewArchTrainer trains a model of every family
// through its model/arch graph: 30 AdamW steps on one batch at least halve the
// loss, which starts near ln(vocab).
func TestArchTrainerEveryFamily(t *testing.T) {
	be, err := Backend("")
	if err != nil {
		t.Fatal(err)
	}
	for family, js := range gradConfigs {
		t.Run(family, func(t *testing.T) {
			raw, err := checkpoint.ParseConfig([]byte(js))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := model.ParseConfig(raw)
			if err != nil {
				t.Fatal(err)
			}
			params, err := Params(cfg)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := NewArchTrainer(be, cfg, Hyper{LearningRate: 1e-2, WarmupSteps: 2, ClipNorm: 1}, InitWeights(params, cfg.Layers, 5))
			if err != nil {
				t.Fatal(err)
			}
			// Counting sequences: the next token is the current one plus one.
			ids, targets := make([][]int, 4), make([][]int, 4)
			for b := range ids {
				for i := range 8 {
					ids[b] = append(ids[b], (3*b+i)%cfg.VocabSize)
				}
				targets[b] = append(append([]int(nil), ids[b][1:]...), -100)
			}
			var first, last StepResult
			for i := range 30 {
				r, err := tr.Step(t.Context(), ids, targets)
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					first = r
				}
				last = r
			}
			if math.Abs(first.Loss-math.Log(float64(cfg.VocabSize))) > 0.3 {
				t.Errorf("initial loss %.3f, want ≈ ln %d", first.Loss, cfg.VocabSize)
			}
			if last.Loss > first.Loss/2 {
				t.Errorf("30 steps on one batch: loss %.3f → %.3f, want at least halved", first.Loss, last.Loss)
			}
		})
	}
}
