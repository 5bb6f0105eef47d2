package workerspool

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestPool_Chunks: every index is visited once, and a task that holds the pool's only
// worker can still split its work (WaitToStart would wait forever). (attnscope patch.)
func TestPool_Chunks(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("needs GOMAXPROCS ≥ 2 for more than one chunk")
	}
	for _, n := range []int{0, 1, 100, 1000, 12345} {
		pool := New()
		seen := make([]int, n)
		var mu sync.Mutex
		pool.Chunks(n, 10, func(lo, hi int) {
			mu.Lock()
			defer mu.Unlock()
			for i := lo; i < hi; i++ {
				seen[i]++
			}
		})
		for i, c := range seen {
			if c != 1 {
				t.Fatalf("n=%d: index %d visited %d times", n, i, c)
			}
		}
	}

	// Both workers busy: one blocked until the end, the other splitting its work.
	pool := New()
	pool.SetMaxParallelism(2)
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	pool.WaitToStart(func() { close(started); <-release })
	<-started
	done := make(chan struct{})
	pool.WaitToStart(func() {
		defer close(done)
		pool.Chunks(1000, 10, func(lo, hi int) {})
	})
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Chunks inside the only worker did not return: it waited for a worker")
	}
}
