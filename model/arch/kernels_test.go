package arch

import (
	"math"
	"testing"

	"github.com/gomlx/compute/gobackend"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/core/tensors"
)

// call runs f on the Go backend and returns its first output's values.
func call[T float32 | float64](t *testing.T, f func(in []*Node) *Node, args ...any) []T {
	t.Helper()
	e, err := NewExec(gobackend.GetBackend(), f)
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.Call(args...)
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[T](out[0])
}

// TestGeluErf: the exact GELU (the backend's fused kernel) and its decomposed form
// (the backend's Erf op, which training differentiates) against the float64 formula,
// on inputs large enough to take the backend's parallel path. Both evaluate erf in
// float32 with Abramowitz & Stegun 7.1.26 (1.5e-7) as PyTorch's vectorised CPU erf
// does; with float32 evaluation erf is within 4e-7, so gelu within 2e-7·|x| plus two
// float32 roundings.
func TestGeluErf(t *testing.T) {
	const n = 200_001
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(i-n/2) / 10000 // −10 … 10, steps of 1e-4
	}
	x := tensors.FromFlatDataAndDimensions(data, n)
	fused := call[float32](t, func(in []*Node) *Node { return GeluErf(in[0]) }, x)
	decomposed := call[float32](t, func(in []*Node) *Node { return geluErf(in[0]) }, x)
	worst := 0.0
	for i, v := range data {
		xf := float64(v)
		want := 0.5 * xf * (1 + math.Erf(xf/math.Sqrt2))
		tol := 2e-7*math.Abs(xf) + 2*0x1p-24*math.Abs(want) + 1e-38
		for _, got := range []float32{fused[i], decomposed[i]} {
			if d := math.Abs(float64(got) - want); d > tol {
				t.Fatalf("gelu(%g): fused %g, decomposed %g, want %.9g", v, fused[i], decomposed[i], want)
			}
		}
		worst = max(worst, math.Abs(float64(fused[i])-want)/math.Max(math.Abs(xf), 1e-3))
	}
	t.Logf("largest error of the fused kernel relative to |x|: %.3g", worst)
}

// TestBackendKernels checks upstream Go-backend kernels the models rely on (float32
// sigmoid, softmax, last-axis-preserving transposes, dense bias) against plain Go
// loops, on inputs large enough to take the parallel path.
func TestBackendKernels(t *testing.T) {
	call := func(f func(in []*Node) *Node, args ...any) []float32 {
		t.Helper()
		return call[float32](t, f, args...)
	}

	t.Run("sigmoid", func(t *testing.T) {
		const n = 200_001 // several parallel chunks
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(i-n/2) / 1000 // −100 … 100
		}
		got := call(func(in []*Node) *Node { return Sigmoid(in[0]) }, tensors.FromFlatDataAndDimensions(data, n))
		for i, x := range data {
			want := 1 / (1 + math.Exp(-float64(x)))
			// Relative error within 2.5e-7; results below the smallest normal float32
			// (x < −87.3) may be flushed to 0.
			if d := math.Abs(float64(got[i]) - want); d > 2.5e-7*want+0x1p-126 {
				t.Fatalf("σ(%g) = %g, want %g (relative error %.2g)", x, got[i], want, d/want)
			}
		}
	})

	t.Run("softmax", func(t *testing.T) {
		const rows, n = 300, 517 // rows split over workers; a tail beyond 16 lanes
		data := make([]float32, rows*n)
		for i := range data {
			data[i] = float32(math.Sin(float64(i)*0.37)) * 20
			if i%7 == 0 {
				data[i] = -math.MaxFloat32 // a masked logit
			}
		}
		got := call(func(in []*Node) *Node { return Softmax(in[0], -1) }, tensors.FromFlatDataAndDimensions(data, rows, n))
		for r := range rows {
			row := data[r*n : (r+1)*n]
			m := math.Inf(-1)
			for _, v := range row {
				m = math.Max(m, float64(v))
			}
			sum := 0.0
			for _, v := range row {
				sum += math.Exp(float64(v) - m)
			}
			for j, v := range row {
				want := math.Exp(float64(v)-m) / sum
				if d := math.Abs(float64(got[r*n+j]) - want); d > 1e-6*want+1e-12 {
					t.Fatalf("row %d col %d: %g, want %g", r, j, got[r*n+j], want)
				}
			}
		}
	})

	t.Run("transpose", func(t *testing.T) {
		for _, tc := range []struct {
			dims, perm []int
		}{
			{[]int{5, 3, 4}, []int{1, 0, 2}},       // SplitHeads
			{[]int{2, 3, 4, 5}, []int{2, 0, 1, 3}}, // rank 4, last axis kept
			{[]int{3, 4, 5}, []int{2, 1, 0}},       // last axis moves: the upstream iterator
			{[]int{64, 12, 64}, []int{1, 0, 2}},    // a GPT-2-sized head split
		} {
			size := 1
			for _, d := range tc.dims {
				size *= d
			}
			data := make([]float32, size)
			for i := range data {
				data[i] = float32(i)
			}
			got := call(func(in []*Node) *Node { return TransposeAllDims(in[0], tc.perm...) }, tensors.FromFlatDataAndDimensions(data, tc.dims...))
			// Reference: walk the output in order and read the source element.
			rank := len(tc.dims)
			outDims := make([]int, rank)
			for i, p := range tc.perm {
				outDims[i] = tc.dims[p]
			}
			srcStride := make([]int, rank)
			s := 1
			for a := rank - 1; a >= 0; a-- {
				srcStride[a] = s
				s *= tc.dims[a]
			}
			idx := make([]int, rank)
			for o := range size {
				src := 0
				for a := range rank {
					src += idx[a] * srcStride[tc.perm[a]]
				}
				if got[o] != data[src] {
					t.Fatalf("dims %v perm %v: output %d = %g, want %g", tc.dims, tc.perm, o, got[o], data[src])
				}
				for a := rank - 1; a >= 0; a-- {
					if idx[a]++; idx[a] < outDims[a] {
						break
					}
					idx[a] = 0
				}
			}
		}
	})

	t.Run("dense bias", func(t *testing.T) {
		const rows, in, out = 7, 5, 6
		x, w, b := make([]float32, rows*in), make([]float32, in*out), make([]float32, out)
		for i := range x {
			x[i] = float32(i%11) - 5
		}
		for i := range w {
			w[i] = float32(i%7) / 4
		}
		for i := range b {
			b[i] = float32(i) * 100
		}
		got := call(func(in []*Node) *Node { return Conv1D(in[0], in[1], in[2]) }, tensors.FromFlatDataAndDimensions(x, rows, in), tensors.FromFlatDataAndDimensions(w, in, out), tensors.FromFlatDataAndDimensions(b, out))
		for r := range rows {
			for c := range out {
				want := b[c]
				for k := range in {
					want += x[r*in+k] * w[k*out+c]
				}
				if got[r*out+c] != want {
					t.Fatalf("row %d col %d: %g, want %g", r, c, got[r*out+c], want)
				}
			}
		}
	})
}

// TestErfSeriesFloat64 checks the float64 erf built from graph ops (used by GeluErf in
// float64, where gradient checks need a value as exact as its derivative) against
// math.Erf on −8 … 8, across the switch from series to continued fraction at |z| = 2.
func TestErfSeriesFloat64(t *testing.T) {
	const n = 16_001
	data := make([]float64, n)
	for i := range data {
		data[i] = float64(i-n/2) / 1000
	}
	got := call[float64](t, func(in []*Node) *Node { return erfSeries(in[0]) }, tensors.FromFlatDataAndDimensions(data, n))
	worst, at := 0.0, 0.0
	for i, z := range data {
		if d := math.Abs(got[i] - math.Erf(z)); d > worst {
			worst, at = d, z
		}
	}
	if worst > 1e-14 {
		t.Errorf("erfSeries: largest |error| %.3g at z = %g, want ≤ 1e-14", worst, at)
	}
}

// TestSoftCap: cap·tanh(x/cap) in float32 within 4 float32 roundings of the
// float64 value relative to max(|value|, 1e-3·cap) across small and large x, where
// the backend's tanh alone loses up to cap·6e-8 absolute near 0.
func TestSoftCap(t *testing.T) {
	const limit = 50.0
	var data []float32
	for i := -20000; i <= 20000; i++ {
		data = append(data, float32(i)/100) // −200 … 200
	}
	for i := 1; i < 1000; i++ {
		data = append(data, float32(i)*1e-4, -float32(i)*1e-4)
	}
	x := tensors.FromFlatDataAndDimensions(data, len(data))
	got := call[float32](t, func(in []*Node) *Node { return SoftCap(in[0], limit) }, x)
	for i, v := range data {
		want := limit * math.Tanh(float64(v)/limit)
		if d := math.Abs(float64(got[i]) - want); d > 4*0x1p-24*math.Max(math.Abs(want), 1e-3*limit) {
			t.Fatalf("SoftCap(%g) = %.9g, want %.9g (error %.2g)", v, got[i], want, d)
		}
	}
}

// TestApplyRopeInterleaved: rotate_every_two (GPT-J) equals rotating each pair
// (2i, 2i+1) by the angle of frequency i, the trailing dims passing unchanged.
func TestApplyRopeInterleaved(t *testing.T) {
	const T, hd, rot = 3, 6, 4
	data := make([]float32, T*hd)
	for i := range data {
		data[i] = float32(i%7) - 3
	}
	pos := []int{0, 1, 5}
	cos, sin := RopeTables(pos, rot, 10000)
	x := tensors.FromFlatDataAndDimensions(data, 1, 1, T, hd)
	c := tensors.FromFlatDataAndDimensions(cos, T, rot)
	s := tensors.FromFlatDataAndDimensions(sin, T, rot)
	got := call[float32](t, func(in []*Node) *Node { return ApplyRopeInterleaved(in[0], in[1], in[2], rot) }, x, c, s)
	for r, p := range pos {
		for j := range hd {
			want := float64(data[r*hd+j])
			if j < rot {
				f := 1 / math.Pow(10000, float64(j/2*2)/rot)
				a, b := float64(data[r*hd+j/2*2]), float64(data[r*hd+j/2*2+1])
				co, si := math.Cos(float64(p)*f), math.Sin(float64(p)*f)
				if j%2 == 0 {
					want = a*co - b*si
				} else {
					want = b*co + a*si
				}
			}
			if math.Abs(float64(got[r*hd+j])-want) > 1e-5 {
				t.Fatalf("position %d dim %d: %g, want %g", p, j, got[r*hd+j], want)
			}
		}
	}
}
