package main

import (
	"io"
	"time"

	"github.com/attnscope/attnscope/internal/progress"
	"github.com/attnscope/attnscope/report"
)

// reportProgress feeds the report's events to a tracker on w (a bar on a terminal, log
// lines otherwise): one unit per sample section, with the figure being drawn named by
// the heartbeat while it runs. done closes the tracker.
func reportProgress(w io.Writer) (events func(report.ReportEvent), done func()) {
	var tr *progress.Tracker
	var start time.Time
	events = func(ev report.ReportEvent) {
		if tr == nil {
			tr = progress.New(w, "report", "samples", ev.Total)
		}
		step := ev.Figure + " of " + ev.Sample
		switch {
		case ev.Figure != "" && !ev.Done:
			tr.Begin(step)
		case ev.Figure != "":
			tr.End(step)
		case !ev.Done:
			start = time.Now()
			tr.Begin(ev.Sample)
		default:
			tr.Finish(ev.Sample, 1, time.Since(start).Round(time.Millisecond).String())
		}
	}
	done = func() {
		if tr != nil {
			tr.Close()
		}
	}
	return events, done
}
