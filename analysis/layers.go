package analysis

import (
	"context"
	"errors"
	"fmt"
)

// LayerFunc returns layer l of a [L,H,N,N] attention tensor as [1,H,N,N]. Functions that
// take one read layers as they need them, so the whole tensor need not be in memory.
type LayerFunc func(l int) (*Tensor, error)

// LayerViews returns a LayerFunc of views of att ([L,H,N,N]).
func LayerViews(att *Tensor) LayerFunc {
	size := len(att.Data) / max(1, att.Shape[0])
	return func(l int) (*Tensor, error) {
		return &Tensor{Shape: append([]int{1}, att.Shape[1:]...), Data: att.Data[l*size : (l+1)*size]}, nil
	}
}

// readLayer reads layer l through layer, checks it (shape [1,H,N,N] matching want when
// want is set; finite and, if nonNeg, non-negative when check is set) and returns it.
func readLayer(layer LayerFunc, l int, want []int, check, nonNeg bool) (*Tensor, error) {
	t, err := layer(l)
	if err != nil {
		return nil, err
	}
	if len(t.Shape) != 4 || t.Shape[0] != 1 {
		return nil, inputErr(l, -1, -1, "layer has shape %v, want [1,H,N,N]", t.Shape)
	}
	if want != nil && (t.Shape[1] != want[1] || t.Shape[2] != want[2] || t.Shape[3] != want[3]) {
		return nil, inputErr(l, -1, -1, "layer has shape %v, layer 0 %v", t.Shape, want)
	}
	if check {
		if err := Validate(t, Check{NonNegative: nonNeg}); err != nil {
			var ie *InputError
			if errors.As(err, &ie) && ie.Layer == 0 {
				e := *ie
				e.Layer = l
				return nil, &e
			}
			return nil, fmt.Errorf("layer %d: %w", l, err)
		}
	}
	return t, nil
}

// NaiveMeanLayers is NaiveMean reading L ≥ 1 layers one at a time through layer: the
// sums run in NaiveMean's order, so the result is identical with one layer in memory.
func NaiveMeanLayers(L int, layer LayerFunc) (*Tensor, error) {
	if L < 1 {
		return nil, inputErr(-1, -1, -1, "naive mean needs at least one layer, got %d", L)
	}
	var (
		out   *Tensor
		shape []int
	)
	for l := 0; l < L; l++ {
		t, err := readLayer(layer, l, shape, true, false)
		if err != nil {
			return nil, err
		}
		if out == nil {
			shape = t.Shape
			out = New(t.Shape[2], t.Shape[3])
		}
		for h := 0; h < t.Shape[1]; h++ {
			for k, v := range t.Matrix(0, h) {
				out.Data[k] += v
			}
		}
	}
	n := float64(L * shape[1])
	for k := range out.Data {
		out.Data[k] /= n
	}
	return out, nil
}

// UnitJSDLayers is UnitJSDContext reading L ≥ 1 layers through layer with at most two in
// memory: block (l, m ≥ l) of the [L·H, L·H] output is computed from layers l and m, so
// layer m is read m+1 times (L(L+1)/2 reads). The values are identical to UnitJSDContext's.
func UnitJSDLayers(ctx context.Context, L int, layer LayerFunc) (*Tensor, error) {
	if L < 1 {
		return nil, inputErr(-1, -1, -1, "JS distance between units needs at least one layer, got %d", L)
	}
	var (
		out   *Tensor
		shape []int
	)
	for l := 0; l < L; l++ {
		a, err := readLayer(layer, l, shape, l == 0, true) // every layer is first read (and checked) for l = 0
		if err != nil {
			return nil, err
		}
		if out == nil {
			shape = a.Shape
			out = New(L*shape[1], L*shape[1])
		}
		H, N, U := shape[1], shape[2], L*shape[1]
		for m := l; m < L; m++ {
			b := a
			if m > l {
				if b, err = readLayer(layer, m, shape, l == 0, true); err != nil {
					return nil, err
				}
			}
			err := parallelFor(ctx, H, func(h int) {
				u := l*H + h
				for g := 0; g < H; g++ {
					if v := m*H + g; v > u {
						d, _ := meanRowJS(a.Matrix(0, h), b.Matrix(0, g), N)
						out.Data[u*U+v], out.Data[v*U+u] = d, d
					}
				}
			})
			if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
