package main

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestLowerGC: GOGC becomes modelGCPercent and is restored, unless the user set $GOGC.
func TestLowerGC(t *testing.T) {
	current := func() int { p := debug.SetGCPercent(100); debug.SetGCPercent(p); return p }
	before := current()
	if v, ok := os.LookupEnv("GOGC"); ok {
		t.Skipf("$GOGC=%s is set in the test environment, so lowerGC leaves GOGC alone", v)
	}
	restore := lowerGC()
	if got := current(); got != modelGCPercent {
		t.Errorf("GOGC %d while a model is held, want %d", got, modelGCPercent)
	}
	restore()
	if got := current(); got != before {
		t.Errorf("GOGC %d after restore, want %d", got, before)
	}
	t.Setenv("GOGC", "50")
	restore = lowerGC()
	if got := current(); got != before {
		t.Errorf("with $GOGC set, GOGC changed to %d", got)
	}
	restore()
}
