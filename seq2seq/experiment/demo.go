package experiment

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	s2s "github.com/attnscope/attnscope/model/seq2seq"
	"github.com/attnscope/attnscope/seq2seq/corpus"
)

// DemoRoots are the folders the demo reads Python sources from: the machine's
// Python standard library and packages (globbed).
var DemoRoots = []string{"/usr/lib/python3*"}

// Demo returns the demo's options: a corpus of MaxFiles Python files' documented
// functions, split 1280/160/200, a small attention model (embed 48, hidden 96,
// 2 layers, docstrings ≤ 20 tokens, code ≤ 24 tokens, words seen at least 4 times)
// and the LSTM baseline without attention, 4 epochs of batches of 32 with
// Text_to_Python's optimiser settings. It is sized to finish in under 10 minutes on
// 2 cores: the vocabulary threshold (4 instead of 2) keeps the output layer small.
func Demo() (Options, corpus.BuildOptions) {
	return Options{
			Train: 1280, Val: 160, Test: 200,
			Base:   s2s.Config{Embed: 48, Hidden: 96, Layers: 2, Dropout: 0.3, MaxSrcLen: 20, MaxTrgLen: 24},
			Kinds:  []string{s2s.KindAttention, s2s.KindLSTM},
			Hyper:  s2s.Hyper{LearningRate: 1e-3, ClipNorm: 1, TeacherForcing: 0.5, Seed: 42},
			Epochs: 4, BatchSize: 32, MaxDecode: 26, AlignSamples: 50, FreqThreshold: 4,
		}, corpus.BuildOptions{
			Seed: 42, MaxFiles: 1500,
		}
}

// BuildCorpus builds the corpus from roots (glob patterns allowed), writes it to
// out/corpus.jsonl and says what it read.
func BuildCorpus(ctx context.Context, roots []string, bo corpus.BuildOptions, out string, o *Options) ([]corpus.Pair, error) {
	var dirs []string
	for _, r := range roots {
		m, err := filepath.Glob(r)
		if err != nil {
			return nil, fmt.Errorf("corpus: pattern %s: %w", r, err)
		}
		dirs = append(dirs, m...)
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("corpus: no folder matches %v (the demo reads the machine's Python sources)", roots)
	}
	t0 := time.Now()
	pairs, st, err := corpus.Build(ctx, dirs, bo)
	if err != nil {
		return nil, err
	}
	o.logf("corpus: %d Python files under %v, %d skipped as unparsable; %d functions, %d documented, %d pairs (%d duplicates, %d docstring-only bodies dropped) in %.0f s\n",
		st.Files, dirs, st.Unparsable, st.Functions, st.Documented, st.Pairs, st.Duplicates, st.BodyOnly, time.Since(t0).Seconds())
	return pairs, corpus.WriteJSONL(filepath.Join(out, "corpus.jsonl"), pairs)
}
