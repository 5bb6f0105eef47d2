// Package storetest writes runs for the tests of the packages that read them, as
// net/http/httptest serves the tests of HTTP clients.
package storetest

import (
	"testing"
	"time"

	"github.com/attnscope/attnscope/store"
)

// QKLayer is one layer of a synthetic --store qk sample: queries [heads, n, hd], keys
// [kvHeads, n, hd] and each query row's log-sum-exp [heads, n].
type QKLayer struct {
	Q, K []float32
	LSE  []float64
}

// WriteQKRun creates a run in dir holding one causal --store qk sample "s" of n
// tokens with the given layers (heads query heads over kvHeads key heads of hd
// dimensions). Each log-sum-exp is stored as a capture stores it: its float32
// rounding (attn.lse) and the float32 of the remainder (attn.lse_lo).
func WriteQKRun(t testing.TB, dir string, heads, kvHeads, n, hd int, layers []QKLayer) *store.Run {
	t.Helper()
	r, err := store.Create(dir, store.Meta{Kind: "capture", DType: "float32", Store: "qk", StartTime: time.Unix(0, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.NewSample("s", store.SampleOptions{Layers: len(layers), QK: true, Causal: true, KVHeads: kvHeads})
	if err != nil {
		t.Fatal(err)
	}
	for l, layer := range layers {
		hi, lo := make([]float32, len(layer.LSE)), make([]float32, len(layer.LSE))
		for i, v := range layer.LSE {
			hi[i] = float32(v)
			lo[i] = float32(v - float64(hi[i]))
		}
		for _, rec := range []struct {
			name  string
			shape []int
			data  []float32
		}{{store.QName(l), []int{heads, n, hd}, layer.Q}, {store.KName(l), []int{kvHeads, n, hd}, layer.K},
			{store.LSEName(l), []int{heads, n}, hi}, {store.LSELoName(l), []int{heads, n}, lo}} {
			if err := w.Record(rec.name, rec.shape, rec.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Commit(&store.Sample{ID: "s", Text: "s"}); err != nil {
		t.Fatal(err)
	}
	return r
}
