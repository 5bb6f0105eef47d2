package similarity

import (
	"runtime"
	"sync"

	"gonum.org/v1/gonum/mat"
)

// Blocking of crossProduct's AVX-512 path (Goto & van de Geijn 2008, "Anatomy of
// high-performance matrix multiplication", and BLIS's five loops around a
// micro-kernel): a block of crossKC tokens of B is packed into panels of crossNR
// columns (one panel, crossKC×crossNR, 72 KB, is reused from L1/L2 by every tile of a
// block of A), and each worker packs crossMC columns of A at a time into panels of
// crossMR (that block, crossKC×crossMC, 288 KB, sits in L2). Measured on 10,000×768
// (BenchmarkCrossProduct's shape), crossKC 384 beat 192 by 7–8 % per CPU-second
// (half the passes over P and the barriers between packing B and using it).
var (
	crossKC = 384
	crossMC = 96
)

// crossMR×crossNR is the tile of P that crossKernel keeps in registers.
const (
	crossMR = 8
	crossNR = 24
)

// crossProduct returns P = AᵀB (d_a×d_b, row-major) for A (n×d_a) and B (n×d_b):
// through the packed AVX-512 kernel where the CPU has it, otherwise through gonum's
// Dgemm. The kernel's rows of P are split across GOMAXPROCS goroutines; each element
// is summed over the tokens in the same order whatever their number, so the result
// does not depend on GOMAXPROCS. Edges are packed with zeros to full tiles, so every
// element goes through the same kernel.
func crossProduct(A, B *mat.Dense) []float64 {
	n, da := A.Dims()
	_, db := B.Dims()
	if !have512 || n == 0 {
		var m mat.Dense
		m.Mul(A.T(), B)
		return mat.DenseCopyOf(&m).RawMatrix().Data
	}
	ra, rb := A.RawMatrix(), B.RawMatrix()
	a, sa, b, sb := ra.Data, ra.Stride, rb.Data, rb.Stride
	p := make([]float64, da*db)
	kc, mc := crossKC, crossMC
	ipanels, jpanels := (da+crossMR-1)/crossMR, (db+crossNR-1)/crossNR
	workers := max(1, min(runtime.GOMAXPROCS(0), ipanels))
	bp := getPack(&packsB, jpanels*kc*crossNR)
	defer packsB.Put(bp)
	aps := make([]*[]float64, workers)
	for w := range aps {
		aps[w] = getPack(&packsA, (mc+crossMR-1)/crossMR*kc*crossMR)
		defer packsA.Put(aps[w])
	}
	var wg sync.WaitGroup
	for k0 := 0; k0 < n; k0 += kc {
		k1 := min(k0+kc, n)
		for w := range workers {
			wg.Go(func() {
				for jp := jpanels * w / workers; jp < jpanels*(w+1)/workers; jp++ {
					packPanel((*bp)[jp*kc*crossNR:(jp+1)*kc*crossNR], crossNR, b, sb, db, k0, k1, jp*crossNR)
				}
			})
		}
		wg.Wait()
		for w := range workers {
			wg.Go(func() {
				i0, i1 := ipanels*w/workers*crossMR, ipanels*(w+1)/workers*crossMR
				crossBlock(p, da, db, a, sa, *bp, *aps[w], k0, k1, i0, min(i1, da), mc)
			})
		}
		wg.Wait()
	}
	return p
}

// packsB and packsA keep the packing buffers of B and of A between calls of
// crossProduct, which LinearCKAMatrix makes (2L + L²) times: without them each call
// left about 1.5 MB of garbage (and the 12-layer benchmark peaked 250 MB higher).
var packsB, packsA sync.Pool

// getPack returns a buffer of at least n elements from pool.
func getPack(pool *sync.Pool, n int) *[]float64 {
	if b, ok := pool.Get().(*[]float64); ok && len(*b) >= n {
		return b
	}
	b := make([]float64, n)
	return &b
}

// crossBlock adds A[k0:k1, i0:i1]ᵀ B[k0:k1, :] to rows i0:i1 of P, with B's block
// already packed in bp, packing A crossMC columns at a time into ap.
func crossBlock(p []float64, da, db int, a []float64, sa int, bp, ap []float64, k0, k1, i0, i1, mc int) {
	kl := k1 - k0
	kc := crossKC
	var edge [crossMR * crossNR]float64
	for ic := i0; ic < i1; ic += mc {
		ie := min(ic+mc, i1)
		np := (ie - ic + crossMR - 1) / crossMR
		for ip := range np {
			packPanel(ap[ip*kl*crossMR:(ip+1)*kl*crossMR], crossMR, a, sa, da, k0, k1, ic+ip*crossMR)
		}
		for j := 0; j < db; j += crossNR {
			bpan := bp[j/crossNR*kc*crossNR:][:kl*crossNR]
			for ip := range np {
				i := ic + ip*crossMR
				apan := ap[ip*kl*crossMR:][:kl*crossMR]
				if i+crossMR <= da && j+crossNR <= db {
					crossKernel(kl, apan, bpan, p[i*db+j:], db)
					continue
				}
				// An edge tile: through a full tile of zeros, then back.
				mr, nr := min(crossMR, da-i), min(crossNR, db-j)
				for r := range mr {
					copy(edge[r*crossNR:r*crossNR+nr], p[(i+r)*db+j:])
				}
				crossKernel(kl, apan, bpan, edge[:], crossNR)
				for r := range mr {
					copy(p[(i+r)*db+j:(i+r)*db+j+nr], edge[r*crossNR:])
				}
				clear(edge[:])
			}
		}
	}
}

// packPanel copies x[k0:k1, c0:c0+w] (row stride sx, d columns) into dst as k1−k0
// rows of w values, the columns at or past d as zeros.
func packPanel(dst []float64, w int, x []float64, sx, d, k0, k1, c0 int) {
	cw := min(w, d-c0)
	for k := k0; k < k1; k++ {
		row := dst[(k-k0)*w : (k-k0+1)*w]
		copy(row, x[k*sx+c0:k*sx+c0+cw])
		clear(row[cw:])
	}
}
