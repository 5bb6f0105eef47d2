//go:build !(goexperiment.simd && amd64)

package store

// tileVec reports false: without GOEXPERIMENT=simd on amd64, tiles are computed
// by tileScalar.
func tileVec(*qkTile) bool { return false }
