package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/attnscope/attnscope/internal/progress"
)

// captureProgress reports capture's total samples through internal/progress (a bar on
// a terminal, else log lines with elapsed time and ETA); the returned func ends it.
func captureProgress(w io.Writer, total int) (func(done, total int, id string, skipped bool, elapsed time.Duration), func()) {
	var mu sync.Mutex
	tr := progress.New(w, "capture", "samples", total)
	report := func(_, _ int, id string, skipped bool, elapsed time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		note := fmt.Sprintf("%.2fs", elapsed.Seconds())
		if skipped {
			note = "already finished, skipped"
		}
		tr.Finish(id, 1, note)
	}
	return report, func() {
		mu.Lock()
		defer mu.Unlock()
		tr.Close()
	}
}
