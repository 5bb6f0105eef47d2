package similarity

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"testing"
	"time"

	"github.com/attnscope/attnscope/internal/pyoracle"
	"github.com/attnscope/attnscope/tensor"
)

type oracleCase struct {
	Name      string      `json:"name"`
	Kind      string      `json:"kind"`
	X         [][]float64 `json:"x"`
	Y         [][]float64 `json:"y"`
	Reg       float64     `json:"reg"`
	Uncentred bool        `json:"uncentred"`
	Variance  float64     `json:"variance"`
	Dims      int         `json:"dims"`
	RBF       bool        `json:"rbf"`
	Threshold float64     `json:"threshold"`
	Batch     int         `json:"batch"`
}

type oracleResult struct {
	Value float64   `json:"value"`
	Rho   []float64 `json:"rho"`
}

func rows(t *tensor.Tensor) [][]float64 {
	n, d := t.Shape[0], t.Shape[1]
	out := make([][]float64, n)
	for i := range out {
		out[i] = t.Data[i*d : (i+1)*d]
	}
	return out
}

// oracleInputs are pairs of representations: random, structured (linear and
// non-linear functions of each other, integer values with ties) and rank-deficient
// (repeated neurons, fewer tokens than neurons, low rank, a constant neuron, a
// constant representation).
func oracleInputs() []struct {
	name string
	x, y *tensor.Tensor
} {
	rng := rand.New(rand.NewPCG(2021, 14))
	type in = struct {
		name string
		x, y *tensor.Tensor
	}
	var out []in
	out = append(out, in{"random 60x5 vs 60x7", randn(rng, 60, 5), randn(rng, 60, 7)})
	out = append(out, in{"random 200x20 vs 200x12", randn(rng, 200, 20), randn(rng, 200, 12)})
	// Wide enough for the vector kernel of the feature-space CKA (tiles of 8×24,
	// edges on both sides).
	w := randn(rng, 150, 37)
	out = append(out, in{"random 150x37 vs mixed 150x50", w, matmul(w, randn(rng, 37, 50))})
	for i := range out[len(out)-1].y.Data {
		out[len(out)-1].y.Data[i] = math.Sin(out[len(out)-1].y.Data[i])
	}
	x := randn(rng, 100, 8)
	y := matmul(x, randn(rng, 8, 6))
	for i := range y.Data {
		y.Data[i] = math.Tanh(y.Data[i]) + 0.1*rng.NormFloat64()
	}
	out = append(out, in{"tanh(XR) + noise", x, y})
	x = randn(rng, 40, 4)
	out = append(out, in{"Y = XR", x, matmul(x, randn(rng, 4, 4))})
	x = randn(rng, 50, 3)
	dup := tensor.New(50, 6)
	for i := range 50 {
		for j := range 6 {
			dup.Data[i*6+j] = x.Data[i*3+j%3] * float64(1+j/3)
		}
	}
	out = append(out, in{"repeated neurons (rank 3 of 6)", dup, randn(rng, 50, 4)})
	out = append(out, in{"fewer tokens than neurons", randn(rng, 12, 15), randn(rng, 12, 14)})
	a := randn(rng, 80, 2)
	out = append(out, in{"low rank both", matmul(a, randn(rng, 2, 6)), matmul(a, randn(rng, 2, 5))})
	c := randn(rng, 60, 4)
	for i := range 60 {
		c.Data[i*4+3] = 1
	}
	out = append(out, in{"constant neuron", c, randn(rng, 60, 3)})
	ints := tensor.New(48, 3)
	inty := tensor.New(48, 3)
	for i := range ints.Data {
		ints.Data[i] = float64(rng.IntN(4))
		inty.Data[i] = float64(rng.IntN(3)) + ints.Data[i]
	}
	out = append(out, in{"integers with ties", ints, inty})
	constant := tensor.New(40, 3)
	for i := range constant.Data {
		constant.Data[i] = 0.5
	}
	out = append(out, in{"constant Y", randn(rng, 40, 3), constant})
	return out
}

func oracleCases() []oracleCase {
	var cases []oracleCase
	for _, in := range oracleInputs() {
		base := oracleCase{Name: in.name, X: rows(in.x), Y: rows(in.y)}
		add := func(kind string, f func(*oracleCase)) {
			c := base
			c.Kind = kind
			f(&c)
			cases = append(cases, c)
		}
		for _, reg := range []float64{0, 1e-3, 0.1} {
			for _, unc := range []bool{false, true} {
				add("pwcca", func(c *oracleCase) { c.Reg, c.Uncentred = reg, unc })
			}
		}
		add("svcca", func(c *oracleCase) { c.Variance = 0.99 })
		add("svcca", func(c *oracleCase) { c.Variance = 0.99; c.Dims = 3 })
		add("cka", func(*oracleCase) {})
		add("cka", func(c *oracleCase) { c.RBF, c.Threshold = true, 1 })
		add("cka", func(c *oracleCase) { c.RBF, c.Threshold = true, 0.5 })
		n := in.x.Shape[0]
		batch := n / 3
		if n%batch != 0 && n%batch < 4 {
			batch = n / 2
		}
		add("minibatch", func(c *oracleCase) { c.Batch = batch })
		add("minibatch", func(c *oracleCase) { c.Batch, c.RBF, c.Threshold = batch, true, 1 })
	}
	return cases
}

// goResult computes a case in Go.
func goResult(c oracleCase) (oracleResult, error) {
	x, y := fromRows(c.X), fromRows(c.Y)
	switch c.Kind {
	case "pwcca":
		r, err := PWCCA(x, y, PWCCAOptions{Reg: c.Reg, Uncentred: c.Uncentred})
		return oracleResult{r.PWCCA, r.Correlations}, err
	case "svcca":
		r, err := SVCCA(x, y, SVCCAOptions{Variance: c.Variance, Dims: c.Dims})
		return oracleResult{r.SVCCA, r.Correlations}, err
	case "cka":
		v, err := CKA(x, y, Kernel{RBF: c.RBF, Threshold: c.Threshold})
		return oracleResult{Value: v}, err
	case "minibatch":
		m := MinibatchCKA{Kernel: Kernel{RBF: c.RBF, Threshold: c.Threshold}}
		n := x.Shape[0]
		for s := 0; s < n; s += c.Batch {
			e := min(s+c.Batch, n)
			if err := m.Add(takeRange(x, s, e-s), takeRange(y, s, e-s)); err != nil {
				return oracleResult{}, err
			}
		}
		v, err := m.Value()
		return oracleResult{Value: v}, err
	}
	return oracleResult{}, fmt.Errorf("unknown kind %q", c.Kind)
}

func fromRows(r [][]float64) *tensor.Tensor {
	t := tensor.New(len(r), len(r[0]))
	for i, row := range r {
		copy(t.Data[i*len(row):], row)
	}
	return t
}

// TestAgainstNumPy compares PWCCA, SVCCA, linear and RBF CKA and minibatch CKA with
// an independent NumPy implementation (testdata/numpy_oracle.py) within 1e-8; where
// NumPy's value is undefined (NaN, a failed Cholesky factorisation) Go must return
// an error, and nowhere a NaN.
func TestAgainstNumPy(t *testing.T) {
	py := pyoracle.Python(t, "numpy")
	cases := oracleCases()
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "testdata/numpy_oracle.py")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("numpy oracle: %v\n%s", err, stderr.String())
	}
	var want []*oracleResult
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	if len(want) != len(cases) {
		t.Fatalf("%d results for %d cases", len(want), len(cases))
	}
	const tol = 1e-8
	defined := 0
	for i, c := range cases {
		label := fmt.Sprintf("%s %s (reg %g, uncentred %v, dims %d, rbf %v/%g, batch %d)", c.Kind, c.Name, c.Reg, c.Uncentred, c.Dims, c.RBF, c.Threshold, c.Batch)
		got, err := goResult(c)
		if want[i] == nil {
			if c.Name != "constant Y" {
				t.Errorf("%s: undefined in NumPy; every input but the constant one has a defined value", label)
			}
			if err == nil {
				t.Errorf("%s: NumPy undefined, Go %v without an error", label, got.Value)
			}
			continue
		}
		defined++
		if err != nil {
			t.Errorf("%s: NumPy %v, Go error %v", label, want[i].Value, err)
			continue
		}
		if math.IsNaN(got.Value) || math.Abs(got.Value-want[i].Value) > tol {
			t.Errorf("%s: Go %.12g, NumPy %.12g", label, got.Value, want[i].Value)
		}
		if len(want[i].Rho) > 0 {
			if len(got.Rho) != len(want[i].Rho) {
				t.Errorf("%s: Go %d correlations, NumPy %d", label, len(got.Rho), len(want[i].Rho))
				continue
			}
			for k := range got.Rho {
				if math.Abs(got.Rho[k]-want[i].Rho[k]) > tol {
					t.Errorf("%s: rho[%d] Go %.12g, NumPy %.12g", label, k, got.Rho[k], want[i].Rho[k])
				}
			}
		}
	}
	t.Logf("%d cases, %d with a defined value", len(cases), defined)
}
