#!/bin/sh
# Linear CKA between two runs' hidden states (default 12 layers × 10,000 tokens × 768):
# attnscope against NumPy on the same inputs, time and peak memory side by side.
# Extra arguments go to the Go program (go run ./bench/similarity -h), e.g. -layers 2.
# Needs Debian's python3-numpy.
set -eu
cd "$(dirname "$0")/../.."
export GOEXPERIMENT=simd GOTOOLCHAIN="${GOTOOLCHAIN:-go1.27.3}"
if ! /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
	echo "bench/similarity: /usr/bin/python3 lacks numpy (apt-get install -y python3-numpy)" >&2
	exit 1
fi
go build -o "${TMPDIR:-/tmp}/attnscope-similarity-bench" ./bench/similarity
exec "${TMPDIR:-/tmp}/attnscope-similarity-bench" "$@"
