package model

import (
	"strings"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/model/arch"
)

func parseConfig(b []byte) (*arch.Config, error) {
	raw, err := checkpoint.ParseConfig(b)
	if err != nil {
		return nil, err
	}
	return ParseConfig(raw)
}

func TestReferenceConfigs(t *testing.T) {
	tests := []struct {
		dir                     string
		typ                     string
		layers, heads, kv, hd   int
		inter                   int
		tie, parallel, attnBias bool
		theta, rot              float64
	}{
		{"tiny-gpt2", "gpt2", 3, 4, 4, 16, 256, true, false, true, 0, 1},
		{"tiny-bert", "bert", 3, 4, 4, 16, 256, true, false, true, 0, 1},
		{"tiny-llama", "llama", 3, 4, 2, 16, 176, false, false, false, 1e4, 1},
		{"tiny-qwen2", "qwen2", 3, 4, 1, 16, 176, true, false, true, 1e6, 1},
		{"tiny-gpt_neox", "gpt_neox", 3, 4, 4, 16, 256, false, true, true, 1e4, 0.25},
		{"code-llama-mini", "llama", 4, 4, 2, 32, 352, false, false, false, 1e4, 1},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			c, err := ReadConfig(refdata.Path(t, "models", tc.dir))
			if err != nil {
				t.Fatal(err)
			}
			got := []any{c.ModelType, c.Layers, c.Heads, c.KVHeads, c.HeadDim, c.Intermediate, c.TieWordEmbeddings, c.UseParallelResidual, c.AttentionBias}
			want := []any{tc.typ, tc.layers, tc.heads, tc.kv, tc.hd, tc.inter, tc.tie, tc.parallel, tc.attnBias}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("field %d = %v, want %v (config %+v)", i, got[i], want[i], c)
				}
			}
			if tc.theta != 0 && c.RopeTheta != tc.theta {
				t.Errorf("rope theta %g, want %g", c.RopeTheta, tc.theta)
			}
			if c.RotaryFraction != tc.rot {
				t.Errorf("rotary fraction %g, want %g", c.RotaryFraction, tc.rot)
			}
		})
	}
}

func TestConfigForms(t *testing.T) {
	old := `{"model_type":"gpt_neox","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"rotary_pct":0.5,"rope_theta":500,"intermediate_size":16}`
	c, err := parseConfig([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if c.RotaryFraction != 0.5 || c.RopeTheta != 500 {
		t.Errorf("old-style rope keys: %g %g", c.RotaryFraction, c.RopeTheta)
	}
	mis, err := parseConfig([]byte(`{"model_type":"mistral","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"sliding_window":4096}`))
	if err != nil || mis.SlidingWindow != 4096 {
		t.Errorf("mistral sliding window: %v %v", mis, err)
	}
	qw, err := parseConfig([]byte(`{"model_type":"qwen2","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"sliding_window":4096,"use_sliding_window":false}`))
	if err != nil || qw.SlidingWindow != 0 {
		t.Errorf("qwen2 without sliding window: %v %v", qw, err)
	}
	bad := []struct{ json, want string }{
		{`{"vocab_size":3}`, "model_type"},
		{`{"model_type":"gpt3","vocab_size":10,"n_embd":8}`, `field model_type: "gpt3" is not supported (expected one of gpt2, bert`},
		{`{"model_type":"llama","vocab_size":"x"}`, "field vocab_size"},
		{`{"model_type":"llama","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":3}`, "does not divide"},
		{`{"model_type":"llama","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"rope_parameters":{"rope_type":"yarn"}}`, "rope_type"},
		{`{"model_type":"llama","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"rope_scaling":{"rope_type":"ntk-by-parts","factor":2}}`, `field rope_scaling.rope_type: "ntk-by-parts" is not supported (expected one of default, linear, dynamic, yarn, longrope, llama3)`},
		{`{"model_type":"llama","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"rope_parameters":{"type":"llama3","factor":8}}`, "field rope_parameters.low_freq_factor is missing"},
		{`{"model_type":"llama","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"rope_scaling":{"type":"longrope","short_factor":[1],"long_factor":[1,2]}}`, "field rope_scaling.short_factor has 1 values, expected 2"},
		{`{"model_type":"llama","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"rope_scaling":{"type":"dynamic","factor":2}}`, "field max_position_embeddings is missing"},
		{`{"model_type":"mistral","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"sliding_window":-3}`, "field sliding_window: -3 is negative"},
		{`{"model_type":"mistral","vocab_size":10,"hidden_size":8,"num_hidden_layers":2,"num_attention_heads":2,"layer_types":["full_attention"]}`, "field layer_types: 1 entries for num_hidden_layers 2"},
		{`{"model_type":"mistral","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"layer_types":["chunked_attention"]}`, `field layer_types[0]: "chunked_attention" is not supported`},
		{`{"model_type":"mistral","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"sliding_window":null,"layer_types":["sliding_attention"]}`, "sliding_window is missing or null"},
		{`[1]`, "JSON object"},
		{`{"model_type":"llama","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":-1}`, "negative"},
		// Errors name the field as the family's file spells it.
		{`{"model_type":"gpt2","vocab_size":10,"n_embd":8,"n_layer":1,"n_head":3}`, "field n_head: 3 does not divide n_embd 8"},
		{`{"model_type":"gpt2","vocab_size":10,"n_embd":8,"n_layer":1}`, "field n_head is missing"},
		{`{"model_type":"gpt2","vocab_size":10,"n_embd":8,"n_head":2}`, "field n_layer is missing"},
		{`{"model_type":"gpt2","vocab_size":10,"n_embd":8,"n_layer":1,"n_head":2,"n_positions":-4}`, "field n_positions is negative"},
		{`{"model_type":"llama","vocab_size":10,"hidden_size":8,"num_hidden_layers":1}`, "field num_attention_heads is missing"},
		{`{"model_type":"bert","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"layer_norm_eps":"x"}`, "field layer_norm_eps: expected a number"},
	}
	for _, b := range bad {
		if _, err := parseConfig([]byte(b.json)); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: error %v, want mention of %q", b.json, err, b.want)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"model_type":"gpt2","vocab_size":10,"n_embd":8,"n_layer":1,"n_head":2}`))
	f.Add([]byte(`{"model_type":"llama","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"rope_parameters":{"rope_theta":1e4}}`))
	f.Add([]byte(`{"model_type":"gpt_neox","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"rotary_pct":0.25,"eos_token_id":[1,2]}`))
	f.Add([]byte(`{"model_type":"bert","vocab_size":-1}`))
	f.Add([]byte(`{"model_type":"llama","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"max_position_embeddings":16,"rope_scaling":{"rope_type":"yarn","factor":4,"original_max_position_embeddings":8}}`))
	f.Add([]byte(`{"model_type":"phi3","vocab_size":10,"hidden_size":8,"num_hidden_layers":2,"num_attention_heads":2,"sliding_window":3,"rope_scaling":{"type":"longrope","short_factor":[1,1],"long_factor":[2,2]}}`))
	f.Add([]byte(`{"model_type":"gpt_neo","vocab_size":10,"hidden_size":8,"num_layers":2,"num_heads":2,"attention_types":[[["global","local"],1]],"window_size":4}`))
	f.Add([]byte(`{"model_type":"gemma2","vocab_size":10,"hidden_size":8,"num_hidden_layers":2,"num_attention_heads":2,"layer_types":["sliding_attention","full_attention"],"sliding_window":2}`))
	f.Add([]byte(`{"model_type":"codegen","vocab_size":10,"n_embd":8,"n_layer":1,"n_head":4,"rotary_dim":2}`))
	f.Add([]byte(`{"model_type":"roberta","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"max_position_embeddings":10,"pad_token_id":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseConfig(b)
		if err != nil {
			return
		}
		for l := range c.Layers {
			_ = c.Window(l)
		}
		if c.RotaryFraction > 0 && c.HeadDim > 0 {
			rot := int(float64(c.HeadDim) * c.RotaryFraction)
			arch.InvFreq(c, rot-rot%2, 2*c.MaxPositions+1)
		}
		if c.Hidden <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.KVHeads <= 0 || c.HeadDim <= 0 || c.VocabSize <= 0 || c.Heads%c.KVHeads != 0 {
			t.Fatalf("accepted an unusable config: %+v", c)
		}
	})
}
