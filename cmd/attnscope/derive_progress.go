package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/attnscope/attnscope/derive"
	"github.com/attnscope/attnscope/internal/progress"
	"github.com/attnscope/attnscope/store"
)

// requireSamples fails when the run holds no finished sample: derive would otherwise
// succeed having done nothing.
// It returns the number of samples.
func requireSamples(run derive.Run, dir string) (int, error) {
	ids, err := run.Samples()
	if err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, fmt.Errorf("derive %s: the run holds no samples (%s is empty or has no finished sample): nothing to derive; capture or import into it first",
			dir, filepath.Join(dir, store.SamplesDir))
	}
	return len(ids), nil
}

// slowPass is the expected time above which derive announces a pass before it starts.
const slowPass = 10 * time.Second

// passProgress feeds derive's pass events to the tracker: one unit per pass and sample;
// a pass the cost model expects to be slow is announced with its expected time.
func passProgress(tr *progress.Tracker) func(derive.PassEvent) {
	return func(ev derive.PassEvent) {
		item := ev.Pass + " on " + ev.Sample
		switch {
		case !ev.Done:
			if ev.Expected >= slowPass {
				tr.Note("%s (%s) on %s, %d tokens × %d layers × %d heads: expected to take %s (cost model)",
					ev.Pass, ev.Function, ev.Sample, ev.Tokens, ev.Layers, ev.Heads, progress.Duration(ev.Expected))
			}
			tr.Begin(item)
		case ev.Skipped:
			tr.Finish(item, 1, "already done")
		default:
			tr.Finish(item, 1, ev.Elapsed.Round(time.Millisecond).String())
		}
	}
}
