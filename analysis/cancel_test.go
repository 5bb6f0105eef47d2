package analysis

import (
	"context"
	"errors"
	"reflect"
	"sync/atomic"
	"testing"
)

// countdownCtx is a context whose Err turns to context.Canceled after a given number of
// calls: cancellation in the middle of a computation, without depending on timing.
type countdownCtx struct {
	context.Context
	left atomic.Int64
}

func newCountdownCtx(calls int64) *countdownCtx {
	c := &countdownCtx{Context: context.Background()}
	c.left.Store(calls)
	return c
}

func (c *countdownCtx) Err() error {
	if c.left.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

// The long pairwise analyses stop with the context's error: before starting (a
// cancelled context), and partway (the context is cancelled after a few checks, while
// units remain); with a context that never ends they equal the context-free versions.
func TestLongAnalysesCancel(t *testing.T) {
	att := randomAttention(7, 3, 4, 24, true)
	tests := []struct {
		name string
		run  func(ctx context.Context) (any, error)
		free func() (any, error)
	}{
		{"UnitJSD",
			func(ctx context.Context) (any, error) { return UnitJSDContext(ctx, att) },
			func() (any, error) { return UnitJSD(att) }},
		{"Collapse",
			func(ctx context.Context) (any, error) { return CollapseContext(ctx, att, CollapseOptions{}) },
			func() (any, error) { return Collapse(att, CollapseOptions{}) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cancelled, cancel := context.WithCancel(context.Background())
			cancel()
			if out, err := tc.run(cancelled); !errors.Is(err, context.Canceled) || !reflect.ValueOf(out).IsNil() {
				t.Errorf("cancelled context: got %v, %v; want nil, context.Canceled", out, err)
			}
			if out, err := tc.run(newCountdownCtx(5)); !errors.Is(err, context.Canceled) || !reflect.ValueOf(out).IsNil() {
				t.Errorf("context cancelled partway: got %v, %v; want nil, context.Canceled", out, err)
			}
			got, err := tc.run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			want, err := tc.free()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("with a live context the result differs from the context-free one")
			}
		})
	}
}
