package model

import "github.com/attnscope/attnscope/checkpoint"

// ForwardFLOPs estimates the floating-point operations of one forward pass of
// n tokens without the LM head: 2 per multiply-add of every weight matrix
// (≈ 2·params·n) plus the attention products q·kᵀ and p·v over all n×n
// entries (4·n²·heads·head_dim per layer), which the runtime computes in full.
func ForwardFLOPs(c *checkpoint.Config, n int) float64 {
	d, m := float64(c.Hidden), float64(c.Intermediate)
	qd := float64(c.Heads * c.HeadDim)
	kvd := float64(c.KVHeads * c.HeadDim)
	N := float64(n)
	proj := d*qd + 2*d*kvd + qd*d // q, k, v, o
	mlp := 2 * d * m              // up + down
	if c.ModelType == "llama" || c.ModelType == "mistral" || c.ModelType == "qwen2" {
		mlp = 3 * d * m // gate, up, down
	}
	perLayer := 2*N*(proj+mlp) + 4*N*N*qd
	return float64(c.Layers) * perLayer
}
