// Package codegen defines the CodeGen architecture (CodeGenForCausalLM):
// GPT-J (package gptj) whose q, v and k come from one qkv_proj laid out for 4
// model-parallel shards, each holding [q | v | k] for a quarter of the heads
// (Nijkamp et al. 2022; transformers' modeling_codegen.py).
package codegen

import (
	"fmt"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/model/arch"
	"github.com/attnscope/attnscope/model/gptj"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
)

// mpNum is the shard count CodeGen's qkv_proj layout was exported with.
const mpNum = 4

// ParseConfig reads a CodeGenConfig (GPT-J's keys; n_head must divide by 4).
func ParseConfig(raw checkpoint.RawConfig) (*arch.Config, error) {
	c, err := gptj.Parse(raw, "codegen")
	if err == nil && c.Heads%mpNum != 0 {
		return nil, fmt.Errorf("field n_head: CodeGen's fused qkv_proj needs a multiple of %d heads, got %d", mpNum, c.Heads)
	}
	return c, err
}

// New returns the architecture of c.
func New(c *arch.Config) arch.Architecture {
	d, h, hd := c.Hidden, c.Heads, c.HeadDim
	return &gptj.Arch{
		C: c,
		AttnParams: func(p func(key, suffix string, shape ...int) arch.Param) []arch.Param {
			return []arch.Param{p("qkv_w", "attn.qkv_proj.weight", 3*d, d)}
		},
		QKV: func(w arch.Weights, x *Node) (q, k, v *Node) {
			dims := x.Shape().Dimensions
			b, t := dims[0], dims[1]
			local := d / mpNum
			qkv := Reshape(arch.Linear(x, w["qkv_w"], nil), b, t, mpNum, 3*local)
			part := func(i int) *Node {
				y := Reshape(SliceAxis(qkv, 3, AxisRange(i*local, (i+1)*local)), b, t, h, hd)
				return TransposeAllDims(y, 0, 2, 1, 3)
			}
			return part(0), part(2), part(1) // [q | v | k] in each shard
		},
	}
}
