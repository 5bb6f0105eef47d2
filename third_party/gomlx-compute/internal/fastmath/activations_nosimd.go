// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build !(amd64 && goexperiment.simd)

package fastmath

// attnscope patch: without the SIMD experiment (or off amd64) the slice kernels run
// element by element.

const hasAVX512 = false

func sigmoidSliceAVX512(in, out []float32) int                 { return 0 }
func geluTanhSliceAVX512(in, out []float32) int                { return 0 }
func expShiftSliceAVX512(in, out []float32, shift float32) int { return 0 }
func scaleSliceAVX512(s []float32, f float32) int              { return 0 }
