package derive

import (
	"context"
	"errors"
	"testing"

	"github.com/attnscope/attnscope/tensor"
)

// The long pairwise passes hand derive's context to the analysis, so a cancelled
// derivation stops inside them with the context's error. The pass functions are called
// directly (not through derive's layer loop, which checks the context on its own), on
// one layer, which every layer mode accepts.
func TestLongPassesStopWhenCancelled(t *testing.T) {
	att := tensor.New(1, 3, 8, 8)
	for m := 0; m < 3; m++ {
		for i := 0; i < 8; i++ {
			for j := 0; j <= i; j++ {
				att.Data[(m*8+i)*8+j] = 1 / float64(i+1)
			}
		}
	}
	reg := DefaultRegistry()
	for _, name := range []string{"js_distance_units", "head_collapse"} {
		t.Run(name, func(t *testing.T) {
			cfg, err := ParseConfig("test.yaml", []byte("passes:\n  - name: p\n    input: attention\n    function: "+name+"\n"), reg)
			if err != nil {
				t.Fatal(err)
			}
			p := cfg.Passes[0]
			if _, err := p.Spec().Fn(context.Background(), &Input{Tensor: att}, p.Args()); err != nil {
				t.Fatalf("live context: %v", err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			res, err := p.Spec().Fn(ctx, &Input{Tensor: att}, p.Args())
			if !errors.Is(err, context.Canceled) || res != nil {
				t.Fatalf("cancelled context: got %v, %v; want nil, context.Canceled", res, err)
			}
		})
	}
}
