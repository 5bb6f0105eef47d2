package experiment

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/pyoracle"
)

// numpyAttTensor is the original's extract_att_matrix after the steps are merged,
// in NumPy: the (1, L, 1, H, N, N) tensor, rows scaled by (i+1)**0.5 when asked, heads
// then layers reduced with keepdims, squeezed.
const numpyAttTensor = `
import sys, numpy as np
src, dst, head, layer, norm = sys.argv[1:6]
a = np.load(src)[None, :, None]
if norm == "more_weight_to_recent":
    for i in np.arange(a.shape[4]):
        a[:, :, :, :, i, :] *= (i + 1) ** 0.5
fns = {"max": np.amax, "min": np.amin, "mean": np.mean, "sum": np.sum}
if head != "keep":
    a = fns[head](a, axis=3, keepdims=True)
if layer != "keep":
    a = fns[layer](a, axis=1, keepdims=True)
np.save(dst, a.squeeze().astype(np.float32))
`

// TestAttTensorNumPy compares the stored att_tensor with the original's NumPy
// computation for several reducers, normalisation and a one-layer model (whose layer
// axis numpy's squeeze drops).
func TestAttTensorNumPy(t *testing.T) {
	py := pyoracle.Python(t, "numpy")
	dir := t.TempDir()
	script := filepath.Join(dir, "att.py")
	if err := writeString(script, numpyAttTensor); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	cases := []struct {
		L                 int
		head, layer, norm string
	}{
		{3, "keep", "keep", "None"}, {3, "max", "keep", "more_weight_to_recent"}, {3, "keep", "mean", "None"},
		{3, "sum", "min", "more_weight_to_recent"}, {3, "mean", "max", "None"}, {1, "keep", "keep", "None"},
	}
	for k, tc := range cases {
		att := randomAttention(r, tc.L, 4, 6)
		src := filepath.Join(dir, fmt.Sprintf("in%d.npy", k))
		dst := filepath.Join(dir, fmt.Sprintf("out%d.npy", k))
		if err := checkpoint.WriteNpyFile(src, att.Shape, att.Data); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(py, script, src, dst, tc.head, tc.layer, tc.norm).CombinedOutput(); err != nil {
			t.Fatalf("numpy: %v: %s", err, out)
		}
		want, err := checkpoint.ReadNpyFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		norm := tc.norm
		c := &Config{Attention: Attention{StrategyReduceHead: tc.head, StrategyReduceLayer: tc.layer, StrategyNormalizeTokens: &norm}}
		shape, data, err := c.AttTensor(att)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(shape, want.Shape) {
			t.Errorf("%+v: shape %v, numpy %v", tc, shape, want.Shape)
			continue
		}
		for i := range data {
			if math.Abs(float64(data[i]-want.F32[i])) > 1e-6 {
				t.Errorf("%+v: element %d = %g, numpy %g", tc, i, data[i], want.F32[i])
				break
			}
		}
	}
}
