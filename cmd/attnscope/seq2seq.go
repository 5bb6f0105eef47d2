package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	s2s "github.com/attnscope/attnscope/model/seq2seq"
	"github.com/attnscope/attnscope/seq2seq/corpus"
	"github.com/attnscope/attnscope/seq2seq/experiment"
	"github.com/attnscope/attnscope/train"
)

func newSeq2seqCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "seq2seq",
		Short: "Docstring-to-code LSTM seq2seq with Bahdanau attention (Text_to_Python): corpus, training, evaluation, alignments",
	}
	c.AddCommand(newSeq2seqCorpusCmd(), newSeq2seqRunCmd())
	return c
}

func newSeq2seqCorpusCmd() *cobra.Command {
	var (
		from     []string
		out      string
		seed     uint64
		maxFiles int
	)
	c := &cobra.Command{
		Use:   "corpus --from DIR [--from DIR ...] --out corpus.jsonl",
		Short: "Build (docstring, function code) pairs from Python sources with tree-sitter",
		Long: `Walks the folders (glob patterns allowed), parses every .py file with tree-sitter and
writes one JSON line {"docstring", "code", "origin"} per documented function or method,
the docstring removed from the code; files that do not parse are skipped and counted.
The pairs are shuffled with --seed, so that the sequential split of "seq2seq run" mixes modules.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(from) == 0 || out == "" {
				return usagef(cmd, "--from and --out are required")
			}
			if err := prepareOutDir(out); err != nil {
				return err
			}
			o := experiment.Options{Log: cmd.ErrOrStderr()}
			dir, err := os.MkdirTemp(filepath.Dir(out), ".corpus-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			pairs, err := experiment.BuildCorpus(cmd.Context(), from, corpus.BuildOptions{Seed: seed, MaxFiles: maxFiles}, dir, &o)
			if err != nil {
				return err
			}
			if err := os.Rename(filepath.Join(dir, "corpus.jsonl"), out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d pairs to %s\n", len(pairs), out)
			return nil
		},
	}
	c.Flags().StringArrayVar(&from, "from", nil, "folder of Python sources (repeatable; glob patterns allowed)")
	c.Flags().StringVar(&out, "out", "", "output JSON-lines file")
	c.Flags().Uint64Var(&seed, "seed", 42, "shuffle seed")
	c.Flags().IntVar(&maxFiles, "max-files", 0, "read at most this many files, evenly spaced (0: all)")
	return c
}

// seq2seqFlags are the settings of "seq2seq run" and "demo seq2seq".
type seq2seqFlags struct {
	opts  experiment.Options
	kinds string
}

func (f *seq2seqFlags) register(c *cobra.Command, o experiment.Options) {
	f.opts = o
	fl := c.Flags()
	fl.IntVar(&f.opts.Train, "train", o.Train, "training pairs (the first of the corpus)")
	fl.IntVar(&f.opts.Val, "val", o.Val, "validation pairs (the next)")
	fl.IntVar(&f.opts.Test, "test", o.Test, "test pairs (the next)")
	fl.IntVar(&f.opts.Epochs, "epochs", o.Epochs, "training epochs")
	fl.IntVar(&f.opts.FreqThreshold, "min-freq", o.FreqThreshold, "vocabulary: minimum count in the training split (0: the original 2)")
	fl.IntVar(&f.opts.BatchSize, "batch", o.BatchSize, "batch size")
	fl.IntVar(&f.opts.Base.Embed, "embed", o.Base.Embed, "embedding size")
	fl.IntVar(&f.opts.Base.Hidden, "hidden", o.Base.Hidden, "LSTM hidden size")
	fl.IntVar(&f.opts.Base.Layers, "layers", o.Base.Layers, "LSTM layers")
	fl.Float64Var(&f.opts.Base.Dropout, "dropout", o.Base.Dropout, "dropout")
	fl.IntVar(&f.opts.Base.MaxSrcLen, "max-src", o.Base.MaxSrcLen, "docstring tokens kept")
	fl.IntVar(&f.opts.Base.MaxTrgLen, "max-trg", o.Base.MaxTrgLen, "code tokens kept")
	fl.BoolVar(&f.opts.Base.MaskPadding, "mask-padding", false, "attend over non-PAD source positions only (the original attends over all)")
	fl.Float64Var(&f.opts.Hyper.LearningRate, "lr", o.Hyper.LearningRate, "Adam learning rate")
	fl.Float64Var(&f.opts.Hyper.TeacherForcing, "teacher-forcing", o.Hyper.TeacherForcing, "teacher forcing ratio")
	fl.Float64Var(&f.opts.Hyper.ClipNorm, "clip", o.Hyper.ClipNorm, "gradient norm clip")
	fl.Uint64Var(&f.opts.Hyper.Seed, "seed", o.Hyper.Seed, "seed of initialisation, shuffling, dropout and teacher forcing")
	fl.IntVar(&f.opts.MaxDecode, "max-decode", o.MaxDecode, "greedy/beam decoding steps at most")
	fl.IntVar(&f.opts.Beam, "beam", 0, "also decode the test split with beam search of this width (> 1)")
	fl.Float64Var(&f.opts.BeamAlpha, "beam-alpha", 1, "beam length normalisation: log p / length^alpha")
	fl.IntVar(&f.opts.AlignSamples, "align-samples", o.AlignSamples, "test examples whose alignments go to the run folder")
	fl.StringVar(&f.kinds, "models", strings.Join(o.Kinds, ","), "models to train: "+s2s.KindAttention+", "+s2s.KindLSTM+", "+s2s.KindRNN)
}

func (f *seq2seqFlags) options(cmd *cobra.Command, out string) (experiment.Options, error) {
	o := f.opts
	o.Kinds = strings.Split(f.kinds, ",")
	o.Out, o.Log, o.Command = out, cmd.ErrOrStderr(), os.Args
	be, err := train.Backend("")
	if err != nil {
		return o, err
	}
	o.Backend = be
	return o, os.MkdirAll(out, 0o755)
}

func newSeq2seqRunCmd() *cobra.Command {
	var (
		f          seq2seqFlags
		corpusFile string
		out        string
		limit      int
	)
	def, _ := experiment.Demo()
	def.Base.Embed, def.Base.Hidden, def.Base.MaxSrcLen, def.Base.MaxTrgLen = 256, 256, 50, 80
	def.Train, def.Val, def.Test, def.Epochs, def.BatchSize, def.MaxDecode = 10000, 1500, 1500, 15, 64, 82
	def.Kinds = []string{s2s.KindAttention, s2s.KindLSTM, s2s.KindRNN}
	c := &cobra.Command{
		Use:   "run --corpus FILE --out DIR",
		Short: "Train the attention model and baselines on a corpus, evaluate them, store alignments, write results.json, figures and report.md",
		Long: `The corpus is a CodeSearchNet-style file (JSON lines or Parquet with func_documentation_string
or docstring, and func_code_string, code or whole_func_string columns) or the output of
"seq2seq corpus". Defaults are Text_to_Python's (10000/1500/1500 split, embed and hidden 256,
2 layers, 15 epochs of 64, Adam 1e-3, clip 1, teacher forcing 0.5, 50/80 tokens).
Contents of --out: results.json, report.md, figures/, checkpoints/<model>/{best,final},
predictions_<model>.jsonl, run/ (alignments of the attention model: attnscope plot alignment
run --sample test-0000; derive; report).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if corpusFile == "" || out == "" {
				return usagef(cmd, "--corpus and --out are required")
			}
			pairs, err := corpus.ReadFile(corpusFile, limit)
			if err != nil {
				return err
			}
			o, err := f.options(cmd, out)
			if err != nil {
				return err
			}
			o.Pairs = pairs
			return runSeq2seq(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f.register(c, def)
	c.Flags().StringVar(&corpusFile, "corpus", "", "corpus file (.jsonl or .parquet)")
	c.Flags().StringVar(&out, "out", "", "output folder")
	c.Flags().IntVar(&limit, "rows", 13000, "rows of the corpus file scanned (the original scans 13000)")
	return c
}

func runSeq2seq(ctx context.Context, w io.Writer, o experiment.Options) error {
	res, err := experiment.Run(ctx, o)
	if err != nil {
		return err
	}
	for _, m := range res.Models {
		fmt.Fprintf(w, "%-15s BLEU %.4f  corpus BLEU %6.2f  exact %.3f  token acc %.3f  syntax valid %.3f\n", m.Kind, m.Greedy.BLEU, m.Greedy.CorpusBLEU, m.Greedy.ExactMatch, m.Greedy.TokenAccuracy, m.Greedy.SyntaxValid)
	}
	fmt.Fprintf(w, "wrote %s (results.json, report.md, figures/, run/) in %.0f s\n", o.Out, res.Seconds)
	return nil
}

func newDemoSeq2seqCmd() *cobra.Command {
	var (
		f     seq2seqFlags
		out   string
		roots []string
	)
	def, bo := experiment.Demo()
	c := &cobra.Command{
		Use:   "seq2seq",
		Short: "Build a docstring/code corpus from this machine's Python sources, train the attention seq2seq and its no-attention baseline, evaluate, report (< 10 min on 2 cores)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := f.options(cmd, out)
			if err != nil {
				return err
			}
			if o.Pairs, err = experiment.BuildCorpus(cmd.Context(), roots, bo, out, &o); err != nil {
				return err
			}
			return runSeq2seq(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f.register(c, def)
	c.Flags().StringVar(&out, "out", "attnscope-demo-seq2seq", "output folder")
	c.Flags().StringArrayVar(&roots, "from", experiment.DemoRoots, "folders of Python sources (glob patterns allowed)")
	c.Flags().IntVar(&bo.MaxFiles, "max-files", bo.MaxFiles, "read at most this many .py files, evenly spaced")
	return c
}
