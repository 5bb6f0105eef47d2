package analysis

import (
	"errors"
	"math"
	"testing"
)

func TestCondense4D(t *testing.T) {
	// (S=2, L=2, 1, H=1, 2, 2): values 0..15; summed over axes 2 then 0.
	d := make([]float64, 16)
	for k := range d {
		d[k] = float64(k)
	}
	six, _ := FromFloat64([]int{2, 2, 1, 1, 2, 2}, d)
	got, err := Condense4D(six)
	if err != nil {
		t.Fatal(err)
	}
	assertShape(t, "condensed", got, 2, 1, 2, 2)
	assertClose(t, "condensed", got.Data, []float64{8, 10, 12, 14, 16, 18, 20, 22}, 0)
	// Singleton layer and head axes are kept (the original's squeeze drops them, §1.12).
	one, _ := FromFloat64([]int{1, 1, 1, 1, 2, 2}, []float64{1, 2, 3, 4})
	got, err = Condense4D(one)
	if err != nil {
		t.Fatal(err)
	}
	assertShape(t, "singletons kept", got, 1, 1, 2, 2)
	if _, err := Condense4D(&Tensor{Shape: []int{2, 2, 2}, Data: make([]float64, 8)}); err == nil {
		t.Fatal("rank 3 accepted")
	}
}

func TestValidateNamesLayerHeadRow(t *testing.T) {
	att := randomAttention(1, 3, 2, 4, true)
	att.Matrix(2, 1)[1*4+0] = -0.25
	err := Validate(att, Check{NonNegative: true})
	var ie *InputError
	if !errors.As(err, &ie) || ie.Layer != 2 || ie.Head != 1 || ie.Row != 1 {
		t.Fatalf("error %v, want layer 2 head 1 row 1", err)
	}
	att = randomAttention(1, 3, 2, 4, true)
	att.Matrix(1, 0)[2*4+1] += 0.1
	if err := Validate(att, Check{RowStochastic: true}); err == nil || err.Error() != "layer 1, head 0, row 2: weights sum to 1.1, want 1 (±0.0001)" {
		t.Fatalf("row-sum error %v", err)
	}
	z := New(1, 1, 2, 2)
	if err := Validate(z, Check{RowStochastic: true, AllowZeroRows: true}); err != nil {
		t.Fatalf("zero rows refused: %v", err)
	}
	inf := randomAttention(1, 1, 1, 2, false)
	inf.Data[0] = math.Inf(1)
	if err := Validate(inf, Check{}); err == nil {
		t.Fatal("+Inf accepted")
	}
}
