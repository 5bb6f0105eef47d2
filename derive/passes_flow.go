package derive

import (
	"context"

	"github.com/attnscope/attnscope/analysis"
	"github.com/attnscope/attnscope/tensor"
)

func flowKwargs() map[string]KwargSpec {
	return map[string]KwargSpec{
		"matrices": {Kind: KwString, Default: string(analysis.FlowRaw),
			Enum: []string{string(analysis.FlowRaw), string(analysis.FlowResidual), string(analysis.FlowRollout)},
			Doc:  "layer matrices: head mean (raw, the original pass), 0.5·A+0.5·I (residual) or rollout"},
		"n_bin_weights": {Kind: KwInt, Default: 0, Doc: "bin capacities on a grid of this many values (0: exact weights; the original wrapper used 100)"},
	}
}

// flowSpecs are attention flow (Abnar & Zuidema 2020) passes: the original's flow
// matrix (compute_attention_flow_from_tensor, whose original always failed, spec §1.12,
// here working) and the raw max-flow values.
func flowSpecs() []Spec {
	matrices := func(in *Input, kw Kwargs) (*tensor.Tensor, error) {
		return analysis.FlowMatrices(in.Tensor, analysis.FlowInput(kw.String("matrices")))
	}
	full := flowKwargs()
	full["previous_layer_columns"] = KwargSpec{Kind: KwBool, Default: false,
		Doc: "store each layer's flow in the previous layer's column block, as the original does (spec §1.12)"}
	return []Spec{
		{
			Name: "compute_attention_flow_from_tensor", Doc: "attention flow matrix ((L+1)N)², rows normalised, flows into the input tokens", Input: TakesAttention,
			Layers: HeadReduced, Heads: fixedHeads(analysis.HeadMean),
			Kwargs: full,
			Fn: func(ctx context.Context, in *Input, kw Kwargs) (*Result, error) {
				c, err := matrices(in, kw)
				if err != nil {
					return nil, err
				}
				return wrap(analysis.AttentionFlow(ctx, c, analysis.FlowOptions{Bins: kw.Int("n_bin_weights"), PreviousLayerColumns: kw.Bool("previous_layer_columns")}))
			},
		},
		{
			Name: "attention_flow_values", Doc: "max-flow from token i after layer l+1 to input token v, [L,N,N]", Input: TakesAttention,
			Layers: HeadReduced, Heads: fixedHeads(analysis.HeadMean),
			Kwargs: flowKwargs(),
			Fn: func(ctx context.Context, in *Input, kw Kwargs) (*Result, error) {
				c, err := matrices(in, kw)
				if err != nil {
					return nil, err
				}
				return wrap(analysis.FlowValues(ctx, c, kw.Int("n_bin_weights")))
			},
		},
	}
}
