package main

import (
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/derive"
	"github.com/attnscope/attnscope/internal/progress"
	"github.com/attnscope/attnscope/internal/shard"
	"github.com/attnscope/attnscope/store"
)

func newDeriveCmd() *cobra.Command {
	var (
		configPath string
		pass       string
		workers    int
		list       bool
		sh         shard.Shard
	)
	cmd := &cobra.Command{
		Use:   "derive --config exp.yaml RUN",
		Short: "Run analysis passes over a run (rollout, flow, follow-up, entropy, ...)",
		Long: `derive runs the analysis passes listed in a YAML config over every sample of the
run folder RUN. Each pass writes RUN/derived/<pass>/<sample>.npy; scalar metrics go to
RUN/metrics.csv and RUN/metrics.parquet (sample, pass, layer, head, metric, value).
Outputs that exist are skipped, so an interrupted derive resumes where it stopped.
A pass's input is attention, metadata, an earlier pass of the config or a pass the run
already holds (an earlier derive's, or a human run's follow-up matrix from attnscope
human, e.g. input: followup_tokens.decay_0.1). See configs/derive-all.yaml for every pass, and --list for the pass functions.`,
		Example: `  attnscope derive --config configs/derive-all.yaml runs/gpt2-code
  attnscope derive --config exp.yaml runs/gpt2-code --pass rollout --workers 2
  attnscope derive --list`,
		Args: func(cmd *cobra.Command, args []string) error {
			if list {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDerive(cmd, args, configPath, pass, workers, list, sh)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configPath, "config", "c", "", "derive config (YAML list of passes)")
	f.StringVar(&pass, "pass", "", "run only the pass of this name (its input pass must be done)")
	f.IntVarP(&workers, "workers", "j", runtime.GOMAXPROCS(0), "samples derived in parallel")
	f.BoolVar(&list, "list", false, "list the pass functions and their keyword arguments, then exit")
	shard.AddFlag(f, &sh)
	return cmd
}

func listFunctions(w io.Writer, reg *derive.Registry) error {
	for _, name := range reg.Names() {
		s, _ := reg.Lookup(name)
		input := map[derive.InputKind]string{derive.TakesAttention: "attention", derive.TakesTensor: "tensor", derive.TakesMetadata: "metadata"}[s.Input]
		axes := "depends on the input"
		if s.Input != derive.TakesMetadata {
			if a, err := s.Axes(store.AttentionAxes(), defaultKwargs(s)); err == nil {
				axes = store.AxesString(a)
			}
		} else if a, err := s.Axes(nil, defaultKwargs(s)); err == nil {
			axes = store.AxesString(a)
		}
		fmt.Fprintf(w, "%s (input: %s; output axes: %s)\n", name, input, axes)
		if s.Doc != "" {
			fmt.Fprintf(w, "    %s\n", s.Doc)
		}
		keys := make([]string, 0, len(s.Kwargs))
		for k := range s.Kwargs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ks := s.Kwargs[k]
			def := fmt.Sprint(ks.Default)
			if str, ok := ks.Default.(string); ok {
				def = fmt.Sprintf("%q", str)
			}
			line := fmt.Sprintf("    %s: %s, default %s", k, ks.Kind, def)
			if len(ks.Enum) > 0 {
				line += " (" + strings.Join(ks.Enum, "|") + ")"
			}
			if ks.Doc != "" {
				line += ": " + ks.Doc
			}
			fmt.Fprintln(w, line)
		}
	}
	return nil
}

// runDerive runs the passes of the config at configPath (or only pass) over the run
// args[0], or lists the pass functions.
func runDerive(cmd *cobra.Command, args []string, configPath, pass string, workers int, list bool, sh shard.Shard) error {
	reg := derive.DefaultRegistry()
	if list {
		return listFunctions(cmd.OutOrStdout(), reg)
	}
	if configPath == "" {
		return usagef(cmd, "--config is required")
	}
	if workers < 1 {
		return usagef(cmd, "--workers must be at least 1, got %d", workers)
	}
	cfg, err := derive.LoadConfig(configPath, reg)
	if err != nil {
		return err
	}
	if pass != "" {
		if _, err := cfg.Pass(pass); err != nil {
			return fmt.Errorf("%s: %w", configPath, err)
		}
	}
	dir, push, err := store.Stage(cmd.Context(), args[0], writerName("derive", sh))
	if err != nil {
		return err
	}
	run, err := store.Open(dir)
	if err != nil {
		return err
	}
	n, err := requireSamples(run, args[0])
	if err != nil {
		return err
	}
	if sh.Sharded() {
		ids, err := run.Samples()
		if err != nil {
			return err
		}
		n = len(sh.Select(ids))
	}
	passes := len(cfg.Passes)
	if pass != "" {
		passes = 1
	}
	tr := progress.New(cmd.ErrOrStderr(), "derive", "pass outputs", n*passes)
	defer tr.Close()
	sum, err := derive.Derive(cmd.Context(), run, cfg, derive.Options{Workers: workers, Pass: pass, PassProgress: passProgress(tr), Shard: sh})
	if perr := push(cmd.Context()); err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "derived %d samples: %d outputs computed, %d already present; %s and %s hold %d metric rows\n",
		sum.Samples, sum.Computed, sum.Skipped,
		args[0]+"/"+store.MetricsCSV, args[0]+"/"+store.MetricsParquet, sum.MetricRows)
	return nil
}

// defaultKwargs returns a function's keyword arguments at their defaults.
func defaultKwargs(s *derive.Spec) derive.Kwargs {
	kw := derive.Kwargs{}
	for k, ks := range s.Kwargs {
		kw[k] = ks.Default
	}
	return kw
}

// writerName names the writer of an S3 run (store.Claim): the command, and its shard.
func writerName(command string, sh shard.Shard) string {
	if !sh.Sharded() {
		return command
	}
	return command + "-" + sh.Name()
}
