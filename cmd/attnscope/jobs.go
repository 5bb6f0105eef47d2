package main

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/attnscope/attnscope/jobs"
)

func newJobsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jobs (slurm | k8s) ...",
		Short: "Write Slurm array scripts or Kubernetes Indexed Jobs that run a command sharded, then merge",
		Long: `jobs writes the files that run attnscope commands over a cluster's scheduler: every
shard i of n runs the --step command lines with --shard i/n appended and {run} replaced
by its run folder OUT.shard-<i>; when every shard succeeded, attnscope merge joins them
into OUT. Rerunning a failed shard does only what it had not finished.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newJobsSubCmd("slurm", jobs.SlurmFiles), newJobsSubCmd("k8s", jobs.K8sFiles))
	return cmd
}

func newJobsSubCmd(kind string, make func(jobs.Array) (map[string]string, error)) *cobra.Command {
	a := jobs.Array{}
	var dir string
	cmd := &cobra.Command{
		Use:   kind + " --name NAME --shards N --step 'capture ... --out {run}' --out RUN --dir DIR",
		Short: map[string]string{"slurm": "Write an sbatch array script (SLURM_ARRAY_TASK_ID → --shard), a merge script and a submit script", "k8s": "Write a Kubernetes Indexed Job (JOB_COMPLETION_INDEX → --shard), a merge Job and a submit script"}[kind],
		Example: "  attnscope jobs " + kind + " --name code --shards 8 --parallel 4 --out runs/code --dir jobs/ \\\n" +
			"      --step 'capture --model models/gpt2 --prompts prompts/ --out {run}' \\\n" +
			"      --step 'derive --config configs/derive-all.yaml {run}'",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usagef(cmd, "--dir (where the job files go) is required")
			}
			files, err := make(a)
			if err != nil {
				return usagef(cmd, "%v", err)
			}
			names, err := jobs.WriteFiles(dir, files)
			if err != nil {
				return err
			}
			slices.Sort(names)
			for _, n := range names {
				fmt.Fprintln(cmd.OutOrStdout(), n)
			}
			return nil
		},
	}
	registerJobFlags(cmd.Flags(), &a, &dir, kind)
	return cmd
}

func registerJobFlags(f *pflag.FlagSet, a *jobs.Array, dir *string, kind string) {
	f.StringVar(&a.Name, "name", "attnscope", "job name")
	f.IntVar(&a.Shards, "shards", 0, "number of shards n")
	f.IntVar(&a.Parallel, "parallel", 0, "at most this many shards at once (0: no limit)")
	f.StringArrayVar(&a.Steps, "step", nil, "attnscope command line each shard runs, {run} standing for its run folder (repeatable; --shard is added)")
	f.StringVarP(&a.Out, "out", "o", "", "merged run folder (shards write OUT.shard-<i>)")
	f.StringVar(&a.Binary, "binary", "attnscope", "attnscope executable on the nodes")
	f.IntVar(&a.CPUs, "cpus", 0, "cores per shard")
	f.StringVar(&a.Memory, "mem", "", "memory per shard (Slurm: 8G; Kubernetes: 8Gi)")
	f.IntVar(&a.GPUs, "gpus", 0, "GPUs per shard")
	f.StringVar(dir, "dir", "", "folder to write the job files into")
	if kind == "slurm" {
		f.StringVar(&a.Time, "time", "", "time limit per shard (e.g. 02:00:00)")
		f.StringVar(&a.Part, "partition", "", "Slurm partition")
		f.StringVar(&a.Logs, "logs", "logs", "log folder (relative to where the scripts are submitted from)")
		return
	}
	f.StringVar(&a.Image, "image", "", "container image holding attnscope")
	f.StringVar(&a.Claim, "pvc", "", "PersistentVolumeClaim holding the run folders, mounted at --mount")
	f.StringVar(&a.Mount, "mount", "/data", "mount path and working folder")
	f.IntVar(&a.Retries, "retries", 2, "backoffLimitPerIndex: retries of each failed shard")
	f.StringVar(&a.Namespace, "namespace", "", "Kubernetes namespace")
}
