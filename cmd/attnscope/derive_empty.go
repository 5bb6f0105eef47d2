package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/attnscope/attnscope/derive"
	"github.com/attnscope/attnscope/store"
)

// requireSamples fails when the run holds no finished sample: derive would otherwise
// succeed having done nothing.
func requireSamples(ctx context.Context, run derive.Run, dir string) error {
	ids, err := run.Samples(ctx)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return fmt.Errorf("derive %s: the run holds no samples (%s is empty or has no finished sample): nothing to derive; capture or import into it first",
			dir, filepath.Join(dir, store.SamplesDir))
	}
	return nil
}
