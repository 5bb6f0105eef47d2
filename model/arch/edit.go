package arch

import (
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
)

// Hook names of the activations inside attention that an Edit can change, as
// TransformerLens names them under blocks.<l>.attn (Nanda & Bloom 2022,
// TransformerLens HookedTransformer): queries and keys after RoPE, values,
// the masked scores before softmax, the pattern after softmax and each
// head's output before the output projection.
const (
	HookQ       = "hook_q"           // [B, heads, T, head_dim]
	HookK       = "hook_k"           // [B, kv_heads, C, head_dim]
	HookV       = "hook_v"           // [B, kv_heads, C, head_dim]
	HookScores  = "hook_attn_scores" // [B, heads, T, C], masked, before softmax (float64 with AttentionInputs.Float64)
	HookPattern = "hook_pattern"     // [B, heads, T, C], after softmax (float64 with AttentionInputs.Float64)
	HookZ       = "hook_z"           // [B, heads, T, head_dim], pattern·v per head
)

// Edit changes one activation x inside the graph (an intervention): where Sel
// is true and x ≥ Min (Min nil: no threshold), x becomes x·Mul + Add; then,
// where Renorm (shape x's with the last axis 1; nil: none) is true, the row is
// divided by its sum over the last axis. Sel, Mul, Add and Min have x's shape
// (Mul, Add and Min are converted to x's dtype: HookScores and HookPattern are
// float64 with AttentionInputs.Float64).
// Where Sel is false the value passes through a select untouched, so an edit
// that selects nothing leaves the activation bit-identical.
type Edit struct {
	Sel, Mul, Add, Min, Renorm *Node
}

// Apply returns the edited x; a nil Edit returns x.
func (e *Edit) Apply(x *Node) *Node {
	if e == nil {
		return x
	}
	sel := e.Sel
	if e.Min != nil {
		sel = LogicalAnd(sel, GreaterOrEqual(x, ConvertDType(e.Min, x.DType())))
	}
	y := Where(sel, Add(Mul(x, ConvertDType(e.Mul, x.DType())), ConvertDType(e.Add, x.DType())), x)
	if e.Renorm != nil {
		r := BroadcastToDims(e.Renorm, y.Shape().Dimensions...)
		y = Where(r, Div(y, ReduceAndKeep(y, ReduceSum, -1)), y)
	}
	return y
}

// Edits maps the hook names above to the edits of one block (nil: none).
type Edits map[string]*Edit

// Attend is the attention of a block, the one entry families call from Block:
// Attention over in.Mask with in.Edits applied at the hooks HookQ, HookK,
// HookV, HookScores, HookPattern and HookZ, returning the pattern (lse nil);
// without edits it builds exactly the graph of Attention. When in.Blockwise is
// set it is BlockwiseAttention instead, returning each row's log-sum-exp
// (pattern nil); the engine refuses edits and taps with it beforehand.
func (in AttentionInputs) Attend(q, k, v *Node) (out, pattern, lse *Node) {
	return in.AttendWith(q, k, v, AttentionOptions{})
}

// AttendWith is Attend with AttentionWith's scale and soft-capping options
// (families that pass any also report them through ScoreOptioner, so that the
// qk store can recompute the same scores); blockwise attention applies them too.
func (in AttentionInputs) AttendWith(q, k, v *Node, opts AttentionOptions) (out, pattern, lse *Node) {
	if in.Blockwise != nil {
		if len(in.Edits) > 0 || in.Taps != nil || in.Dropout != nil {
			panic("AttentionInputs.Attend: blockwise attention takes no edits, taps or dropout (refused before building the graph)")
		}
		out, lse = BlockwiseAttention(q, k, v, *in.Blockwise, opts, in.Float64)
		return out, nil, lse
	}
	out, pattern = attention(q, k, v, in.Mask, opts, in.Float64, in.Edits, in.Taps)
	return out, pattern, nil
}
