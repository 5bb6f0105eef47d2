//go:build !xla

package model

// xlaBuilt reports whether this binary includes the XLA backend (build tag xla).
const xlaBuilt = false
