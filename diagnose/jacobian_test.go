package diagnose

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/core/tensors"
	"gonum.org/v1/gonum/mat"

	"github.com/attnscope/attnscope/internal/refdata"
)

// finiteDifferenceJacobian computes J[a][w][b] = ∂Y[p,a]/∂E[w,b] by central
// differences (Y(E + h·e_wb) − Y(E − h·e_wb))/2h in float64, every perturbed
// copy of E one element of a batch through the same blocks.
func finiteDifferenceJacobian(t *testing.T, n *Net, ex Example, p int, h float64) []float64 {
	t.Helper()
	be, err := backendOf("")
	if err != nil {
		t.Fatal(err)
	}
	params := n.paramTensors(dtypes.Float64)
	defer finalize(params)
	np := len(params)
	nt, d := len(ex.IDs), n.Cfg.Hidden
	T := padLen(nt, n.Cfg.MaxPositions)
	embedExec, err := NewExec(be, func(in []*Node) *Node {
		return n.embed(in[:np], graphIn{ids: in[np], types: in[np+1], positions: in[np+2]}, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	args := func(extra ...*tensors.Tensor) []any {
		a := make([]any, 0, np+len(extra))
		for _, w := range params {
			a = append(a, w)
		}
		for _, e := range extra {
			a = append(a, e)
		}
		return a
	}
	eo, err := embedExec.Call(args(int32Rows([][]int{ex.IDs}, T), int32Rows([][]int{ex.TypeIDs}, T), positionRows(1, T))...)
	if err != nil {
		t.Fatal(err)
	}
	e0, err := tensors.CopyFlatData[float64](eo[0])
	if err != nil {
		t.Fatal(err)
	}
	B := 2 * nt * d
	batch := make([]float64, B*T*d)
	for w := range nt {
		for b := range d {
			for s := range 2 {
				r := (w*d+b)*2 + s
				copy(batch[r*T*d:(r+1)*T*d], e0)
				batch[r*T*d+w*d+b] += h * float64(1-2*s)
			}
		}
	}
	lens := make([]int, B)
	for i := range lens {
		lens[i] = nt
	}
	encExec, err := NewExec(be, func(in []*Node) *Node { return n.encode(in[:np], in[np], in[np+1], nil, nil) })
	if err != nil {
		t.Fatal(err)
	}
	yo, err := encExec.Call(args(tensors.FromFlatDataAndDimensions(batch, B, T, d), paddedMask(lens, T, false))...)
	if err != nil {
		t.Fatal(err)
	}
	y, err := tensors.CopyFlatData[float64](yo[0])
	if err != nil {
		t.Fatal(err)
	}
	full := make([]float64, d*nt*d)
	for w := range nt {
		for b := range d {
			up, down := (w*d+b)*2, (w*d+b)*2+1
			for a := range d {
				full[(a*nt+w)*d+b] = (y[(up*T+p)*d+a] - y[(down*T+p)*d+a]) / (2 * h)
			}
		}
	}
	return full
}

// TestJacobianMatchesFiniteDifferences: on the reference BERT checkpoints (a
// random and a trained one), in float64, the autodiff Jacobian blocks J_w of
// one output position equal central finite differences, and so do their
// singular values (relative error ≤ 1e-4, measured against the largest
// singular value of the block), with a chunk that does not divide the width.
func TestJacobianMatchesFiniteDifferences(t *testing.T) {
	for _, name := range []string{"tiny-bert", "code-bert-mini"} {
		t.Run(name, func(t *testing.T) {
			n, err := LoadNet(refdata.Path(t, "models", name), HeadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(3, 5))
			ids := []int{2}
			for range 3 {
				ids = append(ids, 5+rng.IntN(n.Cfg.VocabSize-5))
			}
			ids = append(ids, 3)
			ex := Example{IDs: ids, TypeIDs: []int{0, 0, 0, 1, 1}}
			p := 3
			j, err := NewJacobians(n, JacobianOptions{DType: dtypes.Float64, Chunk: 24})
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			got, err := j.Full(ex, p)
			if err != nil {
				t.Fatal(err)
			}
			fd := finiteDifferenceJacobian(t, n, ex, p, 1e-5)
			scale := 0.0
			for _, v := range fd {
				scale = math.Max(scale, math.Abs(v))
			}
			worst := 0.0
			for i := range got {
				worst = math.Max(worst, math.Abs(got[i]-fd[i])/scale)
			}
			// Entries are compared at 1e-5 of the largest: central differences at
			// h = 1e-5 on the trained model's large-norm embeddings land 2e-6 away
			// (the singular values, the quantity checked to 1e-4, agree to 3e-7).
			if worst > 1e-5 || scale == 0 {
				t.Errorf("Jacobian entries: max |autodiff − central difference| = %.3g of the largest entry %.3g", worst, scale)
			}
			nt, d := len(ids), n.Cfg.Hidden
			sGot, err := BlockSingularValues(got, nt, d)
			if err != nil {
				t.Fatal(err)
			}
			sFD, err := BlockSingularValues(fd, nt, d)
			if err != nil {
				t.Fatal(err)
			}
			worstSV := 0.0
			for w := range nt {
				top := sFD[w*d]
				if top <= 0 {
					t.Fatalf("position %d: zero Jacobian block", w)
				}
				for k := range d {
					worstSV = math.Max(worstSV, math.Abs(sGot[w*d+k]-sFD[w*d+k])/top)
				}
			}
			if worstSV > 1e-4 {
				t.Errorf("singular values: max relative error %.3g > 1e-4", worstSV)
			}
			t.Logf("%s: max entry error %.2g, singular-value relative error %.2g, largest σ at p %.4g", name, worst, worstSV, sGot[p*d])
		})
	}
}

// TestJacobianFloat32MatchesFloat64: the float32 graph the command runs agrees
// with the float64 one on the trained reference model (singular values within
// 1e-3 of the block's largest), and the chunk size does not change the result.
func TestJacobianFloat32MatchesFloat64(t *testing.T) {
	n, err := LoadNet(refdata.Path(t, "models", "code-bert-mini"), HeadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ex := Example{IDs: []int{2, 100, 200, 300, 3}}
	var sv [][]float64
	for _, o := range []JacobianOptions{{DType: dtypes.Float64, Chunk: 128}, {Chunk: 50}} {
		j, err := NewJacobians(n, o)
		if err != nil {
			t.Fatal(err)
		}
		s, err := j.SingularValues(ex, 2)
		j.Close()
		if err != nil {
			t.Fatal(err)
		}
		sv = append(sv, s)
	}
	d := n.Cfg.Hidden
	for k := 1; k < len(sv); k++ {
		for w := range len(ex.IDs) {
			top := sv[0][w*d]
			for i := range d {
				if e := math.Abs(sv[k][w*d+i]-sv[0][w*d+i]) / top; e > 1e-3 {
					t.Fatalf("run %d, position %d, σ_%d: %.6g vs float64 %.6g", k, w, i, sv[k][w*d+i], sv[0][w*d+i])
				}
			}
		}
	}
}

// TestBlockSingularValuesTokenwiseLinear is oracle 34 (seeds §7.4) for the
// decomposition: a model acting token-wise linearly, Y[p] = W·E[p], has J_p =
// W and J_w = 0 for w ≠ p, so position p gets W's singular values (W built as
// U·diag(σ)·Vᵀ with known σ) and every other position zeros.
func TestBlockSingularValuesTokenwiseLinear(t *testing.T) {
	const n, d, p = 4, 5, 2
	sigma := []float64{7, 3, 2, 0.5, 0.1}
	rng := rand.New(rand.NewPCG(1, 2))
	orth := func() *mat.Dense {
		a := mat.NewDense(d, d, nil)
		for i := range d {
			for j := range d {
				a.Set(i, j, rng.NormFloat64())
			}
		}
		var qr mat.QR
		qr.Factorize(a)
		var q mat.Dense
		qr.QTo(&q)
		return &q
	}
	u, v := orth(), orth()
	var w mat.Dense
	w.Mul(u, mat.NewDiagDense(d, sigma))
	w.Mul(&w, v.T())
	full := make([]float64, d*n*d)
	for a := range d {
		for b := range d {
			full[(a*n+p)*d+b] = w.At(a, b)
		}
	}
	s, err := BlockSingularValues(full, n, d)
	if err != nil {
		t.Fatal(err)
	}
	for pos := range n {
		for k := range d {
			want := 0.0
			if pos == p {
				want = sigma[k]
			}
			if math.Abs(s[pos*d+k]-want) > 1e-12 {
				t.Errorf("position %d σ_%d = %.15g, want %g", pos, k, s[pos*d+k], want)
			}
		}
	}
	if !slices.IsSortedFunc(s[p*d:(p+1)*d], func(a, b float64) int { return -cmpF(a, b) }) {
		t.Errorf("singular values not descending: %v", s[p*d:(p+1)*d])
	}
}

func cmpF(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
