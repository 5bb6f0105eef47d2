package main

import (
	"os"
	"runtime/debug"
)

// modelGCPercent is the GOGC that commands holding a model's weights (or serve's
// tile pyramids) run with. Those are one large live heap, and Go's default GOGC=100
// lets as much garbage again accumulate before a collection: capturing 448 tokens
// with a GPT-2-small checkpoint (498 MB of weights) peaked at 864–887 MB of RSS with
// GOGC=100 and at 682 MB with 10, at the same speed (the capture benchmark: 816 →
// 696 MB at N=512 on 2 threads); serve building the pyramids of two heads of a
// 32,768-token --store qk sample peaked at 3.0 GB with GOGC=100 and 1.9 GB with 10,
// at the same speed (9.4–9.8 s a head).
const modelGCPercent = 10

// lowerGC sets GOGC to modelGCPercent unless the user set $GOGC, and returns the
// function that restores the previous setting.
func lowerGC() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(modelGCPercent)
	return func() { debug.SetGCPercent(old) }
}
