package web

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"sync"
	"unsafe"

	"github.com/attnscope/attnscope/checkpoint"
)

// TileSize is the side of a tile in cells.
const TileSize = 256

// thumbMax is the largest side of the top pyramid level: the model view's
// thumbnails are whole top levels.
const thumbMax = 64

// cacheFrom is the first pyramid level kept in the cache file; lower levels are
// pooled on request from the memory-mapped attention file (a level-1 tile reads
// 512 × 512 cells, well under a millisecond), so the cache stays small (an
// 8,192-token head: 43 MB instead of the 256 MB of its full matrix).
const cacheFrom = 2

// Pool is how a pyramid level summarises the 2^z × 2^z block of cells under one of
// its cells.
type Pool int

// The two pyramids.
const (
	Max  Pool = iota // largest weight of the block: single strong cells stay visible
	Mean             // average weight of the block (cells beyond the matrix edge excluded)
)

func parsePool(s string) (Pool, bool) {
	switch s {
	case "max":
		return Max, true
	case "mean":
		return Mean, true
	}
	return 0, false
}

// Geometry describes the pyramid of an N × N matrix: level z has
// ceil(N / 2^z) cells per side, cell (i, j) pooling rows [i·2^z, (i+1)·2^z) and
// columns [j·2^z, (j+1)·2^z) of the matrix (cut at N); levels run from 0 (the
// matrix itself) to the first whose side is at most thumbMax.
type Geometry struct {
	N      int `json:"n"`
	Tile   int `json:"tile"`
	Levels int `json:"levels"`
}

func newGeometry(n int) Geometry {
	g := Geometry{N: n, Tile: TileSize, Levels: 1}
	for g.Dim(g.Levels-1) > thumbMax {
		g.Levels++
	}
	return g
}

// Dim is the side of level z in cells.
func (g Geometry) Dim(z int) int { return (g.N + (1 << z) - 1) >> z }

// Tiles is the number of tiles per side of level z.
func (g Geometry) Tiles(z int) int { return (g.Dim(z) + g.Tile - 1) / g.Tile }

// matrix is a square matrix the pyramid is built from.
type matrix interface {
	// Size is N.
	Size() int
	// Row decodes columns [c0, c1) of row r into dst (len c1-c0).
	Row(r, c0, c1 int, dst []float32)
}

// rawMatrix is one N × N matrix stored little-endian in b (a memory-mapped
// safetensors tensor, possibly one head of several), starting at element off.
type rawMatrix struct {
	b   []byte
	dt  checkpoint.DType
	n   int
	off int
}

func (m rawMatrix) Size() int { return m.n }

func (m rawMatrix) Row(r, c0, c1 int, dst []float32) {
	base := m.off + r*m.n
	switch m.dt {
	case checkpoint.F32:
		b := m.b[4*(base+c0) : 4*(base+c1)]
		for i := range dst[:c1-c0] {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case checkpoint.F16:
		b := m.b[2*(base+c0) : 2*(base+c1)]
		t := halfTable()
		for i := range dst[:c1-c0] {
			dst[i] = t[binary.LittleEndian.Uint16(b[2*i:])]
		}
	case checkpoint.BF16:
		b := m.b[2*(base+c0) : 2*(base+c1)]
		for i := range dst[:c1-c0] {
			dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
	}
}

// halfTable maps every float16 bit pattern to its float32 value
// (checkpoint.HalfToFloat32), built once: a lookup is several times faster than
// the conversion.
var halfTable = sync.OnceValue(func() *[1 << 16]float32 {
	t := new([1 << 16]float32)
	for i := range t {
		t[i] = checkpoint.HalfToFloat32(uint16(i))
	}
	return t
})

// denseMatrix is an N × N matrix in memory (a derived output).
type denseMatrix struct {
	n    int
	data []float32
}

func (m denseMatrix) Size() int { return m.n }

func (m denseMatrix) Row(r, c0, c1 int, dst []float32) {
	copy(dst, m.data[r*m.n+c0:r*m.n+c1])
}

// Percentiles are the percentiles of the matrix's values a pyramid records for
// colour clipping.
var Percentiles = []float64{50, 90, 95, 99, 99.5, 99.9, 100}

// pyramid holds the cached levels (z ≥ cacheFrom) of one matrix and the
// percentiles of its values.
type pyramid struct {
	geo Geometry
	// max[z-cacheFrom], mean[z-cacheFrom]: level z, Dim(z)² cells row-major.
	max, mean [][]float32
	// pct[i] is Percentiles[i] of the values, to within 1% relative (the upper
	// edge of a histogram bin of the float32 bit patterns).
	pct []float32
	min float32
	// m is the matrix itself when it was read into memory (a derived output);
	// nil for memory-mapped attention.
	m matrix
}

func (p *pyramid) bytes() int {
	n := 64
	if d, ok := p.m.(denseMatrix); ok {
		n += 4 * len(d.data)
	}
	for i := range p.max {
		n += 4 * (len(p.max[i]) + len(p.mean[i]))
	}
	return n
}

// bitKey maps a float32 to a uint32 that orders like the value.
func bitKey(v float32) uint32 {
	b := math.Float32bits(v)
	if b&(1<<31) != 0 {
		return ^b
	}
	return b | 1<<31
}

func fromBitKey(k uint32) float32 {
	if k&(1<<31) != 0 {
		return math.Float32frombits(k &^ (1 << 31))
	}
	return math.Float32frombits(^k)
}

// buildPyramid reads the matrix once (poolMatrix), pooling it into level
// cacheFrom (when the pyramid has one) and counting its values into a histogram
// of the top 16 bits of their ordered bit patterns; higher levels are pooled from
// the level below, means weighted by the number of matrix cells under each cell.
func buildPyramid(m matrix) *pyramid {
	n := m.Size()
	g := newGeometry(n)
	p := &pyramid{geo: g}
	cached := g.Levels > cacheFrom
	f := 0
	if cached {
		f = 1 << cacheFrom
	}
	pm := poolMatrix(m, f, true, defaultWorkers())
	p.pct, p.min = histPercentiles(pm.hist, int64(n)*int64(n))
	if !cached {
		return p
	}
	p.max, p.mean = [][]float32{pm.max}, [][]float32{pm.mean}
	for z := cacheFrom + 1; z < g.Levels; z++ {
		mx, mn := poolLevel(n, z, p.max[len(p.max)-1], p.mean[len(p.mean)-1])
		p.max, p.mean = append(p.max, mx), append(p.mean, mn)
	}
	return p
}

// blockCells is how many matrix rows (or columns) cell i of level z covers.
func blockCells(n, z, i int) int { return min((i+1)<<z, n) - i<<z }

// poolLevel pools level z-1 (max and mean) 2 × 2 into level z. Means are
// weighted by the number of matrix cells under each cell, which differs only at
// the matrix's edge.
func poolLevel(n, z int, pmax, pmean []float32) ([]float32, []float32) {
	pd, d := (n+(1<<(z-1))-1)>>(z-1), (n+(1<<z)-1)>>z
	mx, mn := make([]float32, d*d), make([]float32, d*d)
	full := n >> z // cells 0..full-1 of level z hold 2 × 2 full cells below
	for i := range d {
		for j := range d {
			if i < full && j < full {
				a, b := (2*i)*pd+2*j, (2*i+1)*pd+2*j
				mx[i*d+j] = max(pmax[a], pmax[a+1], pmax[b], pmax[b+1])
				mn[i*d+j] = float32((float64(pmean[a]) + float64(pmean[a+1]) + float64(pmean[b]) + float64(pmean[b+1])) / 4)
				continue
			}
			bm := float32(math.Inf(-1))
			var s, w float64
			for a := 2 * i; a < min(2*i+2, pd); a++ {
				for b := 2 * j; b < min(2*j+2, pd); b++ {
					bm = max(bm, pmax[a*pd+b])
					c := float64(blockCells(n, z-1, a) * blockCells(n, z-1, b))
					s += float64(pmean[a*pd+b]) * c
					w += c
				}
			}
			mx[i*d+j], mn[i*d+j] = bm, float32(s/w)
		}
	}
	return mx, mn
}

func histPercentiles(hist []int64, total int64) ([]float32, float32) {
	out := make([]float32, len(Percentiles))
	var lo float32
	first := true
	var cum int64
	k := 0
	for b, c := range hist {
		if c == 0 {
			continue
		}
		if first {
			lo, first = fromBitKey(uint32(b)<<16), false
		}
		cum += c
		for k < len(Percentiles) && float64(cum) >= Percentiles[k]/100*float64(total) {
			out[k] = fromBitKey(uint32(b)<<16 | 0xffff)
			k++
		}
	}
	for ; k < len(out); k++ {
		out[k] = fromBitKey(uint32(len(hist)-1)<<16 | 0xffff)
	}
	return out, lo
}

// tile returns tile (ty, tx) of level z, rows × cols cells row-major (edge tiles
// are smaller). Levels below cacheFrom are pooled from m.
func (p *pyramid) tile(m matrix, pool Pool, z, ty, tx int) (rows, cols int, out []float32) {
	g := p.geo
	d := g.Dim(z)
	r0, c0 := ty*g.Tile, tx*g.Tile
	rows, cols = min(g.Tile, d-r0), min(g.Tile, d-c0)
	out = make([]float32, rows*cols)
	if z >= cacheFrom {
		src := p.max[z-cacheFrom]
		if pool == Mean {
			src = p.mean[z-cacheFrom]
		}
		for i := range rows {
			copy(out[i*cols:(i+1)*cols], src[(r0+i)*d+c0:])
		}
		return rows, cols, out
	}
	poolTile(m, pool, z, r0, c0, rows, cols, out)
	return rows, cols, out
}

// poolTile pools the matrix cells under cells [r0, r0+rows) × [c0, c0+cols) of
// level z straight from m.
func poolTile(m matrix, pool Pool, z, r0, c0, rows, cols int, out []float32) {
	n, f := m.Size(), 1<<z
	mc0, mc1 := c0*f, min((c0+cols)*f, n)
	buf := make([]float32, mc1-mc0)
	sums := make([]float64, cols)
	for i := range rows {
		o := out[i*cols : (i+1)*cols]
		if pool == Max {
			for j := range o {
				o[j] = float32(math.Inf(-1))
			}
		} else {
			clear(sums)
		}
		mr0, mr1 := (r0+i)*f, min((r0+i+1)*f, n)
		for r := mr0; r < mr1; r++ {
			m.Row(r, mc0, mc1, buf)
			for j := range cols {
				seg := buf[j*f : min((j+1)*f, len(buf))]
				if pool == Max {
					b := o[j]
					for _, v := range seg {
						b = max(b, v)
					}
					o[j] = b
				} else {
					var s float64
					for _, v := range seg {
						s += float64(v)
					}
					sums[j] += s
				}
			}
		}
		if pool == Mean {
			for j := range cols {
				o[j] = float32(sums[j] / float64((mr1-mr0)*blockCells(n, z, c0+j)))
			}
		}
	}
}

// Cache file layout (little-endian): magic, then int64 N, source size, source
// modification time (ns), then the percentiles and the minimum as float32, then
// for each level z ≥ cacheFrom the max cells and the mean cells as float32.
const pyramidMagic = "ATTNPYR1"

// encode writes the cache file to w, the levels straight from memory (no copy
// of the pyramid on little-endian machines).
func (p *pyramid) encode(w io.Writer, srcSize, srcMod int64) error {
	b := append([]byte(nil), pyramidMagic...)
	for _, v := range []int64{int64(p.geo.N), srcSize, srcMod} {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	b = appendFloats(b, p.pct)
	b = appendFloats(b, []float32{p.min})
	if _, err := w.Write(b); err != nil {
		return err
	}
	for i := range p.max {
		if err := writeFloats32(w, p.max[i]); err != nil {
			return err
		}
		if err := writeFloats32(w, p.mean[i]); err != nil {
			return err
		}
	}
	return nil
}

// littleEndian is whether float32 slices can be written as they lie in memory.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

func appendFloats(b []byte, v []float32) []byte {
	if len(v) > 0 && littleEndian {
		return append(b, unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))...)
	}
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// writeFloats32 writes v little-endian, without a copy on little-endian machines.
func writeFloats32(w io.Writer, v []float32) error {
	if len(v) == 0 {
		return nil
	}
	if littleEndian {
		_, err := w.Write(unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v)))
		return err
	}
	for len(v) > 0 {
		k := min(len(v), 1<<14)
		if _, err := w.Write(appendFloats(nil, v[:k])); err != nil {
			return err
		}
		v = v[k:]
	}
	return nil
}

// readFloats decodes k little-endian float32 values from the front of *b and
// advances it.
func readFloats(b *[]byte, k int) []float32 {
	out := make([]float32, k)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32((*b)[4*i:]))
	}
	*b = (*b)[4*k:]
	return out
}

// decodePyramid reads a cache file; it fails (and the pyramid is rebuilt) when the
// file does not match the source's N, size and modification time.
func decodePyramid(b []byte, n int, srcSize, srcMod int64) (*pyramid, error) {
	g := newGeometry(n)
	want := len(pyramidMagic) + 24 + 4*len(Percentiles) + 4
	for z := cacheFrom; z < g.Levels; z++ {
		want += 8 * g.Dim(z) * g.Dim(z)
	}
	if len(b) != want || string(b[:len(pyramidMagic)]) != pyramidMagic {
		return nil, fmt.Errorf("tile cache: %d bytes, %d expected", len(b), want)
	}
	b = b[len(pyramidMagic):]
	hdr := []int64{int64(binary.LittleEndian.Uint64(b)), int64(binary.LittleEndian.Uint64(b[8:])), int64(binary.LittleEndian.Uint64(b[16:]))}
	if hdr[0] != int64(n) || hdr[1] != srcSize || hdr[2] != srcMod {
		return nil, fmt.Errorf("tile cache: made from another version of the source")
	}
	b = b[24:]
	floats := func(k int) []float32 { return readFloats(&b, k) }
	p := &pyramid{geo: g, pct: floats(len(Percentiles))}
	p.min = floats(1)[0]
	for z := cacheFrom; z < g.Levels; z++ {
		d := g.Dim(z)
		p.max = append(p.max, floats(d*d))
		p.mean = append(p.mean, floats(d*d))
	}
	return p, nil
}
