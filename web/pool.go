package web

import (
	"encoding/binary"
	"math"
	"runtime"
	"sync"

	"github.com/attnscope/attnscope/checkpoint"
)

// pooled is a matrix pooled in one pass into blocks of f × f cells: the largest
// value and the mean of each block (d × d blocks row-major, d = ceil(N / f), edge
// blocks cut at N, means over the cells they hold), and optionally the histogram
// of the values over the top 16 bits of their ordered bit patterns (bitKey).
type pooled struct {
	d    int
	max  []float32
	mean []float32
	hist []int64 // nil unless asked for
}

// finishRow stores block row i, pooled: the largest values and the sums so
// far of its blocks, written as maxima and means (sum / cells).
func (p *pooled) finishRow(n, f, i int, mx []float32, sum []float64) {
	d := p.d
	rows := float64(min((i+1)*f, n) - i*f)
	for j := range d {
		p.max[i*d+j] = mx[j]
		p.mean[i*d+j] = float32(sum[j] / (rows * float64(min((j+1)*f, n)-j*f)))
	}
}

// poolMatrix reads m once, row by row, in bands of whole block rows spread over
// at most workers goroutines, pooling into blocks of f × f cells (f = 0: no
// pooling, only the histogram) and counting the histogram when hist is set.
//
// 16-bit matrices (float16, bfloat16) memory-mapped from a safetensors file are
// pooled on their bit patterns: the maximum is taken over order-preserving
// integer keys and converted once per block, sums add a float64 table lookup per
// cell, and the histogram counts raw bit patterns (zeros, the upper triangle of
// a causal head, in a register), mapped to the float32 bins once at the end. The
// results are the same as decoding every cell to float32 first.
func poolMatrix(m matrix, f int, hist bool, workers int) *pooled {
	n := m.Size()
	p := &pooled{}
	bf := f
	if f > 0 {
		p.d = (n + f - 1) / f
		p.max = make([]float32, p.d*p.d)
		p.mean = make([]float32, p.d*p.d)
	} else {
		bf = 1
	}
	bands := (n + bf - 1) / bf
	workers = max(1, min(workers, bands))
	per := (bands + workers - 1) / workers * bf
	hists := make([][]int64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		r0, r1 := w*per, min((w+1)*per, n)
		if r0 >= r1 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if raw, ok := m.(rawMatrix); ok && (raw.dt == checkpoint.F16 || raw.dt == checkpoint.BF16) {
				hists[w] = raw.pool16(p, f, r0, r1, hist)
			} else {
				hists[w] = poolFloat(m, p, f, r0, r1, hist)
			}
		}()
	}
	wg.Wait()
	if hist {
		p.hist = make([]int64, 1<<16)
		for _, h := range hists {
			for i, c := range h {
				p.hist[i] += c
			}
		}
	}
	return p
}

// poolFloat pools rows [r0, r1) of any matrix, decoded row by row to float32.
func poolFloat(m matrix, p *pooled, f, r0, r1 int, withHist bool) []int64 {
	n, d := m.Size(), p.d
	var hist []int64
	if withHist {
		hist = make([]int64, 1<<16)
	}
	row := make([]float32, n)
	mx, sm := make([]float32, d), make([]float64, d)
	// Runs of one bin (the zeros above a causal diagonal, for one) are counted
	// in a register, not by incrementing one memory cell again and again.
	last, run := uint32(0), int64(0)
	for r := r0; r < r1; r++ {
		m.Row(r, 0, n, row)
		if withHist {
			for _, v := range row {
				if k := bitKey(v) >> 16; k == last {
					run++
				} else {
					hist[last] += run
					last, run = k, 1
				}
			}
		}
		if f == 0 {
			continue
		}
		if r%f == 0 {
			for j := range mx {
				mx[j], sm[j] = float32(math.Inf(-1)), 0
			}
		}
		for j := range d {
			seg := row[j*f : min((j+1)*f, n)]
			bm := mx[j]
			var s float64
			for _, v := range seg {
				bm = max(bm, v)
				s += float64(v)
			}
			mx[j] = bm
			sm[j] += s
		}
		if r%f == f-1 || r == n-1 {
			p.finishRow(n, f, r/f, mx, sm)
		}
	}
	if withHist {
		hist[last] += run
	}
	return hist
}

// key16 maps a 16-bit float's bit pattern (float16 or bfloat16: sign in the top
// bit) to an integer that orders like the value.
func key16(u uint16) uint16 { return u ^ (uint16(int16(u)>>15) | 0x8000) }

// unkey16 inverts key16.
func unkey16(k uint16) uint16 {
	if k&0x8000 != 0 {
		return k &^ 0x8000
	}
	return ^k
}

// decode16 returns the float32 value of a 16-bit pattern of dtype dt.
func decode16(dt checkpoint.DType, u uint16) float32 {
	if dt == checkpoint.BF16 {
		return math.Float32frombits(uint32(u) << 16)
	}
	return halfTable()[u]
}

// table64 maps every 16-bit pattern of dt to its value as float64.
func table64(dt checkpoint.DType) *[1 << 16]float64 {
	if dt == checkpoint.BF16 {
		return bf16Table64()
	}
	return halfTable64()
}

var halfTable64 = sync.OnceValue(func() *[1 << 16]float64 {
	t, h := new([1 << 16]float64), halfTable()
	for i := range t {
		t[i] = float64(h[i])
	}
	return t
})

var bf16Table64 = sync.OnceValue(func() *[1 << 16]float64 {
	t := new([1 << 16]float64)
	for i := range t {
		t[i] = float64(math.Float32frombits(uint32(i) << 16))
	}
	return t
})

// pool16 pools rows [r0, r1) of a 16-bit matrix on its bit patterns, four
// cells (one 64-bit word) at a time: a word of zeros (above a causal diagonal)
// costs one comparison.
func (m rawMatrix) pool16(p *pooled, f, r0, r1 int, withHist bool) []int64 {
	n, d := m.n, p.d
	tab := table64(m.dt)
	var h16 []uint32
	var zeros, since int64
	var hist []int64
	if withHist {
		h16 = make([]uint32, 1<<16)
		hist = make([]int64, 1<<16)
	}
	flush := func() {
		for u, c := range h16 {
			if c != 0 {
				hist[bitKey(decode16(m.dt, uint16(u)))>>16] += int64(c)
				h16[u] = 0
			}
		}
		hist[bitKey(0)>>16] += zeros
		zeros, since = 0, 0
	}
	// count adds one cell to the histogram.
	count := func(u uint16) {
		if u == 0 {
			zeros++
		} else {
			h16[u]++
		}
	}
	ff := max(f, 1)
	if f == 0 {
		d = 1 // the histogram alone: one block per row, dropped
	}
	ks, sm, mx := make([]uint16, d), make([]float64, d), make([]float32, d)
	for r := r0; r < r1; r++ {
		base := 2 * (m.off + r*n)
		row := m.b[base : base+2*n : base+2*n]
		if r%ff == 0 {
			clear(ks) // below every key
			clear(sm)
		}
		for j := range d {
			seg := row[2*j*ff : 2*min((j+1)*ff, n)]
			if f == 0 {
				seg = row
			}
			k := ks[j]
			var s float64
			q := 0
			for ; q+8 <= len(seg); q += 8 {
				w := binary.LittleEndian.Uint64(seg[q:])
				if w == 0 {
					k = max(k, 0x8000) // key16(0)
					zeros += 4
					continue
				}
				for sh := 0; sh < 64; sh += 16 {
					u := uint16(w >> sh)
					k = max(k, key16(u))
					s += tab[u]
					if withHist {
						count(u)
					}
				}
			}
			for ; q+1 < len(seg); q += 2 {
				u := binary.LittleEndian.Uint16(seg[q:])
				k = max(k, key16(u))
				s += tab[u]
				if withHist {
					count(u)
				}
			}
			ks[j] = k
			sm[j] += s
		}
		if withHist {
			if since += int64(n); since >= 1<<31 {
				flush()
			}
		}
		if f > 0 && (r%f == f-1 || r == n-1) {
			for j, k := range ks {
				mx[j] = decode16(m.dt, unkey16(k))
			}
			p.finishRow(n, f, r/f, mx, sm)
		}
	}
	if withHist {
		flush()
	}
	return hist
}

// defaultWorkers is the number of goroutines a pooling pass uses.
func defaultWorkers() int { return runtime.GOMAXPROCS(0) }
