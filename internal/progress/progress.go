// Package progress reports the progress of long work (derive, capture, ...): on a
// terminal as a progress bar, otherwise as log lines to the writer (stderr), one when
// a unit of work finishes if Every has passed since the last line, plus a heartbeat
// naming the work in progress while nothing finishes. Each line gives the units done,
// the elapsed time and an ETA from the mean time per unit so far.
package progress

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// EnvEvery is the environment variable that sets Every for log lines (a Go duration;
// "0" prints a line for every finished unit).
const EnvEvery = "ATTNSCOPE_PROGRESS_EVERY"

// DefaultEvery is the least time between two log lines.
const DefaultEvery = 10 * time.Second

// Tracker counts finished units of a job of known size. Its methods are safe for
// concurrent use.
type Tracker struct {
	mu      sync.Mutex
	w       io.Writer
	name    string // "derive", "capture", ...
	unit    string // what a unit is, plural ("passes", "samples")
	total   int
	done    int
	start   time.Time
	last    time.Time // last log line
	every   time.Duration
	running map[string]time.Time // work in progress → its start
	bar     *progressbar.ProgressBar
	stop    chan struct{}
	now     func() time.Time
}

// New starts tracking a job of total units on w: a bar when w is a terminal, log lines
// otherwise (every DefaultEvery, or $ATTNSCOPE_PROGRESS_EVERY).
func New(w io.Writer, name, unit string, total int) *Tracker {
	t := &Tracker{w: w, name: name, unit: unit, total: total, every: DefaultEvery,
		running: map[string]time.Time{}, now: time.Now}
	if d, err := time.ParseDuration(os.Getenv(EnvEvery)); err == nil && d >= 0 {
		t.every = d
	} else if os.Getenv(EnvEvery) == "0" {
		t.every = 0
	}
	t.start = t.now()
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		t.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(f), progressbar.OptionSetDescription(name),
			progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true), progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionClearOnFinish())
		return t
	}
	if t.every > 0 {
		t.stop = make(chan struct{})
		go t.heartbeat()
	}
	return t
}

// Begin records that the work item (e.g. "attention_flow on s3") started.
func (t *Tracker) Begin(item string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.running[item] = t.now()
	if t.bar != nil {
		t.bar.Describe(t.name + " " + item)
	}
}

// End records that item (a step within a unit, e.g. one figure of a sample) stopped,
// without counting a unit.
func (t *Tracker) End(item string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.running, item)
}

// Finish records that item finished and counts n units done; note (if any) is printed
// after the item ("3.2s", "already done").
func (t *Tracker) Finish(item string, n int, note string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.running, item)
	t.done += n
	if t.bar != nil {
		t.bar.Set(t.done)
		return
	}
	if note != "" {
		item += ", " + note
	}
	now := t.now()
	if t.done == n || t.done >= t.total || now.Sub(t.last) >= t.every {
		t.last = now
		fmt.Fprintf(t.w, "%s: %d/%d %s (%s), elapsed %s, %s\n", t.name, t.done, t.total, t.unit, item,
			round(now.Sub(t.start)), t.eta(now))
	}
}

// Note prints a line (a cost estimate, a warning) without disturbing the bar.
func (t *Tracker) Note(format string, a ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bar != nil {
		t.bar.Clear()
	}
	fmt.Fprintf(t.w, t.name+": "+format+"\n", a...)
}

// Close ends the tracking (the bar is cleared, the heartbeat stopped).
func (t *Tracker) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stop != nil {
		close(t.stop)
		t.stop = nil
	}
	if t.bar != nil {
		t.bar.Finish()
	}
}

// eta is "ETA 1m20s" from the mean time per unit so far, or "ETA unknown".
func (t *Tracker) eta(now time.Time) string {
	if t.done <= 0 || t.total <= t.done {
		if t.total <= t.done {
			return "done"
		}
		return "ETA unknown"
	}
	per := now.Sub(t.start) / time.Duration(t.done)
	return "ETA " + round(per*time.Duration(t.total-t.done)).String()
}

// heartbeat prints, every Every while nothing else was printed, the work in progress.
func (t *Tracker) heartbeat() {
	tick := time.NewTicker(t.every)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		t.mu.Lock()
		now := t.now()
		if now.Sub(t.last) >= t.every && len(t.running) > 0 {
			t.last = now
			items := make([]string, 0, len(t.running))
			for item, since := range t.running {
				items = append(items, item+" for "+round(now.Sub(since)).String())
			}
			slices.Sort(items)
			fmt.Fprintf(t.w, "%s: %d/%d %s, elapsed %s, %s; running: %s\n", t.name, t.done, t.total, t.unit,
				round(now.Sub(t.start)), t.eta(now), strings.Join(items, ", "))
		}
		t.mu.Unlock()
	}
}

// round rounds a duration for display: whole seconds above 10 s, tenths below.
func round(d time.Duration) time.Duration {
	if d >= 10*time.Second {
		return d.Round(time.Second)
	}
	return d.Round(100 * time.Millisecond)
}

// Duration formats an expected time like "about 2m30s".
func Duration(d time.Duration) string {
	if d < time.Second {
		return "under a second"
	}
	return "about " + round(d).String()
}
