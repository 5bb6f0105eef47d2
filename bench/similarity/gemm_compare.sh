#!/bin/sh
# P = XᵀY for X, Y of 10,000 × 768 float64 (the product under linear CKA): attnscope's
# crossProduct (packed AVX-512 kernel, and the unpacked kernel before it) against
# NumPy's x.T @ y (Debian's, OpenBLAS), interleaved in rounds at 1 and 2 threads so
# that a shared machine's load hits both sides alike. GFLOP counts 2·n·d².
# Usage: bench/similarity/gemm_compare.sh [rounds]
set -eu
cd "$(dirname "$0")/../.."
export GOEXPERIMENT=simd GOTOOLCHAIN="${GOTOOLCHAIN:-go1.27.3}"
rounds=${1:-3}
bin=${TMPDIR:-/tmp}/attnscope-similarity.test
go test -c -o "$bin" ./similarity
numpy() {
	OPENBLAS_NUM_THREADS=$1 /usr/bin/python3 -c '
import time, numpy as np
rng = np.random.default_rng(1)
x, y = rng.standard_normal((10000, 768)), rng.standard_normal((10000, 768))
x.T @ y
reps, w0, c0 = 4, time.perf_counter(), time.process_time()
for _ in range(reps):
    x.T @ y
w, c = (time.perf_counter() - w0) / reps, (time.process_time() - c0) / reps
f = 2 * 10000 * 768 * 768 / 1e9
print(f"numpy/openblas threads={'"$1"'}: {w*1e3:.0f} ms/op  {f/w:.1f} GFLOP/s  {f/c:.1f} GFLOP/CPU-s")
'
}
for r in $(seq "$rounds"); do
	echo "# round $r"
	for t in 1 2; do
		"$bin" -test.run XXX -test.bench CrossProduct -test.benchtime 4x -test.cpu "$t" | grep '^Benchmark'
		numpy "$t"
	done
done
