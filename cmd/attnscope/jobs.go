package main

import (
	"fmt"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/attnscope/attnscope/compare"
	"github.com/attnscope/attnscope/jobs"
)

func newJobsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jobs (slurm | k8s) ...",
		Short: "Write Slurm array scripts or Kubernetes Indexed Jobs that run a command sharded, then merge",
		Long: `jobs writes the files that run an attnscope command over a cluster's scheduler: every
shard i of n runs the command given after -- with --shard i/n appended, and when every
shard succeeded, attnscope merge joins the shard folders. The command's own output names
the merged folder: capture, evaluate and diagnose <sub> --out OUT (shard i writes
OUT.shard-<i>), derive RUN (every shard derives its samples in RUN), compare --config C
(shard i writes the config's output_comparison_folder/shard-<i>-of-<n>).

The older form gives --out OUT and --step command lines, run one after the other in
every shard with {run} replaced by its folder OUT.shard-<i> (capture then derive).
Rerunning a failed shard does only what it had not finished.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newJobsSubCmd("slurm", jobs.SlurmFiles), newJobsSubCmd("k8s", jobs.K8sFiles))
	return cmd
}

func newJobsSubCmd(kind string, make func(jobs.Array) (map[string]string, error)) *cobra.Command {
	a := jobs.Array{}
	var dir string
	cmd := &cobra.Command{
		Use:   kind + " --name NAME --shards N --dir DIR -- COMMAND [ARG...]",
		Short: map[string]string{"slurm": "Write an sbatch array script (SLURM_ARRAY_TASK_ID → --shard), a merge script and a submit script", "k8s": "Write a Kubernetes Indexed Job (JOB_COMPLETION_INDEX → --shard), a merge Job and a submit script"}[kind],
		Example: "  attnscope jobs " + kind + " --name eval --shards 4 --parallel 2 --dir jobs/ -- \\\n" +
			"      evaluate exp.yaml training=null --model models/llama --out runs/eval\n" +
			"  attnscope jobs " + kind + " --name code --shards 8 --parallel 4 --out runs/code --dir jobs/ \\\n" +
			"      --step 'capture --model models/gpt2 --prompts prompts/ --out {run}' \\\n" +
			"      --step 'derive --config configs/derive-all.yaml {run}'",
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return usagef(cmd, "--dir (where the job files go) is required")
			}
			if len(args) > 0 {
				if cmd.ArgsLenAtDash() != 0 {
					return usagef(cmd, "put the command to shard after --, e.g. attnscope jobs %s --shards 4 --dir jobs -- evaluate ...", kind)
				}
				if err := a.SetCommand(args, compareOutput); err != nil {
					return usagef(cmd, "%v", err)
				}
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

// compareOutput is the output folder of the comparator config path, relative paths
// starting at the config's folder as compare.Run resolves them.
func compareOutput(path string) (string, error) {
	cfg, err := compare.LoadConfig(path)
	if err != nil {
		return "", err
	}
	if filepath.IsAbs(cfg.OutputFolder) {
		return cfg.OutputFolder, nil
	}
	return filepath.Join(filepath.Dir(path), cfg.OutputFolder), nil
}

func registerJobFlags(f *pflag.FlagSet, a *jobs.Array, dir *string, kind string) {
	f.StringVar(&a.Name, "name", "attnscope", "job name")
	f.IntVar(&a.Shards, "shards", 0, "number of shards n")
	f.IntVar(&a.Parallel, "parallel", 0, "at most this many shards at once (0: no limit)")
	f.StringArrayVar(&a.Steps, "step", nil, "attnscope command line each shard runs, {run} standing for its run folder (repeatable; --shard is added)")
	f.StringVarP(&a.Out, "out", "o", "", "merged run folder of the --step form (shards write OUT.shard-<i>); the command after -- names its own")
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
