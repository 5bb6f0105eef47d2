package model

import "github.com/attnscope/attnscope/model/arch"

// ForwardFLOPs estimates the floating-point operations of one forward pass of
// n tokens without the LM head: 2 per multiply-add of every weight matrix of
// the layers (≈ 2·params·n, the matrices as the family's architecture
// declares them) plus the attention products q·kᵀ and p·v over all n×n
// entries (4·n²·heads·head_dim per layer), which the runtime computes in full.
func ForwardFLOPs(c *arch.Config, n int) float64 {
	a, err := Architecture(c)
	if err != nil {
		return 0
	}
	matrix := 0.0
	for _, p := range a.LayerParams(0) {
		if len(p.Shape) == 2 {
			matrix += float64(p.Shape[0] * p.Shape[1])
		}
	}
	N := float64(n)
	perLayer := 2*N*matrix + 4*N*N*float64(c.Heads*c.HeadDim)
	return float64(c.Layers) * perLayer
}
