package arch

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/gobackend"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/core/tensors"
)

// TestAttentionFloat64: on causal grouped-query attention with logits of std 5
// (q scaled by 5), AttentionInputs.Float64 gives a pattern within float32
// rounding (6e-8) of the float64 softmax of the same float32 q and k, where the
// default float32 pattern is further off (logged, only required to exceed it);
// with Float64 the blockwise output equals the materialised one within 2
// float32 roundings of its magnitude, and the default materialised graph is
// Attention's, bit for bit.
func TestAttentionFloat64(t *testing.T) {
	const b, heads, kv, n, hd = 1, 4, 2, 96, 16
	rng := rand.New(rand.NewPCG(3, 4))
	rnd := func(n int, s float64) []float32 {
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(s * rng.NormFloat64())
		}
		return d
	}
	qd, kd, vd := rnd(b*heads*n*hd, 5), rnd(b*kv*n*hd, 1), rnd(b*kv*n*hd, 1)
	mask, valid := make([]bool, b*n*n), make([]bool, b*n)
	for i := range n {
		valid[i] = true
		for j := range n {
			mask[i*n+j] = j <= i
		}
	}
	q := tensors.FromFlatDataAndDimensions(qd, b, heads, n, hd)
	k := tensors.FromFlatDataAndDimensions(kd, b, kv, n, hd)
	v := tensors.FromFlatDataAndDimensions(vd, b, kv, n, hd)
	mt, vt := tensors.FromFlatDataAndDimensions(mask, b, n, n), tensors.FromFlatDataAndDimensions(valid, b, n)
	run := func(f func(in []*Node) []*Node, m *tensors.Tensor) [][]float32 {
		e, err := NewExec(gobackend.GetBackend(), f)
		if err != nil {
			t.Fatal(err)
		}
		out, err := e.Call(q, k, v, m)
		if err != nil {
			t.Fatal(err)
		}
		res := make([][]float32, len(out))
		for i, o := range out {
			res[i] = tensors.MustCopyFlatData[float32](o)
		}
		return res
	}
	materialised := func(f64 bool) [][]float32 {
		return run(func(in []*Node) []*Node {
			o, p, _ := AttentionInputs{Mask: in[3], Float64: f64}.Attend(in[0], in[1], in[2])
			return []*Node{o, p}
		}, mt)
	}
	m32, m64 := materialised(false), materialised(true)
	plain := run(func(in []*Node) []*Node {
		o, p := Attention(in[0], in[1], in[2], in[3])
		return []*Node{o, p}
	}, mt)
	for i := range 2 {
		for j := range plain[i] {
			if math.Float32bits(plain[i][j]) != math.Float32bits(m32[i][j]) {
				t.Fatalf("output %d [%d]: default Attend %g, Attention %g", i, j, m32[i][j], plain[i][j])
			}
		}
	}
	bw := run(func(in []*Node) []*Node {
		o, _, _ := AttentionInputs{Blockwise: &Blockwise{QueryBlock: 32, KeyBlock: 24, Causal: true, KeyValid: in[3]}, Float64: true}.Attend(in[0], in[1], in[2])
		return []*Node{o}
	}, vt)
	for i, want := range m64[0] {
		if d := math.Abs(float64(bw[0][i] - want)); d > 2*math.Abs(float64(want))*0x1p-24+1e-30 {
			t.Fatalf("output %d: blockwise %g, materialised %g (Float64)", i, bw[0][i], want)
		}
	}
	scale := 1 / math.Sqrt(hd)
	d32, d64 := 0.0, 0.0
	for h := range heads {
		for i := range n {
			s := make([]float64, i+1)
			mx := math.Inf(-1)
			for j := range s {
				for d := range hd {
					s[j] += float64(qd[(h*n+i)*hd+d]) * float64(kd[((h/(heads/kv))*n+j)*hd+d])
				}
				s[j] *= scale
				mx = max(mx, s[j])
			}
			sum := 0.0
			for j := range s {
				s[j] = math.Exp(s[j] - mx)
				sum += s[j]
			}
			for j := range s {
				p := s[j] / sum
				d32 = max(d32, math.Abs(float64(m32[1][(h*n+i)*n+j])-p))
				d64 = max(d64, math.Abs(float64(m64[1][(h*n+i)*n+j])-p))
			}
		}
	}
	t.Logf("largest difference from the float64 softmax: float32 %.3g, Float64 %.3g", d32, d64)
	if d64 > 0x1p-24 || d32 <= d64 {
		t.Errorf("Float64 pattern %.3g from the float64 softmax (want ≤ 6e-8), float32 %.3g (want more)", d64, d32)
	}
}
