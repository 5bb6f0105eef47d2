package experiment

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/attnscope/attnscope/capture"
	"github.com/attnscope/attnscope/derive"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tokenizer"
)

// Steps of an experiment, as the original's commands name them.
const (
	StepQueryExtract = "queryextract"
	StepDeriveAll    = "deriveall"
	StepGetAnswers   = "getanswers"
	StepAll          = "all"
)

// Layouts of the results.
const (
	LayoutRun      = "run"      // attnscope run folders only
	LayoutFollowup = "followup" // also the original's output folders
)

// Options configure Run.
type Options struct {
	// RunsDir holds one run folder per model, named after the model with / → _
	// ("" = <output_data_folder>/runs).
	RunsDir string
	// Layout is LayoutRun or LayoutFollowup.
	Layout string
	// Backend is the GoMLX backend ("" = default).
	Backend string
	// Truncate, "left" or "right", cuts prompts longer than the model's context (less
	// the generated tokens), as capture --truncate; "" refuses them.
	Truncate string
	// Only, when set, keeps the prompt files whose names match one of these
	// patterns (path.Match syntax): a quick trial of an experiment on a few prompts.
	Only []string
	// Workers is the number of samples derived at once.
	Workers int
	// Command is the command line recorded in run.json.
	Command []string
	// CaptureProgress, when set, makes capture's progress report for total samples;
	// the second function ends it.
	CaptureProgress func(total int) (func(done, total int, id string, skipped bool, elapsed time.Duration), func())
	// DeriveProgress, when set, makes derive's progress report for total pass outputs.
	DeriveProgress func(total int) (func(derive.PassEvent), func())
	// Log receives one line per finished step and model (nil: none).
	Log func(msg string)
}

// Run runs step (queryextract, deriveall, getanswers or all) of the experiment.
func Run(ctx context.Context, c *Config, step string, opts Options) error {
	if opts.Layout == "" {
		opts.Layout = LayoutRun
	}
	if opts.Layout != LayoutRun && opts.Layout != LayoutFollowup {
		return fmt.Errorf("layout %q: want %s or %s", opts.Layout, LayoutRun, LayoutFollowup)
	}
	var passes *Passes
	if step == StepDeriveAll || step == StepAll && len(c.AnalysisPasses) > 0 {
		// Check the passes before the long query step.
		var err error
		if passes, err = c.DerivePasses(Registry()); err != nil {
			return err
		}
	}
	switch step {
	case StepQueryExtract:
		return QueryExtract(ctx, c, opts)
	case StepDeriveAll:
		return DeriveAll(ctx, c, passes, opts)
	case StepGetAnswers:
		return GetAnswers(c, opts)
	case StepAll:
		if err := QueryExtract(ctx, c, opts); err != nil {
			return err
		}
		if passes != nil { // an experiment without analysis_passes only queries
			if err := DeriveAll(ctx, c, passes, opts); err != nil {
				return err
			}
		}
		return GetAnswers(c, opts)
	}
	return fmt.Errorf("unknown step %q: want %s, %s, %s or %s", step, StepQueryExtract, StepDeriveAll, StepGetAnswers, StepAll)
}

// Escape is the original's model name in file names: / replaced by _.
func Escape(model string) string { return strings.ReplaceAll(model, "/", "_") }

// RunDir returns the run folder of a model.
func (c *Config) RunDir(opts Options, model string) string {
	root := opts.RunsDir
	if root == "" {
		root = filepath.Join(c.OutputDataFolder, "runs")
	}
	return filepath.Join(root, Escape(model))
}

// ModelDir finds model i's checkpoint folder: the original's
// <local_model_folder>/<org>_<name>/<name>, else <local_model_folder>/<model>.
func (c *Config) ModelDir(i int) (string, error) {
	m := c.Models[i]
	parts := strings.Split(m, "/")
	tried := []string{
		filepath.Join(c.LocalModelFolder, Escape(m), parts[len(parts)-1]),
		filepath.Join(c.LocalModelFolder, m),
	}
	for _, d := range tried {
		if _, err := os.Stat(filepath.Join(d, "config.json")); err == nil {
			return d, nil
		}
	}
	return "", c.errAt(fmt.Sprintf("$.models[%d]", i), "model %q: no checkpoint (config.json) in %s or %s (local_model_folder %q)", m, tried[0], tried[1], c.LocalModelFolder)
}

// Stem is the original's output file stem: <source file>_<try>_<model with / → _>.
func Stem(sourceFile string, try int, model string) string {
	return fmt.Sprintf("%s_%d_%s", sourceFile, try, Escape(model))
}

// CutAfterStopLine keeps the lines of text up to and including the first one
// containing stop, joined by "\n" without a final newline, as the original's
// truncate_file_content does; text without such a line is returned whole.
func CutAfterStopLine(text, stop string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if strings.Contains(l, stop) {
			return strings.Join(lines[:i+1], "\n")
		}
	}
	return text
}

// Prompts reads the prompt files of input_data_folder (every regular file but .json
// files and hidden ones, in name order; with only, those matching one of its
// patterns), cut after stop_signal_line.
func (c *Config) Prompts(only []string) ([]capture.Input, error) {
	entries, err := os.ReadDir(c.InputDataFolder)
	if err != nil {
		return nil, c.errAt("$.input_data_folder", "input_data_folder: %v", err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") && matchAny(only, e.Name()) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		if len(only) > 0 {
			return nil, fmt.Errorf("no prompt file of %s matches %s", c.InputDataFolder, strings.Join(only, " or "))
		}
		return nil, c.errAt("$.input_data_folder", "input_data_folder %s holds no prompt files", c.InputDataFolder)
	}
	var out []capture.Input
	for _, n := range names {
		p := filepath.Join(c.InputDataFolder, n)
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("prompt %s: the file is not UTF-8 text", p)
		}
		text := string(b)
		if c.StopSignalLine != nil {
			text = CutAfterStopLine(text, *c.StopSignalLine)
		}
		out = append(out, capture.Input{ID: store.SampleID(n), Text: text, Source: p, Language: language(n)})
	}
	return out, nil
}

func matchAny(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

func language(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".py":
		return "python"
	case ".cpp", ".cc", ".h", ".hpp", ".c":
		return "cpp"
	case ".cs":
		return "csharp"
	case ".java":
		return "java"
	case ".js":
		return "javascript"
	}
	return ""
}

// generateOptions are the generation settings for modelDir; number_of_tokens -1
// generates until the end-of-sequence token, max_time_in_seconds or a full context
// (the longest prompt's room in it).
func (c *Config) generateOptions(modelDir string, inputs []capture.Input) (*model.GenerateOptions, error) {
	g := &model.GenerateOptions{
		MaxNewTokens: c.NumberOfTokens(), DoSample: true, Temperature: c.Temperature(),
		MaxTime: time.Duration(c.MaxTimeSeconds() * float64(time.Second)),
	}
	if g.MaxNewTokens > 0 {
		return g, nil
	}
	cfg, err := model.ReadConfig(modelDir)
	if err != nil {
		return nil, err
	}
	if cfg.MaxPositions <= 0 {
		return nil, c.errAt("$.generation.number_of_tokens", "number_of_tokens -1: the context length of %s is unknown (no max_position_embeddings); give a number of tokens", modelDir)
	}
	tk, err := tokenizer.Load(modelDir)
	if err != nil {
		return nil, err
	}
	longest, which := 0, ""
	for _, in := range inputs {
		enc, err := tk.Encode(in.Text, true)
		if err != nil {
			return nil, fmt.Errorf("tokenize %s: %w", in.Source, err)
		}
		if len(enc.IDs) > longest {
			longest, which = len(enc.IDs), in.Source
		}
	}
	if longest >= cfg.MaxPositions {
		return nil, c.errAt("$.generation.number_of_tokens", "number_of_tokens -1: prompt %s has %d tokens, which fill the context of %d positions of %s and leave no room to generate", which, longest, cfg.MaxPositions, modelDir)
	}
	g.MaxNewTokens = cfg.MaxPositions - longest
	return g, nil
}

// QueryExtract continues every prompt with every model n_queries times and stores
// the runs (and, with the followup layout, the original's files).
func QueryExtract(ctx context.Context, c *Config, opts Options) error {
	inputs, err := c.Prompts(opts.Only)
	if err != nil {
		return err
	}
	for i, m := range c.Models {
		dir, err := c.ModelDir(i)
		if err != nil {
			return err
		}
		gen, err := c.generateOptions(dir, inputs)
		if err != nil {
			return err
		}
		co := capture.Options{
			ModelDir: dir, Generate: gen, Tries: c.NQueries(), Backend: opts.Backend,
			Truncate: opts.Truncate, Command: opts.Command,
		}
		done := func() {}
		if opts.CaptureProgress != nil {
			co.Progress, done = opts.CaptureProgress(len(inputs) * c.NQueries())
		}
		sum, err := capture.Run(ctx, c.RunDir(opts, m), inputs, co)
		done()
		if err != nil {
			return err
		}
		logf(opts, "queryextract %s: %d samples captured, %d already finished, in %s", m, sum.Captured, sum.Skipped, c.RunDir(opts, m))
		if opts.Layout == LayoutFollowup {
			run, err := store.Open(c.RunDir(opts, m))
			if err != nil {
				return err
			}
			if err := c.exportQuery(run, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// DeriveAll runs the analysis passes over each model's run (and copies their outputs
// to <analysis_data_folder>/<pass>/<stem>.npy with the followup layout).
func DeriveAll(ctx context.Context, c *Config, passes *Passes, opts Options) error {
	if passes == nil {
		var err error
		if passes, err = c.DerivePasses(Registry()); err != nil {
			return err
		}
	}
	for _, m := range c.Models {
		run, err := openRun(c.RunDir(opts, m), m)
		if err != nil {
			return err
		}
		ids, err := run.Samples()
		if err != nil {
			return err
		}
		do := derive.Options{Workers: max(opts.Workers, 1)}
		done := func() {}
		if opts.DeriveProgress != nil {
			do.PassProgress, done = opts.DeriveProgress(len(ids) * len(passes.Derive.Passes))
		}
		sum, err := derive.Derive(ctx, run, passes.Derive, do)
		done()
		if err != nil {
			return passes.MapError(err)
		}
		logf(opts, "deriveall %s: %d passes over %d samples (%d outputs written, %d already there)", m, len(passes.Derive.Passes), len(ids), sum.Computed, sum.Skipped)
		if opts.Layout == LayoutFollowup {
			// The query's files too, for a run queried without --layout followup.
			if err := c.exportQuery(run, m); err != nil {
				return err
			}
			if err := c.exportPasses(run, m, passes); err != nil {
				return err
			}
		}
	}
	return nil
}

func openRun(dir, model string) (*store.Run, error) {
	if _, err := os.Stat(filepath.Join(dir, store.RunFile)); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("model %s: no run folder %s: run the queryextract step first", model, dir)
	}
	return store.Open(dir)
}

func logf(opts Options, format string, a ...any) {
	if opts.Log != nil {
		opts.Log(fmt.Sprintf(format, a...))
	}
}
