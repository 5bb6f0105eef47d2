package store

import (
	"math"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// syntheticQK is a QKReader over random float32-valued queries and keys (scores up
// to about ±scoreScale) with each row's log-sum-exp computed in float64.
func syntheticQK(heads, kvHeads, n, hd int, causal bool, scoreScale float64) *QKReader {
	rng := rand.New(rand.NewPCG(11, uint64(n)))
	q := &QKReader{info: TensorsInfo{Layers: 1, Heads: heads, KVHeads: kvHeads, Tokens: n, HeadDim: hd, Causal: causal}, layer: 0}
	q.panels = (n + qkPanel - 1) / qkPanel
	q.q64 = make([]float64, heads*n*hd)
	for i := range q.q64 {
		q.q64[i] = float64(float32(rng.NormFloat64() * scoreScale / math.Sqrt(math.Sqrt(float64(hd)))))
	}
	q.kp = make([]float64, kvHeads*q.panels*hd*qkPanel)
	for kh := range kvHeads {
		for j := range n {
			for d := range hd {
				q.kp[((kh*q.panels+j/qkPanel)*hd+d)*qkPanel+j%qkPanel] = float64(float32(rng.NormFloat64() / math.Sqrt(math.Sqrt(float64(hd)))))
			}
		}
	}
	q.lse = make([]float64, heads*n)
	q.qRead, q.kRead = readFlags(heads, (n+qkChunk-1)/qkChunk), readFlags(kvHeads, (n+qkChunk-1)/qkChunk)
	for _, f := range append(q.qRead, q.kRead...) {
		for i := range f {
			f[i] = true // all held in memory
		}
	}
	for h := range heads {
		for i := range n {
			// log Σ exp(s) from the exact row: ExactRow's normaliser.
			row, _ := q.exactScores(h, i)
			m := math.Inf(-1)
			for _, s := range row {
				m = max(m, s)
			}
			sum := 0.0
			for _, s := range row {
				sum += math.Exp(s - m)
			}
			q.lse[h*n+i] = m + math.Log(sum)
		}
	}
	return q
}

func (q *QKReader) exactScores(h, i int) ([]float64, error) {
	n, hd := q.info.Tokens, q.info.HeadDim
	kh := h / (q.info.Heads / q.info.KVHeads)
	end := n
	if q.info.Causal {
		end = i + 1
	}
	s := make([]float64, end)
	for j := range end {
		dot := 0.0
		for d := range hd {
			dot += q.q64[(h*n+i)*hd+d] * q.kAt(kh, j, d)
		}
		s[j] = dot / math.Sqrt(float64(hd))
	}
	return s, nil
}

// TestTileKernels: on random queries and keys (GQA, causal and not, scores up to
// ~±30 as in trained models, head_dim 64, 24 and 16, tokens not a multiple of the
// panel, more keys than one chunk of panels), tiles at odd offsets from the vector kernel (when the CPU has AVX-512)
// equal the portable kernel's within 1e-15 and the float64 softmax (ExactRow)
// within 1e-12, masked weights exactly 0; RowsInto fills a reused buffer with
// the same values as Tile.
func TestTileKernels(t *testing.T) {
	for _, c := range []struct {
		heads, kv, n, hd int
		causal           bool
		scale            float64
	}{{4, 2, 203, 64, true, 30}, {2, 1, 150, 24, false, 5}, {3, 3, 77, 64, true, 1}, {2, 1, 1100, 16, true, 10}} {
		q := syntheticQK(c.heads, c.kv, c.n, c.hd, c.causal, c.scale)
		worst, worstScalar := 0.0, 0.0
		for h := range c.heads {
			for _, tl := range [][4]int{{0, c.n, 0, c.n}, {5, 40, 3, 61}, {c.n - 7, c.n, 17, c.n}, {33, 34, 0, 1}, {1, 9, 30, 60}, {c.n / 2, min(c.n, c.n/2+45), c.n/3 + 5, c.n - 3}} {
				r0, r1, c0, c1 := tl[0], tl[1], tl[2], tl[3]
				got, err := q.Tile(0, h, r0, r1, c0, c1)
				if err != nil {
					t.Fatal(err)
				}
				ref := make([]float64, len(got.Data))
				for i := range ref {
					ref[i] = math.NaN() // every value must be written
				}
				tileScalar(&qkTile{dst: ref, stride: c1 - c0, q: q.q64[h*c.n*c.hd : (h+1)*c.n*c.hd],
					kp: q.kp[h/(c.heads/c.kv)*q.panels*c.hd*qkPanel:][:q.panels*c.hd*qkPanel], lse: q.lse[h*c.n : (h+1)*c.n],
					hd: c.hd, scale: 1 / math.Sqrt(float64(c.hd)), r0: r0, r1: r1, c0: c0, c1: c1, causal: c.causal})
				for i := r0; i < r1; i++ {
					exact, _ := q.ExactRow(0, h, i)
					for j := c0; j < c1; j++ {
						g, s := got.Data[(i-r0)*(c1-c0)+j-c0], ref[(i-r0)*(c1-c0)+j-c0]
						if c.causal && j > i {
							if g != 0 {
								t.Fatalf("%+v head %d [%d, %d]: masked weight %g", c, h, i, j, g)
							}
							continue
						}
						if math.Abs(g-exact[j]) > 1e-12 || math.Abs(g-s) > 1e-15 {
							t.Fatalf("%+v head %d [%d, %d]: tile %.17g, portable kernel %.17g, float64 softmax %.17g", c, h, i, j, g, s, exact[j])
						}
						worst, worstScalar = max(worst, math.Abs(g-exact[j])), max(worstScalar, math.Abs(g-s))
					}
				}
			}
		}
		buf, err := q.Rows(0, 3, 20)
		if err != nil {
			t.Fatal(err)
		}
		for i := range buf.Data {
			buf.Data[i] = math.NaN()
		}
		if err := q.RowsInto(buf, 0, 3, 20); err != nil {
			t.Fatal(err)
		}
		for h := range c.heads {
			tile, _ := q.Tile(0, h, 3, 20, 0, c.n)
			for k, v := range tile.Data {
				if buf.Data[h*17*c.n+k] != v {
					t.Fatalf("%+v: RowsInto head %d value %d is %g, Tile's %g", c, h, k, buf.Data[h*17*c.n+k], v)
				}
			}
		}
		if err := q.RowsInto(buf, 0, 3, 21); err == nil {
			t.Error("RowsInto accepted a buffer of the wrong shape")
		}
		t.Logf("%+v: largest difference from the float64 softmax %.3g, from the portable kernel %.3g", c, worst, worstScalar)
	}
}

// BenchmarkTileRows: 64 rows × 8,192 causal keys of one head (head_dim 64), the
// shape of a derive row block; flops count 2·head_dim per weight computed.
func BenchmarkTileRows(b *testing.B) {
	const n, hd, rows = 8192, 64, 64
	rng := rand.New(rand.NewPCG(1, 1))
	q := &QKReader{info: TensorsInfo{Layers: 1, Heads: 1, KVHeads: 1, Tokens: n, HeadDim: hd, Causal: true}, layer: 0, panels: n / qkPanel}
	q.q64 = make([]float64, n*hd)
	q.kp = make([]float64, n*hd)
	q.lse = make([]float64, n)
	for i := range q.q64 {
		q.q64[i], q.kp[i] = float64(float32(rng.NormFloat64())), float64(float32(rng.NormFloat64()))
	}
	for i := range q.lse {
		q.lse[i] = 20
	}
	dst := make([]float64, rows*n)
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	for b.Loop() {
		q.tileInto(dst, n, 0, n-rows, n, 0, n)
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano()).Seconds()
	b.ReportMetric(float64(rows)*float64(n-rows/2)*2*hd*float64(b.N)/cpu/1e9, "GFLOP/CPU-s")
}
