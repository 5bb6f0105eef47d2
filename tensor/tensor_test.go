package tensor

import (
	"fmt"
	"testing"
)

func TestLayoutIsRowMajor(t *testing.T) {
	x := New(2, 3, 4)
	for i := range x.Data {
		x.Data[i] = float64(i)
	}
	if got := x.At(1, 2, 3); got != 23 {
		t.Fatalf("At(1,2,3) = %v, want 23 (row-major)", got)
	}
	x.Set(-1, 0, 1, 2)
	if x.Data[6] != -1 {
		t.Fatalf("Set(0,1,2) wrote elsewhere: %v", x.Data[:8])
	}
	s := x.Sub(1)
	if fmt.Sprint(s.Shape) != "[3 4]" || s.Data[0] != 12 {
		t.Fatalf("Sub(1) = %v %v", s.Shape, s.Data[:1])
	}
	s.Data[0] = 100
	if x.Data[12] != 100 {
		t.Fatal("Sub is not a view")
	}
	if m := x.Matrix(1, 0); len(m) != 12 || m[0] != 100 {
		t.Fatalf("Matrix(1) = %v", m)
	}
}

func TestCheckAndConstructors(t *testing.T) {
	if _, err := FromFloat64([]int{2, 2}, make([]float64, 3)); err == nil {
		t.Error("FromFloat64 accepted 3 values for [2 2]")
	}
	if _, err := FromFloat32([]int{-1}, nil); err == nil {
		t.Error("FromFloat32 accepted a negative dimension")
	}
	f, err := FromFloat32([]int{2}, []float32{0.5, 2})
	if err != nil || f.Data[0] != 0.5 || f.Data[1] != 2 {
		t.Fatalf("FromFloat32 = %v, %v", f, err)
	}
	if err := (&Tensor{Shape: []int{3}, Data: make([]float64, 2)}).Check(); err == nil {
		t.Error("Check accepted 2 values for [3]")
	}
	c := f.Clone()
	c.Data[0] = 9
	if f.Data[0] != 0.5 {
		t.Error("Clone shares data")
	}
}

// Example: one layer of [layer, head, query, key] attention and the weight query 1
// gives key 0 in head 0.
func Example() {
	att := New(2, 1, 2, 2) // 2 layers, 1 head, 2 tokens
	att.Set(1, 1, 0, 0, 0)
	att.Set(0.25, 1, 0, 1, 0)
	att.Set(0.75, 1, 0, 1, 1)
	layer := att.Sub(1)
	fmt.Println(layer.Shape, layer.At(0, 1, 0))
	// Output: [1 2 2] 0.25
}
