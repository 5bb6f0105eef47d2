package derive

import (
	"fmt"

	"github.com/attnscope/attnscope/analysis/code"
	"github.com/attnscope/attnscope/store"
)

// AxesFunc declares a function's output axes from its input's axes and kwargs.
type AxesFunc = func(in []store.Axis, kw Kwargs) ([]store.Axis, error)

func axis(name string, labels ...string) store.Axis { return store.Axis{Name: name, Labels: labels} }

var (
	axLayer     = axis(store.AxisLayer)
	axLayerPair = axis(store.AxisLayerPair)
	axHead      = axis(store.AxisHead)
	axQuery     = axis(store.AxisQuery)
	axKey       = axis(store.AxisKey)
	axUnit      = axis(store.AxisUnit)
	axLine      = axis(store.AxisLine)
	axChar      = axis(store.AxisChar)
	axPoint     = axis(store.AxisPoint)
)

// fixedAxes: the output's axes do not depend on the input.
func fixedAxes(axes ...store.Axis) AxesFunc {
	return func([]store.Axis, Kwargs) ([]store.Axis, error) { return axes, nil }
}

// sameAxes: the output has the input's axes (e.g. a symmetrised or cut matrix).
func sameAxes(in []store.Axis, _ Kwargs) ([]store.Axis, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("a tensor input expected")
	}
	return in, nil
}

// dropAxis: the axis given by kwarg (an index into the input's axes) is removed (a
// slice taken or summed); an empty kwarg name drops the first axis.
func dropAxis(kwarg string) AxesFunc {
	return func(in []store.Axis, kw Kwargs) ([]store.Axis, error) {
		d := 0
		if kwarg != "" {
			d = kw.Int(kwarg)
		}
		if d < 0 || d >= len(in) {
			return nil, fmt.Errorf("axis %d out of range for an input with %d axes", d, len(in))
		}
		out := append([]store.Axis(nil), in[:d]...)
		return append(out, in[d+1:]...), nil
	}
}

// leadingAxes: the input's axes but its last two (the token matrix), followed by tail.
func leadingAxes(in []store.Axis, tail ...store.Axis) ([]store.Axis, error) {
	if len(in) < 2 {
		return nil, fmt.Errorf("token×token matrices in the last two axes expected")
	}
	return append(append([]store.Axis(nil), in[:len(in)-2]...), tail...), nil
}

// headCollapseCriteria names the entries of head_collapse's last axis.
var headCollapseCriteria = []string{"normalised entropy", "row JS distance", "uniform collapse", "rank collapse"}

// headRedundancyColumns names the columns of head_redundancy's records.
var headRedundancyColumns = []string{"layer", "head 1", "head 2", "JS distance"}

func codeCategoryNames() []string {
	var out []string
	for _, c := range code.Categories() {
		out = append(out, string(c))
	}
	return out
}

// builtinAxes declares the output axes of every built-in function.
var builtinAxes = map[string]AxesFunc{
	"compute_followup_attention":                                fixedAxes(axQuery, axKey),
	"compute_followup_attention_all_layers":                     fixedAxes(axLayerPair, axQuery, axKey),
	"compute_followup_attention_scaled":                         fixedAxes(axQuery, axKey),
	"compute_naive_max_aggregation":                             fixedAxes(axQuery, axKey),
	"compute_naive_mean_aggregation":                            fixedAxes(axQuery, axKey),
	"raw_weights_last_layer":                                    fixedAxes(axQuery, axKey),
	"raw_weights_first_layer":                                   fixedAxes(axQuery, axKey),
	"compute_attention_rollout_from_tensor":                     fixedAxes(axLayer, axQuery, axKey),
	"compute_attention_rollout":                                 fixedAxes(axLayer, axQuery, axKey),
	"sum_over_1st_dimension":                                    dropAxis(""),
	"compute_transitive_attention":                              fixedAxes(axLayer, axQuery, axKey),
	"transitive_attention_two_layers":                           fixedAxes(axQuery, axKey),
	"compute_mean_of_followers":                                 func(in []store.Axis, _ Kwargs) ([]store.Axis, error) { return leadingAxes(in, axKey) },
	"extract_single_slice":                                      dropAxis("dim_to_extract"),
	"extract_half_and_sum":                                      dropAxis("dim"),
	"make_symmetric":                                            sameAxes,
	"max_10_predictions":                                        sameAxes,
	"max_50_predictions":                                        sameAxes,
	"generate_uniform_attention":                                fixedAxes(axQuery, axKey),
	"generate_uniform_attention_from_metadata":                  fixedAxes(axQuery, axKey),
	"generate_copy_cat_attention":                               fixedAxes(axQuery, axKey),
	"generate_gaussian_attention_in_neighborhood_from_metadata": fixedAxes(axQuery, axKey),
	"compute_attention_flow_from_tensor":                        fixedAxes(axis(store.AxisLayerToken), axis(store.AxisLayerToken)),
	"attention_flow_values":                                     fixedAxes(axLayer, axQuery, axKey),
	"attention_entropy":                                         fixedAxes(axLayer, axHead, axQuery),
	"attention_max_weight":                                      fixedAxes(axLayer, axHead, axQuery),
	"attention_sparsity":                                        fixedAxes(axLayer, axHead),
	"attention_received":                                        fixedAxes(axLayer, axKey),
	"js_distance_units":                                         fixedAxes(axUnit, axUnit),
	"js_distance_layers":                                        fixedAxes(axLayer, axLayer),
	"crispiness":                                                fixedAxes(axLayer, axHead, axPoint),
	"head_diversity":                                            fixedAxes(axLayer),
	"head_redundancy":                                           fixedAxes(axis(store.AxisRecord), axis(store.AxisColumn, headRedundancyColumns...)),
	"head_collapse":                                             fixedAxes(axLayer, axHead, axis(store.AxisCriterion, headCollapseCriteria...)),
	"ground_truth_lines": func(in []store.Axis, _ Kwargs) ([]store.Axis, error) {
		return leadingAxes(in, axis(store.AxisCriterion, groundTruthCriteria...))
	},
	"attention_per_code_category": func(in []store.Axis, _ Kwargs) ([]store.Axis, error) {
		cat := axis(store.AxisCategory, codeCategoryNames()...)
		if len(in) == 4 {
			return []store.Axis{axLayer, axHead, cat}, nil
		}
		if len(in) == 1 || len(in) == 2 {
			return []store.Axis{cat}, nil
		}
		return nil, fmt.Errorf("input [N], [N,N] or [L,H,N,N] expected")
	},
	"attention_to_lines": func(in []store.Axis, kw Kwargs) ([]store.Axis, error) {
		if kw.Bool("rows") {
			return leadingAxes(in, axLine, axLine)
		}
		if len(in) < 2 {
			return nil, fmt.Errorf("token×token matrices in the last two axes expected")
		}
		return leadingAxes(in, in[len(in)-2], axLine)
	},
	"attention_to_chars": func(in []store.Axis, _ Kwargs) ([]store.Axis, error) {
		if len(in) == 1 {
			return []store.Axis{axChar}, nil
		}
		return leadingAxes(in, axChar)
	},
}
