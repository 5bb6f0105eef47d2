package web

import (
	"fmt"
	"math"
	"net/http"
	"sort"

	"github.com/attnscope/attnscope/store"
)

type neuronJSON struct {
	Layer  int  `json:"layer"`
	Head   int  `json:"head"`
	Query  int  `json:"query"`
	Dim    int  `json:"dim"`
	Causal bool `json:"causal"`
	// Q is the query vector; Keys the key positions whose vectors K holds (the
	// query's maxNeuronKeys largest stored weights when there are more keys).
	Q    []float32   `json:"q"`
	Keys []int       `json:"keys"`
	K    [][]float32 `json:"k"`
	// Score[j] = q·k_j / sqrt(dim) for every key j; Softmax is its softmax over the
	// keys the query may see (j ≤ query when Causal); Stored the captured weights.
	Score   []float64 `json:"score"`
	Softmax []float64 `json:"softmax"`
	Stored  []float32 `json:"stored"`
}

func (s *Server) apiNeuron(w http.ResponseWriter, sd *sampleData, l, h, qi int) error {
	m, err := sd.head(l, h)
	if err != nil {
		return err
	}
	if qi >= sd.n {
		return notFound("sample %s has no token %d (0..%d)", sd.id, qi, sd.n-1)
	}
	// The file must lie inside the run (no symlink out of it) before store reads it.
	if _, _, err := sd.run.sampleFile(sd.id, store.QKVFile); err != nil {
		return notFound("sample %s: queries and keys were not captured (capture --qkv writes %s)", sd.id, store.QKVFile)
	}
	qt, kt, _, err := sd.run.run.QKV(sd.id, l)
	if err != nil {
		return notFound("sample %s: %v", sd.id, err)
	}
	q, k, shape := qt.Float32(), kt.Float32(), qt.Shape
	if shape[0] != sd.heads || shape[1] != sd.n {
		return &httpError{http.StatusUnprocessableEntity, fmt.Sprintf("sample %s: %s holds [%d, %d, %d] for layer %d, attention has %d heads and %d tokens", sd.id, store.QKVFile, shape[0], shape[1], shape[2], l, sd.heads, sd.n)}
	}
	n, d := sd.n, shape[2]
	out := neuronJSON{Layer: l, Head: h, Query: qi, Dim: d, Stored: make([]float32, n),
		Score: make([]float64, n), Softmax: make([]float64, n)}
	m.Row(qi, 0, n, out.Stored)
	// A causal model gives every later key exactly zero weight in every row.
	out.Causal = true
	for j := qi + 1; j < n; j++ {
		if out.Stored[j] != 0 {
			out.Causal = false
			break
		}
	}
	qv := q[(h*n+qi)*d : (h*n+qi+1)*d]
	out.Q = qv
	mx := math.Inf(-1)
	for j := range n {
		kv := k[(h*n+j)*d : (h*n+j+1)*d]
		var dot float64
		for i := range d {
			dot += float64(qv[i]) * float64(kv[i])
		}
		out.Score[j] = dot / math.Sqrt(float64(d))
		if !out.Causal || j <= qi {
			mx = max(mx, out.Score[j])
		}
	}
	var sum float64
	for j := range n {
		if !out.Causal || j <= qi {
			out.Softmax[j] = math.Exp(out.Score[j] - mx)
			sum += out.Softmax[j]
		}
	}
	for j := range out.Softmax {
		out.Softmax[j] /= sum
	}
	keys := make([]int, 0, n)
	for j := range n {
		if !out.Causal || j <= qi {
			keys = append(keys, j)
		}
	}
	if len(keys) > maxNeuronKeys {
		sort.SliceStable(keys, func(a, b int) bool { return out.Stored[keys[a]] > out.Stored[keys[b]] })
		keys = keys[:maxNeuronKeys]
		sort.Ints(keys)
	}
	out.Keys = keys
	for _, j := range keys {
		out.K = append(out.K, k[(h*n+j)*d:(h*n+j+1)*d])
	}
	for i, v := range out.Score {
		if math.IsInf(v, 0) || math.IsNaN(v) {
			out.Score[i] = 0
		}
	}
	return writeJSON(w, out)
}
