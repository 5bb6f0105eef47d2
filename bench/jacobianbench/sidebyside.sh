#!/bin/sh
# Jacobian singular values, attnscope against PyTorch (Debian's python3-torch) on the
# same inputs, interleaved so that both sides run under the same machine load: the
# N examples are cut into chunks of C; for every chunk one side runs and then the
# other (the order alternates between chunks). Each process times only its own loop
# over the examples (model loading and graph compilation excluded on both sides).
# With DEADLINE (seconds since the epoch) no new chunk starts after it, and the summary
# says how many examples both sides ran. GOMAXPROCS=2 and 2 torch threads.
#
# usage: bench/jacobianbench/sidebyside.sh MODEL_DIR [N=100] [C=5] [DEADLINE] [--vectorize]
set -eu
cd "$(dirname "$0")/../.."
model=$1 n=${2:-100} c=${3:-5} deadline=${4:-0} vec=${5:-}
export GOEXPERIMENT=simd GOTOOLCHAIN="${GOTOOLCHAIN:-go1.27.3}" GOMAXPROCS=2 OMP_NUM_THREADS=2
work=$(mktemp -d "${TMPDIR:-/tmp}/jacobian-sbs.XXXXXX")
go build -o "$work/jacobianbench" ./bench/jacobianbench
"$work/jacobianbench" -model "$model" -n "$n" -inputs "$work/all.json" -gen
/usr/bin/python3 - "$work" "$c" <<'PY'
import json, sys
w, c = sys.argv[1], int(sys.argv[2])
x = json.load(open(w + "/all.json"))
for k, i in enumerate(range(0, len(x["ids"]), c)):
    json.dump({"ids": x["ids"][i:i + c], "positions": x["positions"][i:i + c]}, open("%s/chunk%03d.json" % (w, k), "w"))
PY
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
k=0
for f in "$work"/chunk*.json; do
	if [ "$deadline" != 0 ] && [ "$(date +%s)" -ge "$deadline" ]; then
		echo "deadline reached: stopping before chunk $k"
		break
	fi
	g() { "$work/jacobianbench" -model "$model" -inputs "$f" -out "$work/go$k.npy" | tee -a "$work/go.log"; }
	t() { /usr/bin/python3 bench/jacobianbench/torch_jacobian.py "$model" "$f" "$work/torch$k.npy" $vec | tee -a "$work/torch.log"; }
	if [ $((k % 2)) = 0 ]; then g; t; else t; g; fi
	echo "chunk $k done at $(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg)"
	k=$((k + 1))
done
/usr/bin/python3 - "$work" "$k" <<'PY'
import re, sys
import numpy as np
w, k = sys.argv[1], int(sys.argv[2])
def tot(log):
    ex = wall = cpu = 0.0; rss = 0
    for line in open(log):
        m = re.search(r"(\d+) examples .*wall ([\d.]+) s, cpu ([\d.]+) s, peak RSS (\d+) MiB", line)
        ex += int(m[1]); wall += float(m[2]); cpu += float(m[3]); rss = max(rss, int(m[4]))
    return ex, wall, cpu, rss
worst = 0.0
for i in range(k):
    a, b = np.load("%s/go%d.npy" % (w, i)), np.load("%s/torch%d.npy" % (w, i))
    worst = max(worst, float(np.max(np.abs(a - b) / a.max(axis=-1, keepdims=True))))
G, T = tot(w + "/go.log"), tot(w + "/torch.log")
for name, (ex, wall, cpu, rss) in (("attnscope", G), ("torch", T)):
    print("%-9s %3d examples: wall %8.1f s (%.2f s/example), cpu %8.1f s (%.2f s/example), peak RSS %d MiB" % (name, ex, wall, wall / ex, cpu, cpu / ex, rss))
print("torch/attnscope: wall %.2fx, cpu %.2fx; max |diff| / block max singular value %.2g" % (T[1] / G[1], T[2] / G[2], worst))
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); work folder $work"
