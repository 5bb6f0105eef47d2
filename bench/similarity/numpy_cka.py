"""NumPy side of bench/similarity: linear CKA layer x layer matrix (Kornblith et al.
2019, feature-space form) between the [L, n, d] float32 arrays a.npy and b.npy of the
folder given, in float64; prints load and compute times, peak memory and the matrix as
JSON."""
import json
import resource
import sys
import time

import numpy as np

d = sys.argv[1]
t0 = time.perf_counter()
xs = [layer.astype(np.float64) for layer in np.load(d + "/a.npy")]
ys = [layer.astype(np.float64) for layer in np.load(d + "/b.npy")]
t1, c1 = time.perf_counter(), time.process_time()
for layer in xs + ys:
    layer -= layer.mean(axis=0)
nx = [np.linalg.norm(x.T @ x) for x in xs]
ny = [np.linalg.norm(y.T @ y) for y in ys]
m = []
for i, x in enumerate(xs):
    m += [float(np.sum((x.T @ y) ** 2) / (nx[i] * ny[j])) for j, y in enumerate(ys)]
    print("numpy: row %d of %d done at %.1f s" % (i + 1, len(xs), time.perf_counter() - t1), file=sys.stderr, flush=True)
t2, c2 = time.perf_counter(), time.process_time()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6
json.dump({"side": "NumPy", "load_s": t1 - t0, "compute_s": t2 - t1, "cpu_s": c2 - c1, "peak_mb": peak, "matrix": m}, sys.stdout)
