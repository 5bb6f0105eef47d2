package analysis

import (
	"context"
	"runtime"
	"sync"
)

// rowJobs runs work(a, i) for every a of outer (in that order) and every row i in [0,n)
// on GOMAXPROCS goroutines, each with its own work function (and scratch) from
// newWorker. Once ctx is done no further job starts and ctx's error is returned.
func rowJobs(ctx context.Context, outer []int, n int, newWorker func() func(a, i int)) error {
	type job struct{ a, i int }
	jobs := make(chan job)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work := newWorker()
			for jb := range jobs {
				work(jb.a, jb.i)
			}
		}()
	}
feed:
	for _, a := range outer {
		for i := 0; i < n; i++ {
			select {
			case <-ctx.Done():
				break feed
			case jobs <- job{a, i}:
			}
		}
	}
	close(jobs)
	wg.Wait()
	return ctx.Err()
}
