package derive

import (
	"context"
	"errors"

	"github.com/attnscope/attnscope/analysis"
	"github.com/attnscope/attnscope/tensor"
)

// The passes of followup-attention's analyzer (spec seeds.md §1.3, math §1.4) under
// their original function names, plus the analyses the original announced, each a thin
// wrapper of a package analysis function (whose doc comment gives the formula).

func wrap(t *tensor.Tensor, err error) (*Result, error) {
	if err != nil {
		return nil, err
	}
	return &Result{Tensor: t}, nil
}

// attn wraps a function of the attention tensor [L,H,N,N].
func attn(name, doc string, rowStochastic bool, f func(*tensor.Tensor) (*tensor.Tensor, error)) Spec {
	return Spec{Name: name, Doc: doc, Input: TakesAttention, RowStochastic: rowStochastic,
		Fn: func(_ context.Context, in *Input, _ Kwargs) (*Result, error) { return wrap(f(in.Tensor)) }}
}

// layerFunc is in.Layer for package analysis.
func layerFunc(in *Input) analysis.LayerFunc {
	return func(l int) (*tensor.Tensor, error) {
		t, err := in.Layer(l)
		return t, err
	}
}

// eachLayer marks s as computed layer by layer (Spec.Layers).
func eachLayer(s Spec) Spec { s.Layers = EachLayer; return s }

// oneLayer marks s as reading only the layer pick chooses.
func oneLayer(s Spec, pick func(layers int) int) Spec {
	s.Layers, s.Layer = OneLayer, pick
	return s
}

// headReduced marks s as using the attention only through the head reduction heads
// gives from its kwargs (Spec.Layers).
func headReduced(s Spec, heads func(Kwargs) analysis.HeadReduce) Spec {
	s.Layers, s.Heads = HeadReduced, heads
	return s
}

// fixedHeads is the head reduction of a pass that always reduces the same way.
func fixedHeads(how analysis.HeadReduce) func(Kwargs) analysis.HeadReduce {
	return func(Kwargs) analysis.HeadReduce { return how }
}

// kwargHeads is the head reduction named by kwarg condense_head_strategy.
func kwargHeads(kw Kwargs) analysis.HeadReduce {
	return analysis.HeadReduce(kw.String("condense_head_strategy"))
}

// attnCtx wraps a long-running, cancellable function of the attention tensor.
func attnCtx(name, doc string, f func(context.Context, *tensor.Tensor) (*tensor.Tensor, error)) Spec {
	return Spec{Name: name, Doc: doc, Input: TakesAttention,
		Fn: func(ctx context.Context, in *Input, _ Kwargs) (*Result, error) { return wrap(f(ctx, in.Tensor)) }}
}

// tensor wraps a function of any tensor (attention or an earlier pass's output).
func tensorSpec(name, doc string, f func(*tensor.Tensor) (*tensor.Tensor, error)) Spec {
	return Spec{Name: name, Doc: doc, Input: TakesTensor,
		Fn: func(_ context.Context, in *Input, _ Kwargs) (*Result, error) { return wrap(f(in.Tensor)) }}
}

var headReduce = []string{string(analysis.HeadSum), string(analysis.HeadMean), string(analysis.HeadMax)}

func transitiveOptions(kw Kwargs) analysis.TransitiveOptions {
	return analysis.TransitiveOptions{
		Heads:     analysis.HeadReduce(kw.String("condense_head_strategy")),
		Alpha:     kw.Float("alpha"),
		Beta:      kw.Float("beta"),
		Direction: analysis.Direction(kw.String("mult_direction")),
	}
}

func transitiveKwargs() map[string]KwargSpec {
	d := analysis.DefaultTransitive
	return map[string]KwargSpec{
		"condense_head_strategy": {Kind: KwString, Default: string(d.Heads), Enum: headReduce, Doc: "how the heads of a layer are combined"},
		"alpha":                  {Kind: KwFloat, Default: d.Alpha, Doc: "weight of the previous layers' transitive matrix"},
		"beta":                   {Kind: KwFloat, Default: d.Beta, Doc: "weight of the skip term"},
		"mult_direction":         {Kind: KwString, Default: string(d.Direction), Enum: []string{string(analysis.Left), string(analysis.Right)}, Doc: "side of the multiplication"},
	}
}

// promptLen returns the sample's number of prompt tokens, from its metadata.
func promptLen(in *Input) (int, error) {
	if in.Meta == nil || in.Meta.PromptLen < 1 {
		return 0, errors.New("needs the sample's prompt length (metadata)")
	}
	return in.Meta.PromptLen, nil
}

// promptTokenStrings returns the prompt's tokens as the run's tokenizer gave them
// (the original re-tokenizes text_prompt with the model's tokenizer: the same tokens).
func promptTokenStrings(in *Input) ([]string, error) {
	n, err := promptLen(in)
	if err != nil {
		return nil, err
	}
	if len(in.Meta.Tokens) < n {
		return nil, errors.New("needs the sample's token strings (metadata)")
	}
	return in.Meta.Tokens[:n], nil
}

func maxKPredictions(name string, k int) Spec {
	return Spec{Name: name, Doc: "cut the last two axes to the prompt plus the first k generated tokens", Input: TakesTensor, Layers: EachLayer,
		Fn: func(_ context.Context, in *Input, _ Kwargs) (*Result, error) {
			p, err := promptLen(in)
			if err != nil {
				return nil, err
			}
			return wrap(analysis.MaxKPredictions(in.Tensor, p, k))
		}}
}

func analysisSpecs() []Spec {
	return []Spec{
		headReduced(attnCtx("compute_followup_attention", "follow-up attention summed over consecutive layer pairs, [N,N]", analysis.FollowUp), fixedHeads(analysis.HeadSum)),
		headReduced(attnCtx("compute_followup_attention_all_layers", "follow-up attention of each consecutive layer pair, [L-1,N,N]", analysis.FollowUpAllLayers), fixedHeads(analysis.HeadSum)),
		headReduced(attnCtx("compute_followup_attention_scaled", "follow-up attention with layer pair l weighted by l+1, [N,N]", analysis.FollowUpScaled), fixedHeads(analysis.HeadSum)),
		// The maximum over layers of each layer's head maximum is the maximum over both.
		headReduced(attn("compute_naive_max_aggregation", "max over layers and heads, [N,N]", false, analysis.NaiveMax), fixedHeads(analysis.HeadMax)),
		{
			Name: "compute_naive_mean_aggregation", Doc: "mean over layers and heads, [N,N]", Input: TakesAttention, Layers: Streamed,
			Fn: func(_ context.Context, in *Input, _ Kwargs) (*Result, error) {
				if in.Tensor != nil {
					return wrap(analysis.NaiveMean(in.Tensor))
				}
				return wrap(analysis.NaiveMeanLayers(in.NumLayers, layerFunc(in)))
			},
		},
		oneLayer(attn("raw_weights_last_layer", "last layer, heads summed, [N,N]", false, analysis.RawLastLayer), func(L int) int { return L - 1 }),
		oneLayer(attn("raw_weights_first_layer", "first layer, heads summed, [N,N]", false, analysis.RawFirstLayer), func(int) int { return 0 }),
		headReduced(attn("compute_attention_rollout_from_tensor", "rollout of the head-mean matrices without residual (the original pass), [L,N,N]", false,
			func(t *tensor.Tensor) (*tensor.Tensor, error) {
				return analysis.Rollout(t, analysis.RolloutOptions{Heads: analysis.HeadMean})
			}), fixedHeads(analysis.HeadMean)),
		{
			Name: "compute_attention_rollout", Doc: "attention rollout (Abnar & Zuidema 2020), with the residual identity by default, [L,N,N]; rows must sum to 1",
			Input: TakesAttention, RowStochastic: true, Layers: HeadReduced, Heads: kwargHeads,
			Kwargs: map[string]KwargSpec{
				"add_residual":           {Kind: KwBool, Default: true, Doc: "rownorm(A+I) per layer"},
				"condense_head_strategy": {Kind: KwString, Default: string(analysis.HeadMean), Enum: headReduce, Doc: "how the heads of a layer are combined"},
			},
			Fn: func(_ context.Context, in *Input, kw Kwargs) (*Result, error) {
				return wrap(analysis.Rollout(in.Tensor, analysis.RolloutOptions{
					Heads: analysis.HeadReduce(kw.String("condense_head_strategy")), Residual: kw.Bool("add_residual")}))
			},
		},
		tensorSpec("sum_over_1st_dimension", "sum over the first axis (e.g. rollout layers), [...]", analysis.SumLayers),
		{
			Name: "compute_transitive_attention", Doc: "transitive attention recurrence over all layers, [L,N,N]", Input: TakesAttention,
			Layers: HeadReduced, Heads: kwargHeads, Kwargs: transitiveKwargs(),
			Fn: func(_ context.Context, in *Input, kw Kwargs) (*Result, error) {
				return wrap(analysis.Transitive(in.Tensor, transitiveOptions(kw)))
			},
		},
		{
			Name: "transitive_attention_two_layers", Doc: "PROPOSED transitive attention of the last two layers, [N,N]", Input: TakesAttention,
			Layers: HeadReduced, Heads: kwargHeads, Kwargs: transitiveKwargs(),
			Fn: func(_ context.Context, in *Input, kw Kwargs) (*Result, error) {
				return wrap(analysis.TransitiveTwoLayer(in.Tensor, transitiveOptions(kw)))
			},
		},
		tensorSpec("compute_mean_of_followers", "column sums divided by the number of rows at or below the diagonal, [N]", analysis.MeanOfFollowers),
		{
			Name: "extract_single_slice", Doc: "the sub-tensor at one index of an axis (negative from the end)", Input: TakesTensor,
			Kwargs: map[string]KwargSpec{
				"dim_to_extract":   {Kind: KwInt, Default: 0, Doc: "axis"},
				"slice_to_extract": {Kind: KwInt, Default: 0, Doc: "index along the axis"},
			},
			Fn: func(_ context.Context, in *Input, kw Kwargs) (*Result, error) {
				return wrap(analysis.ExtractSlice(in.Tensor, kw.Int("dim_to_extract"), kw.Int("slice_to_extract")))
			},
		},
		{
			Name: "extract_half_and_sum", Doc: "sum of the lower [0,k) or upper [k,size) half of an axis, k = size/2", Input: TakesTensor,
			Kwargs: map[string]KwargSpec{
				"dim":  {Kind: KwInt, Default: 0, Doc: "axis"},
				"half": {Kind: KwString, Default: "lower", Enum: []string{"lower", "upper"}},
			},
			Fn: func(_ context.Context, in *Input, kw Kwargs) (*Result, error) {
				return wrap(analysis.ExtractHalfAndSum(in.Tensor, kw.Int("dim"), kw.String("half")))
			},
		},
		{
			Name: "make_symmetric", Doc: "symmetrise an [N,N] matrix", Input: TakesTensor,
			Kwargs: map[string]KwargSpec{
				"strategy": {Kind: KwString, Default: analysis.SymSum, Enum: []string{analysis.SymSum, analysis.SymMean, analysis.SymMax}, Doc: "sum keeps the diagonal"},
			},
			Fn: func(_ context.Context, in *Input, kw Kwargs) (*Result, error) {
				return wrap(analysis.MakeSymmetric(in.Tensor, kw.String("strategy")))
			},
		},
		maxKPredictions("max_10_predictions", 10),
		maxKPredictions("max_50_predictions", 50),
		{
			Name: "generate_uniform_attention", Doc: "uniform causal baseline U[i,j] = 1/(i+1), N = the input's last axis", Input: TakesTensor,
			Layers: OneLayer, Layer: func(int) int { return 0 }, // only the shape is used
			Fn: func(_ context.Context, in *Input, _ Kwargs) (*Result, error) {
				if len(in.Tensor.Shape) == 0 {
					return nil, errors.New("input is a scalar")
				}
				return wrap(analysis.UniformBaseline(in.Tensor.Shape[len(in.Tensor.Shape)-1]))
			},
		},
		{
			Name: "generate_uniform_attention_from_metadata", Doc: "uniform causal baseline over the prompt's tokens", Input: TakesMetadata,
			Fn: func(_ context.Context, in *Input, _ Kwargs) (*Result, error) {
				n, err := promptLen(in)
				if err != nil {
					return nil, err
				}
				return wrap(analysis.UniformBaseline(n))
			},
		},
		{
			Name: "generate_copy_cat_attention", Doc: "C[i,j] = 1 where prompt tokens i and j are equal", Input: TakesMetadata,
			Fn: func(_ context.Context, in *Input, _ Kwargs) (*Result, error) {
				toks, err := promptTokenStrings(in)
				if err != nil {
					return nil, err
				}
				return wrap(analysis.CopyCatBaseline(toks))
			},
		},
		{
			Name: "generate_gaussian_attention_in_neighborhood_from_metadata", Doc: "Gaussian neighbourhood baseline over the prompt's tokens", Input: TakesMetadata,
			Kwargs: map[string]KwargSpec{"sigma": {Kind: KwFloat, Default: 10.0, Doc: "standard deviation in tokens"}},
			Fn: func(_ context.Context, in *Input, kw Kwargs) (*Result, error) {
				n, err := promptLen(in)
				if err != nil {
					return nil, err
				}
				return wrap(analysis.GaussianBaseline(n, kw.Float("sigma")))
			},
		},
	}
}
