#!/bin/sh
# Attention flow: attnscope against the published networkx method on the same attention
# (12 layers, n = 16, 32, 64), printing the speed ratio. Extra arguments go to the Go
# program (go run ./bench/flow -h lists them), e.g. -causal or -n 16,32.
# Needs Debian's python3-networkx and python3-numpy (apt-get install -y python3-networkx).
set -eu
cd "$(dirname "$0")/../.."
export GOEXPERIMENT=simd
if ! /usr/bin/python3 -c 'import networkx, numpy' 2>/dev/null; then
	echo "bench/flow: /usr/bin/python3 lacks networkx or numpy (apt-get install -y python3-networkx)" >&2
	exit 1
fi
go build -o "${TMPDIR:-/tmp}/attnscope-flow-bench" ./bench/flow
exec "${TMPDIR:-/tmp}/attnscope-flow-bench" "$@"
