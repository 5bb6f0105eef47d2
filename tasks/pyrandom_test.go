package tasks

import (
	"math/big"
	"slices"
	"testing"
)

// The expected values were printed by CPython 3.11 (`random.Random(seed)`),
// e.g. python3 -c "import random; r=random.Random(0); print(r.randint(1,3))".
func TestPyRandomMatchesCPython(t *testing.T) {
	r := NewPyRandom(12345678901234)
	got := []uint64{r.GetRandBits(32), r.GetRandBits(32), r.GetRandBits(32)}
	if want := []uint64{107551873, 2403399316, 624174316}; !slices.Equal(got, want) {
		t.Fatalf("getrandbits(32) = %v, want %v", got, want)
	}
	if v := r.Random(); v != 0.825350086586161 {
		t.Fatalf("random() = %v, want 0.825350086586161", v)
	}
	if v := r.GetRandBits(45); v != 14252977119490 {
		t.Fatalf("getrandbits(45) = %d, want 14252977119490", v)
	}
	if v := r.RandInt(5, 1000); v != 993 {
		t.Fatalf("randint(5,1000) = %d, want 993", v)
	}
	if v := r.bigGetRandBits(100); v.String() != "552267628238755558315012599427" {
		t.Fatalf("getrandbits(100) = %s", v)
	}

	r = NewPyRandom(0)
	if v := r.RandInt(1, 3); v != 2 {
		t.Fatalf("randint(1,3) = %d, want 2", v)
	}
	if got, want := r.Sample(100, 7), []int{97, 53, 5, 33, 65, 62, 51}; !slices.Equal(got, want) {
		t.Fatalf("sample(range(100),7) = %v, want %v", got, want)
	}
	if got, want := r.Sample(10, 4), []int{4, 7, 5, 9}; !slices.Equal(got, want) {
		t.Fatalf("sample(range(10),4) = %v, want %v", got, want)
	}
	if got, want := r.Choices(62, 5), []int{55, 13, 8, 8, 5}; !slices.Equal(got, want) {
		t.Fatalf("choices = %v, want %v", got, want)
	}
	x := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	r.ShuffleIndices(len(x), func(i, j int) { x[i], x[j] = x[j], x[i] })
	if want := []int{3, 9, 1, 6, 5, 0, 7, 2, 8, 4}; !slices.Equal(x, want) {
		t.Fatalf("shuffle = %v, want %v", x, want)
	}
	lo, _ := new(big.Int).SetString("1000000000000000000000000000000", 10)
	hi, _ := new(big.Int).SetString("10000000000000000000000000000000", 10)
	if v := r.BigRandInt(lo, hi); v.String() != "7204848359643575816155156320647" {
		t.Fatalf("randint(10**30,10**31) = %s", v)
	}

	if v := NewPyRandom(-7).Random(); v != 0.32383276483316237 {
		t.Fatalf("Random(-7).random() = %v, want 0.32383276483316237", v)
	}
}
