package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/compare"
	"github.com/attnscope/attnscope/demo"
	"github.com/attnscope/attnscope/diagnose"
	"github.com/attnscope/attnscope/evaluate"
	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/jobs"
	"github.com/attnscope/attnscope/store"
)

func newMergeCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "merge --out RUN SHARD_RUN...",
		Short: "Join the run folders of a sharded capture/derive (--shard i/n) into one run",
		Long: `merge copies the samples, derived outputs and shard manifests of the shard run
folders into RUN (created when missing), gathers RUN's metrics table over every sample
and joins the shards' provenance in run.json. It checks first that the shards come from
one model with the same settings and that every shard finished its samples (a failed
shard must be rerun first), so an incomplete array leaves RUN untouched. Merging again
is harmless: what RUN has must be byte-identical and is not copied again.

The shard folders of a sharded compare (OUT/shard-<i>-of-<n>, with shard.json) are
merged into the tables the unsharded compare writes (CSV and Parquet, rows in its
order) in the folder --out, after the same checks.`,
		Example: `  attnscope merge --out runs/code runs/code.shard-0 runs/code.shard-1 runs/code.shard-2
  attnscope merge --out cmp cmp/shard-0-of-2 cmp/shard-1-of-2`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usagef(cmd, "--out is required")
			}
			if compare.IsShardOutput(args[0]) && !evaluate.IsShardOutput(args[0]) {
				return mergeCompare(cmd, out, args)
			}
			if evaluate.IsShardOutput(args[0]) {
				return mergeEvaluate(cmd, out, args)
			}
			sum, err := mergeStaged(cmd.Context(), out, args)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "merged %d shard folders into %s: %d samples (%d copied), %d derived outputs (%d copied), %d metric rows, %d shard manifests\n",
				len(args), out, sum.Samples, sum.SamplesCopied, sum.Derived, sum.DerivedCopied, sum.MetricRows, sum.Manifests)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "merged run folder")
	return cmd
}

// mergeCompare joins the shard folders of a sharded compare into out.
func mergeCompare(cmd *cobra.Command, out string, dirs []string) error {
	tables, rows, err := compare.MergeShards(out, dirs)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "merged %d compare shards into %s: %d tables (CSV and Parquet), %d rows\n", len(dirs), out, len(tables), rows)
	return nil
}

// mergeEvaluate joins the shard folders of a sharded evaluate into out: the report
// recomputed from every shard's samples, and the shards' figures.
func mergeEvaluate(cmd *cobra.Command, out string, dirs []string) error {
	rep, err := evaluate.MergeShards(dirs)
	if err != nil {
		return err
	}
	if err := demo.WriteReport(out, rep); err != nil {
		return err
	}
	for _, d := range dirs {
		if err := copyFigures(filepath.Join(d, "visualizations"), filepath.Join(out, "visualizations")); err != nil {
			return err
		}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "merged %d evaluate shards into %s: %d + %d samples\n", len(dirs), out, rep.ID.N, rep.OOD.N)
	return nil
}

// copyFigures copies the files of from (absent: nothing) into to.
func copyFigures(from, to string) error {
	ents, err := os.ReadDir(from)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(filepath.Join(to, e.Name()), b); err != nil {
			return err
		}
	}
	return nil
}

// mergeStaged merges shard run folders, local or s3://, into out, local or s3://.
// summarizeMerged writes the run-level outputs of a merged diagnose run (each shard
// has only its own examples) from the joined per-example outputs.
func summarizeMerged(dir string) error {
	r, err := store.Open(dir)
	if err != nil {
		return err
	}
	return diagnose.Summarize(r)
}

func mergeStaged(ctx context.Context, out string, srcs []string) (*jobs.MergeSummary, error) {
	local := make([]string, len(srcs))
	for i, s := range srcs {
		dir, _, err := store.Stage(ctx, s, "")
		if err != nil {
			return nil, err
		}
		local[i] = dir
	}
	dir, push, err := store.Stage(ctx, out, "merge")
	if err != nil {
		return nil, err
	}
	sum, err := jobs.Merge(ctx, dir, local)
	if err != nil {
		return nil, err
	}
	if err := summarizeMerged(dir); err != nil {
		return nil, err
	}
	return sum, push(ctx)
}
