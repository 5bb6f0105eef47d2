package analysis

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"testing"
)

// peakyAttention is causal (or full) attention shaped like a trained model's: softmax of
// scaled normal scores, so a few keys take most of the weight; with zeros, some weights
// are exactly 0 (as float32 softmax underflow gives), so the nodes that reach an input
// are not always a token suffix.
func peakyAttention(seed uint64, L, H, N int, causal, zeros bool) *Tensor {
	r := rand.New(rand.NewPCG(seed, 99))
	t := New(L, H, N, N)
	for l := 0; l < L; l++ {
		for h := 0; h < H; h++ {
			m := t.Matrix(l, h)
			for i := 0; i < N; i++ {
				row := m[i*N : (i+1)*N]
				s := 0.0
				for j := range row {
					if causal && j > i {
						break
					}
					if zeros && j > 0 && r.IntN(7) == 0 {
						continue
					}
					row[j] = math.Exp(3 * r.NormFloat64())
					s += row[j]
				}
				for j := range row {
					row[j] /= s
				}
			}
		}
	}
	return t
}

// TestFlowValuesGolden compares FlowValues with the sha256 of the float64 bytes the
// implementation before the phase-1 and residual-reset changes produced on the same
// inputs (computed with that code, commit 6d3ac3b), so the faster flow is bit-identical.
func TestFlowValuesGolden(t *testing.T) {
	cases := []struct {
		name          string
		L, N          int
		causal, zeros bool
		in            FlowInput
		want          string
	}{
		{"causal raw", 4, 48, true, false, FlowRaw, "8b517023cc572324922dba8c11feec852ffdc826ed60a619a1b2ea64eb558b5c"},
		{"causal raw zeros", 4, 40, true, true, FlowRaw, "6ded07b80ac332f0ce6cbb28ef373f67e75b24e72a87a5073aa82161bdcdd8c6"},
		{"causal residual", 3, 32, true, false, FlowResidual, "e6360eea700a9f67e4b9e800dc979119cc87cfd4a68bc0fb7d7100c4a7764f9e"},
		{"full raw", 3, 20, false, false, FlowRaw, "2e6b5ea3c40d0050b3c259d6eb65da08397c60ed8aa32313038d5c635dff8991"},
		{"full rollout zeros", 4, 16, false, true, FlowRollout, "e1bd887ec9f68f9e419abeb40c999349ea680161a254e3fe63bc5a3a10348357"},
	}
	for k, c := range cases {
		m, err := FlowMatrices(peakyAttention(uint64(k+1), c.L, 3, c.N, c.causal, c.zeros), c.in)
		if err != nil {
			t.Fatal(err)
		}
		vals, err := FlowValues(context.Background(), m, 0)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		for _, v := range vals.Data {
			h.Write(binary.LittleEndian.AppendUint64(nil, math.Float64bits(v)))
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != c.want {
			t.Errorf("%s: flow values sha256 %s, want %s", c.name, got, c.want)
		}
	}
	// Larger inputs shaped like BenchmarkFlowFourLayer's (4 layers, 4 heads, seed 5), where
	// Dinic runs many phases per sink; hashes from commit 6d3ac3b too.
	for _, c := range []struct {
		N             int
		causal, zeros bool
		want          string
	}{
		{120, true, false, "089df7bbb5c0da3eb1b1c5af5b80164d25b826334d2dbfc528c976107e46ad6c"},
		{100, true, true, "285ced108ed9bbfb3d23234f1ca0905f09d251d24d446c9dfc764016fb9bb9b7"},
		{60, false, false, "01d1bf7fc407bc0e184b614b78a91b5f1c1cdfcdda75b1a3909b3ab0faefd52b"},
		{60, false, true, "93e942fa54925d23e3115f90c71f90cae2a1fd0438ce8143c5bc1734a7b33cbb"},
	} {
		m, err := FlowMatrices(peakyAttention(5, 4, 4, c.N, c.causal, c.zeros), FlowRaw)
		if err != nil {
			t.Fatal(err)
		}
		vals, err := FlowValues(context.Background(), m, 0)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		for _, v := range vals.Data {
			h.Write(binary.LittleEndian.AppendUint64(nil, math.Float64bits(v)))
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != c.want {
			t.Errorf("N=%d causal=%v zeros=%v: flow values sha256 %s, want %s", c.N, c.causal, c.zeros, got, c.want)
		}
	}
}
