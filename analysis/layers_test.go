package analysis

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// naiveMeanRef and unitJSDRef are the whole-tensor loops (the implementations before
// the layer-by-layer versions), summing in the same order.
func naiveMeanRef(att *Tensor) *Tensor {
	N := att.Shape[2]
	out := New(N, N)
	for l := 0; l < att.Shape[0]; l++ {
		for h := 0; h < att.Shape[1]; h++ {
			for k, v := range att.Matrix(l, h) {
				out.Data[k] += v
			}
		}
	}
	n := float64(att.Shape[0] * att.Shape[1])
	for k := range out.Data {
		out.Data[k] /= n
	}
	return out
}

func unitJSDRef(att *Tensor) *Tensor {
	L, H, N := att.Shape[0], att.Shape[1], att.Shape[2]
	U := L * H
	out := New(U, U)
	for u := 0; u < U; u++ {
		for v := u + 1; v < U; v++ {
			d, _ := meanRowJS(att.Matrix(u/H, u%H), att.Matrix(v/H, v%H), N)
			out.Data[u*U+v], out.Data[v*U+u] = d, d
		}
	}
	return out
}

// The layer-by-layer versions equal the whole-tensor loops bit for bit, read each layer
// the stated number of times, and name a bad layer by its index.
func TestLayerByLayerVersionsMatch(t *testing.T) {
	for _, causal := range []bool{true, false} {
		att := randomAttention(11, 4, 3, 9, causal)
		L := att.Shape[0]
		reads := 0
		counted := func(l int) (*Tensor, error) {
			if l < 0 || l >= L {
				t.Fatalf("layer %d read, have %d", l, L)
			}
			reads++
			return LayerViews(att)(l)
		}
		wantMean := naiveMeanRef(att)
		gotMean, err := NaiveMeanLayers(L, counted)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gotMean, wantMean) || reads != L {
			t.Errorf("causal=%v: NaiveMeanLayers differs from NaiveMean (or read %d layers, want %d)", causal, reads, L)
		}
		if m, err := NaiveMean(att); err != nil || !reflect.DeepEqual(m, wantMean) {
			t.Errorf("causal=%v: NaiveMean differs from the whole-tensor loop (%v)", causal, err)
		}
		reads = 0
		wantJS := unitJSDRef(att)
		if d, err := UnitJSD(att); err != nil || !reflect.DeepEqual(d, wantJS) {
			t.Errorf("causal=%v: UnitJSD differs from the whole-tensor loop (%v)", causal, err)
		}
		gotJS, err := UnitJSDLayers(context.Background(), L, counted)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gotJS, wantJS) || reads != L*(L+1)/2 {
			t.Errorf("causal=%v: UnitJSDLayers differs from UnitJSD (or read %d layers, want %d)", causal, reads, L*(L+1)/2)
		}
	}

	att := randomAttention(12, 3, 2, 4, true)
	att.Matrix(2, 1)[5] = -0.25
	_, err := UnitJSDLayers(context.Background(), 3, LayerViews(att))
	var ie *InputError
	if !errors.As(err, &ie) || ie.Layer != 2 || !strings.Contains(err.Error(), "layer 2") {
		t.Errorf("negative weight in layer 2: err = %v", err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := UnitJSDLayers(cancelled, 3, LayerViews(randomAttention(13, 3, 2, 4, true))); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}
