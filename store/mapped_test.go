package store

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/tensor"
)

// TestMapAttention maps a two-layer float16 attention file and reads each layer's
// stored bytes back to the values written; a layer of another shape is refused
// with a message naming the tensor.
func TestMapAttention(t *testing.T) {
	r, err := Create(filepath.Join(t.TempDir(), "run"), Meta{Kind: "capture"})
	if err != nil {
		t.Fatal(err)
	}
	const H, n = 2, 3
	write := func(id string, shape1 []int) [][]float32 {
		t.Helper()
		var infos []checkpoint.TensorInfo
		var data [][]float32
		for l, shape := range [][]int{{H, n, n}, shape1} {
			v := make([]float32, shape[0]*shape[1]*shape[2])
			for i := range v {
				v[i] = float32(l*100+i) / 4 // exact in float16
			}
			infos = append(infos, checkpoint.TensorInfo{Name: AttentionName(l), DType: checkpoint.F16, Shape: shape})
			data = append(data, v)
		}
		if err := os.MkdirAll(r.SampleDir(id), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := checkpoint.WriteSafetensors(r.AttentionPath(id), infos, data, nil); err != nil {
			t.Fatal(err)
		}
		if err := r.WriteSample(&Sample{ID: id}); err != nil {
			t.Fatal(err)
		}
		return data
	}
	want := write("s", []int{H, n, n})
	a, err := r.MapAttention("s")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Layers != 2 || a.Heads != H || a.N != n || a.DType != checkpoint.F16 || a.Size == 0 || a.ModUnixNano == 0 {
		t.Fatalf("mapped %d layers, %d heads, N %d, %s, size %d", a.Layers, a.Heads, a.N, a.DType, a.Size)
	}
	for l := range 2 {
		b, err := a.Layer(l)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float32, len(b)/2)
		for i := range got {
			got[i] = checkpoint.HalfToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
		if !slices.Equal(got, want[l]) {
			t.Errorf("layer %d: %v, wrote %v", l, got, want[l])
		}
	}
	if _, err := a.Layer(2); err == nil {
		t.Error("layer 2 of 2: no error")
	}
	write("bad", []int{H, n + 1, n + 1})
	if _, err := r.MapAttention("bad"); err == nil || !strings.Contains(err.Error(), AttentionName(1)) {
		t.Errorf("layer 1 of another shape: %v", err)
	}
}

// TestDerivedMatrix reads one matrix of a [2, 3, 4, 4] output and checks it
// against the slice of the whole output.
func TestDerivedMatrix(t *testing.T) {
	r, err := Create(filepath.Join(t.TempDir(), "run"), Meta{Kind: "capture"})
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float64, 2*3*4*4)
	for i := range v {
		v[i] = math.Sin(float64(i))
	}
	if err := r.PreparePass("p", PassSettings{Function: "f"}); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteDerived("p", "s", &tensor.Tensor{Shape: []int{2, 3, 4, 4}, Data: v}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := r.DerivedMatrix("p", "s", 4)
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range got {
		if g != float32(v[4*16+i]) {
			t.Fatalf("matrix 4 cell %d: %g, want %g", i, g, float32(v[4*16+i]))
		}
	}
	if len(got) != 16 {
		t.Errorf("%d values, want 16", len(got))
	}
	if _, err := r.DerivedMatrix("p", "s", 6); err == nil || !strings.Contains(err.Error(), "no index 6") {
		t.Errorf("matrix 6 of 6: %v", err)
	}
	if shape, err := r.DerivedShape("p", "s"); err != nil || !slices.Equal(shape, []int{2, 3, 4, 4}) {
		t.Errorf("DerivedShape: %v %v", shape, err)
	}
}
