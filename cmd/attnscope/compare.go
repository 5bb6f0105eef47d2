package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/compare"
	"github.com/attnscope/attnscope/internal/progress"
	"github.com/attnscope/attnscope/internal/shard"
)

func newCompareCmd() *cobra.Command {
	var (
		configPath string
		list       bool
		sh         shard.Shard
	)
	cmd := &cobra.Command{
		Use:   "compare --config cmp.yaml",
		Short: "Compare human and model attention (followup-attention's comparator)",
		Long: `compare pairs every human session of human_att_folder with every try of the same
source file in machine_att_folder (and every human session with the others on the same
file), applies each comparison's transformations and its comparison function, and writes
one CSV and one Parquet file per comparison and machine section to
output_comparison_folder (<name><suffix>.csv), as followup-attention's cmp_vXX.yaml does.
A machine section may name another model's run (machine_att_folder) to compare two
models with different tokenizers through characters or lines (both_to_char_level,
both_to_lines). --list shows the comparison functions and transformations.

With --shard i/n it compares only the pairs of the human sessions whose id hashes to
shard i, writing output_comparison_folder/shard-<i>-of-<n>/ with a shard manifest
(shard.json, written once every table is); rerunning a finished shard computes nothing,
and attnscope merge --out FOLDER joins the n shard folders into the unsharded tables.`,
		Example: `  attnscope compare --config cmp.yaml
  attnscope compare --list`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if list {
				return listCompare(cmd.OutOrStdout())
			}
			if configPath == "" {
				return usagef(cmd, "--config is required")
			}
			return runCompare(cmd, configPath, sh)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "comparator config (YAML)")
	cmd.Flags().BoolVar(&list, "list", false, "list comparison functions and transformations")
	shard.AddFlag(cmd.Flags(), &sh)
	return cmd
}

// runCompare runs the comparator config configPath (shard sh of it).
func runCompare(cmd *cobra.Command, configPath string, sh shard.Shard) error {
	cfg, err := compare.LoadConfig(configPath)
	if err != nil {
		return err
	}
	stderr := cmd.ErrOrStderr()
	opt := compare.Options{Shard: sh}
	if opt.ConfigSum, err = fileSum(configPath); err != nil {
		return err
	}
	var closeProgress func()
	opt.Progress, closeProgress = compareProgress(stderr)
	sum, err := compare.Run(cmd.Context(), cfg, opt)
	closeProgress()
	if err != nil {
		return err
	}
	for _, w := range sum.Warnings {
		fmt.Fprintln(stderr, "compare: warning:", w)
	}
	if sum.Resumed {
		fmt.Fprintf(cmd.OutOrStdout(), "shard %s already finished (its manifest says so): nothing to compute\n", sh)
		return nil
	}
	for _, o := range sum.Outputs {
		fmt.Fprintln(cmd.OutOrStdout(), o)
	}
	if sh.Sharded() {
		fmt.Fprintf(stderr, "shard %s: %d human sessions compared, %d kept from an earlier run\n", sh, sum.Sessions, sum.Kept)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "compared %d pairs: %d rows in %d tables (CSV and Parquet)\n", sum.Pairs, sum.Rows, len(sum.Outputs))
	return nil
}

// fileSum is the SHA-256 of the file at path, in hex.
func fileSum(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

func listCompare(w io.Writer) error {
	fns, trs := compare.Functions(), compare.Transformations()
	names := func(n int, get func(func(string))) []string {
		out := make([]string, 0, n)
		get(func(s string) { out = append(out, s) })
		sort.Strings(out)
		return out
	}
	fmt.Fprintln(w, "comparison functions:")
	for _, n := range names(len(fns), func(add func(string)) {
		for k := range fns {
			add(k)
		}
	}) {
		fmt.Fprintf(w, "  %-30s %s\n", n, fns[n].Doc)
	}
	fmt.Fprintln(w, "transformations:")
	for _, n := range names(len(trs), func(add func(string)) {
		for k := range trs {
			add(k)
		}
	}) {
		fmt.Fprintf(w, "  %-46s %s\n", n, trs[n].Doc)
	}
	return nil
}

// compareProgress reports compared pairs through internal/progress (a bar on a
// terminal, else log lines); the tracker starts at the first pair, when the total is
// known. The returned function ends it.
func compareProgress(w io.Writer) (report func(done, total int), end func()) {
	var tr *progress.Tracker
	seen := 0
	report = func(done, total int) {
		if tr == nil {
			tr = progress.New(w, "compare", "pairs", total)
		}
		tr.Finish(fmt.Sprintf("pair %d", done), done-seen, "")
		seen = done
	}
	return report, func() {
		if tr != nil {
			tr.Close()
		}
	}
}
