package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLogLines: off a terminal, each finished unit prints a line (Every 0) with the
// count, the item, the elapsed time and an ETA from the mean time per unit.
func TestLogLines(t *testing.T) {
	t.Setenv(EnvEvery, "0")
	var buf bytes.Buffer
	tr := New(&buf, "derive", "passes", 4)
	clock := tr.start
	tr.now = func() time.Time { return clock }
	tr.Begin("rollout on s0")
	clock = clock.Add(2 * time.Second)
	tr.Finish("rollout on s0", 1, "")
	clock = clock.Add(2 * time.Second)
	tr.Finish("entropy on s0", 1, "2s")
	clock = clock.Add(4 * time.Second)
	tr.Finish("rollout on s1", 2, "")
	tr.Close()
	want := "derive: 1/4 passes (rollout on s0), elapsed 2s, ETA 6s\n" +
		"derive: 2/4 passes (entropy on s0, 2s), elapsed 4s, ETA 4s\n" +
		"derive: 4/4 passes (rollout on s1), elapsed 8s, done\n"
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

// TestEveryThrottles: with Every 10 s only the first, the last and lines 10 s apart print.
func TestEveryThrottles(t *testing.T) {
	t.Setenv(EnvEvery, "1h") // no heartbeat during the test
	var buf bytes.Buffer
	tr := New(&buf, "capture", "samples", 5)
	tr.every = 10 * time.Second
	clock := tr.start
	tr.now = func() time.Time { return clock }
	for k := range 5 {
		clock = clock.Add(3 * time.Second)
		tr.Finish("s"+string(rune('0'+k)), 1, "")
	}
	tr.Close()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	// printed: 1/5 at 3 s (first), 5/5 at 15 s (last); 4/5 at 12 s is 9 s after the first
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "capture: 1/5") || !strings.HasPrefix(lines[1], "capture: 5/5") {
		t.Fatalf("lines %q", lines)
	}
}

// TestHeartbeat: while a unit runs longer than Every, a line names it.
func TestHeartbeat(t *testing.T) {
	t.Setenv(EnvEvery, "20ms")
	var buf syncBuffer
	tr := New(&buf, "derive", "passes", 2)
	tr.Begin("attention_flow on s0")
	time.Sleep(200 * time.Millisecond)
	tr.Close()
	if got := buf.String(); !strings.Contains(got, "running: attention_flow on s0 for") {
		t.Fatalf("no heartbeat line: %q", got)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestEndStep: a step ended with End is no longer named by the heartbeat and counts no
// unit; the unit still running is.
func TestEndStep(t *testing.T) {
	t.Setenv(EnvEvery, "20ms")
	var buf syncBuffer
	tr := New(&buf, "report", "samples", 2)
	tr.Begin("s0")
	tr.Begin("grid of s0")
	tr.End("grid of s0")
	time.Sleep(200 * time.Millisecond)
	tr.Close()
	got := buf.String()
	if strings.Contains(got, "grid of s0") || !strings.Contains(got, "report: 0/2 samples, elapsed ") || !strings.Contains(got, "running: s0 for") {
		t.Fatalf("heartbeat %q: want s0 running, 0 done, no ended step", got)
	}
}
