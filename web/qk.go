package web

import (
	"fmt"
	"math"
	"net/http"
	"sync"

	"github.com/attnscope/attnscope/store"
)

// qkSource serves the heads of a sample captured with --store qk: rows of the
// attention recomputed from its queries, keys and log-sum-exps by the store's
// tile API (store.QKReader). The reader loads one layer at a time and is not
// safe for concurrent use: mu guards it.
type qkSource struct {
	mu      sync.Mutex
	r       *store.QKReader
	n       int
	release func() error
}

// qkBlockRows is the number of rows recomputed at a time for the matrix view.
const qkBlockRows = 64

// openQK opens sample sd's qk.safetensors.
func (sd *sampleData) openQK() error {
	size, mod, err := sd.run.sampleFile(sd.id, store.QKFile)
	if err != nil {
		return err
	}
	r, err := sd.run.run.OpenQK(sd.id)
	if err != nil {
		return &httpError{http.StatusUnprocessableEntity, fmt.Sprintf("run %s, sample %s: %v", sd.run.key, sd.id, err)}
	}
	info := r.Info()
	sd.qk = &qkSource{r: r, n: info.Tokens, release: r.Close}
	sd.layers, sd.heads, sd.n = info.Layers, info.Heads, info.Tokens
	sd.attSize, sd.attMod = size, mod
	return nil
}

// qkMatrix is head h of layer l of a qk sample, with the blocks of rows last
// recomputed (the pyramid reads bands of rows in parallel, each in order).
type qkMatrix struct {
	src  *qkSource
	l, h int

	mu     sync.Mutex
	blocks map[qkBlock][]float64 // rows [r0, r0+qkBlockRows) × columns [c0, c1)
	order  []qkBlock             // oldest first
}

// qkBlock names a block of rows and the columns recomputed for it: the pyramid
// reads whole rows, a tile at full resolution only its own columns.
type qkBlock struct{ r0, c0, c1 int }

// qkKeepBlocks is the number of row blocks a qkMatrix keeps.
const qkKeepBlocks = 16

func (m *qkMatrix) Size() int { return m.src.n }

// Row recomputes (the block of qkBlockRows rows holding) row r, columns
// [c0, c1) only, and copies it rounded to float32 as a full capture stores it.
func (m *qkMatrix) Row(r, c0, c1 int, dst []float32) {
	s := m.src
	key := qkBlock{r - r%qkBlockRows, c0, c1}
	m.mu.Lock()
	block := m.blocks[key]
	m.mu.Unlock()
	if block == nil {
		s.mu.Lock()
		t, err := s.r.Tile(m.l, m.h, key.r0, min(s.n, key.r0+qkBlockRows), c0, c1)
		s.mu.Unlock()
		if err != nil {
			// head read the layer once (check) and rows are asked inside the
			// matrix, so only a file damaged since then fails here: NaN rows.
			for i := range dst[:c1-c0] {
				dst[i] = float32(math.NaN())
			}
			return
		}
		block = t.Data
		m.mu.Lock()
		if m.blocks == nil {
			m.blocks = map[qkBlock][]float64{}
		}
		if _, ok := m.blocks[key]; !ok {
			m.blocks[key] = block
			m.order = append(m.order, key)
			if len(m.order) > qkKeepBlocks {
				delete(m.blocks, m.order[0])
				m.order = m.order[1:]
			}
		}
		m.mu.Unlock()
	}
	row := block[(r-key.r0)*(c1-c0):]
	for i := range dst[:c1-c0] {
		dst[i] = float32(row[i])
	}
}

// check reads layer l (a one-weight tile of head h), so that a damaged file is
// an error of the request rather than NaN rows.
func (s *qkSource) check(l, h int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.r.Tile(l, h, 0, 1, 0, 1)
	return err
}
