// Package tensor holds the one dense array type of attnscope: attention read from a
// run, the inputs and outputs of every analysis, derived outputs on disk and the
// attention that evaluation aggregates are all *tensor.Tensor. It is a leaf package
// (standard library only) so that every other package, the pure analysis package
// included, can share it without depending on anything else.
//
// A Tensor is row-major (C order) float64: element (i0, i1, …, ik) of a tensor of
// shape [d0, d1, …, dk] is Data[((i0·d1 + i1)·d2 + …)·dk + ik], the layout NumPy's
// .npy files and safetensors use. Attention is [layer, head, query, key]; one layer
// of attention is [head, query, key].
package tensor

import (
	"fmt"
)

// Tensor is a dense row-major (C order) float64 array.
type Tensor struct {
	Shape []int
	Data  []float64
}

// New returns a zero tensor of the given shape. It panics on a negative dimension,
// like make does on a negative length.
func New(shape ...int) *Tensor {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("tensor.New: negative dimension %d", d))
		}
		n *= d
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: make([]float64, n)}
}

// Numel returns the number of elements of shape, or an error for a negative dimension.
func Numel(shape []int) (int, error) {
	n := 1
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("dimension %d is %d, want ≥ 0", i, d)
		}
		n *= d
	}
	return n, nil
}

// FromFloat64 wraps data (not copied) as a tensor of the given shape.
func FromFloat64(shape []int, data []float64) (*Tensor, error) {
	n, err := Numel(shape)
	if err != nil {
		return nil, err
	}
	if n != len(data) {
		return nil, fmt.Errorf("shape %v needs %d values, got %d", shape, n, len(data))
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: data}, nil
}

// FromFloat32 converts float32 data (e.g. attention stored in a safetensors file) to a
// float64 tensor.
func FromFloat32(shape []int, data []float32) (*Tensor, error) {
	n, err := Numel(shape)
	if err != nil {
		return nil, err
	}
	if n != len(data) {
		return nil, fmt.Errorf("shape %v needs %d values, got %d", shape, n, len(data))
	}
	out := make([]float64, n)
	for i, v := range data {
		out[i] = float64(v)
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: out}, nil
}

// Check reports a negative dimension or a shape that does not match the data length.
func (t *Tensor) Check() error {
	n, err := Numel(t.Shape)
	if err != nil {
		return fmt.Errorf("shape %v: %w", t.Shape, err)
	}
	if n != len(t.Data) {
		return fmt.Errorf("shape %v holds %d values but the data has %d", t.Shape, n, len(t.Data))
	}
	return nil
}

// Dims returns the rank of t.
func (t *Tensor) Dims() int { return len(t.Shape) }

// Len returns the number of elements of t.
func (t *Tensor) Len() int { return len(t.Data) }

// Size is the number of elements t's shape holds (Len when t is consistent).
func (t *Tensor) Size() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Clone returns a deep copy of t.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float64(nil), t.Data...)}
}

// offset returns the flat index of idx; it panics on a wrong index count or an
// out-of-range index, like a slice index would.
func (t *Tensor) offset(idx []int) int {
	if len(idx) != len(t.Shape) {
		panic(fmt.Sprintf("tensor.Tensor: %d indices for rank %d", len(idx), len(t.Shape)))
	}
	off := 0
	for i, x := range idx {
		if x < 0 || x >= t.Shape[i] {
			panic(fmt.Sprintf("tensor.Tensor: index %d out of range [0,%d) on axis %d", x, t.Shape[i], i))
		}
		off = off*t.Shape[i] + x
	}
	return off
}

// At returns the element at idx.
func (t *Tensor) At(idx ...int) float64 { return t.Data[t.offset(idx)] }

// Set stores v at idx.
func (t *Tensor) Set(v float64, idx ...int) { t.Data[t.offset(idx)] = v }

// Float32 returns the data converted to float32 (for writing .npy/safetensors files).
func (t *Tensor) Float32() []float32 {
	out := make([]float32, len(t.Data))
	for i, v := range t.Data {
		out[i] = float32(v)
	}
	return out
}

// Matrix returns the last two axes at the leading index (l, h) as a flat row-major
// slice (a view, not a copy): for a [L,H,N,M] tensor the N×M matrix of layer l, head
// h; for [L,N,M] the matrix l (h ignored); for [N,M] the whole data.
func (t *Tensor) Matrix(l, h int) []float64 {
	switch len(t.Shape) {
	case 4:
		n := t.Shape[2] * t.Shape[3]
		off := (l*t.Shape[1] + h) * n
		return t.Data[off : off+n]
	case 3:
		n := t.Shape[1] * t.Shape[2]
		return t.Data[l*n : (l+1)*n]
	case 2:
		return t.Data
	}
	panic(fmt.Sprintf("tensor.Tensor.Matrix: rank %d", len(t.Shape)))
}

// Sub returns the sub-tensor at index i of the first axis, a view sharing Data: layer
// l of [L,H,N,N] attention is t.Sub(l), [H,N,N].
func (t *Tensor) Sub(i int) *Tensor {
	if len(t.Shape) == 0 || i < 0 || i >= t.Shape[0] {
		panic(fmt.Sprintf("tensor.Tensor.Sub: index %d for shape %v", i, t.Shape))
	}
	n := 1
	for _, d := range t.Shape[1:] {
		n *= d
	}
	return &Tensor{Shape: append([]int(nil), t.Shape[1:]...), Data: t.Data[i*n : (i+1)*n]}
}
