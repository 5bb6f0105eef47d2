// Package experiment runs Text_to_Python's study end to end (main.py and the
// attention notebook): split a docstring/code corpus, build the vocabularies,
// train the attention model and its baselines, decode the test split, score it,
// store the attention model's alignments in an attnscope run folder, and write
// results.json, the figures and a short report.
package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/gomlx/compute"

	"github.com/attnscope/attnscope/internal/atomicfile"
	s2s "github.com/attnscope/attnscope/model/seq2seq"
	"github.com/attnscope/attnscope/seq2seq/corpus"
	"github.com/attnscope/attnscope/seq2seq/metrics"
)

// Options configure Run.
type Options struct {
	// Pairs is the corpus in order; the split is sequential (Train, Val, Test pairs).
	Pairs            []corpus.Pair
	Train, Val, Test int
	// Base holds the sizes shared by every model (Kind is ignored); Kinds lists
	// the models to train (the first attention kind's alignments are stored).
	Base  s2s.Config
	Kinds []string
	Hyper s2s.Hyper
	// FreqThreshold is the vocabularies' minimum training-set count
	// (Text_to_Python: corpus.FreqThreshold = 2; 0 means that).
	FreqThreshold int
	// Epochs and BatchSize as Text_to_Python's train_model (15 and 64).
	Epochs, BatchSize int
	// MaxDecode is generate_code's max_len (82).
	MaxDecode int
	// Beam > 1 also decodes the test split with beam search of that width
	// (length normalisation exponent BeamAlpha).
	Beam      int
	BeamAlpha float64
	// AlignSamples is how many test examples' alignments are stored (the
	// notebook's aggregate analysis uses the first 50).
	AlignSamples int
	Out          string
	Log          io.Writer
	Command      []string
	Backend      compute.Backend
}

// Scores are the test-split metrics of one decoding.
type Scores struct {
	BLEU          float64             `json:"bleu"`        // mean sentence BLEU (compute_bleu), 0–1
	CorpusBLEU    float64             `json:"corpus_bleu"` // sacreBLEU settings, 0–100
	ExactMatch    float64             `json:"exact_match"`
	TokenAccuracy float64             `json:"token_accuracy"`
	SyntaxValid   float64             `json:"syntax_valid"`
	Errors        metrics.ErrorCounts `json:"errors"`
	ByLength      []metrics.LengthBin `json:"bleu_by_docstring_length"`
	Seconds       float64             `json:"decode_seconds"`
}

// ModelResult is one model's training and test scores.
type ModelResult struct {
	Kind         string            `json:"kind"`
	Parameters   int               `json:"parameters"`
	Greedy       Scores            `json:"greedy"`
	Beam         *Scores           `json:"beam,omitempty"`
	BestEpoch    int               `json:"best_epoch"`
	History      []s2s.EpochRecord `json:"history"`
	TrainSeconds float64           `json:"train_seconds"`
	Checkpoint   string            `json:"checkpoint"`  // folder of the best checkpoint
	Predictions  string            `json:"predictions"` // JSON lines of the greedy test predictions

	hyps []s2s.Hypothesis
}

// Results is results.json.
type Results struct {
	Corpus struct {
		Pairs         int `json:"pairs"`
		Train         int `json:"train"`
		Val           int `json:"val"`
		Test          int `json:"test"`
		SrcVocab      int `json:"src_vocab"`
		TrgVocab      int `json:"trg_vocab"`
		TestEncodable int `json:"test_examples"`
	} `json:"corpus"`
	Config        s2s.Config      `json:"config"`
	FreqThreshold int             `json:"freq_threshold"`
	Hyper         s2s.Hyper       `json:"hyper"`
	Epochs        int             `json:"epochs"`
	BatchSize     int             `json:"batch_size"`
	Models        []*ModelResult  `json:"models"`
	Attention     *AttentionStats `json:"attention,omitempty"`
	// Run is the run folder holding the alignments (attnscope plot/derive/report).
	Run     string  `json:"run,omitempty"`
	Seconds float64 `json:"seconds"`
}

// AttentionStats is the notebook's aggregate analysis over the stored alignments.
type AttentionStats struct {
	Samples     int     `json:"samples"`
	Steps       int     `json:"steps"`
	EntropyMean float64 `json:"entropy_mean"`
	EntropyStd  float64 `json:"entropy_std"`
	MaxMean     float64 `json:"max_weight_mean"`
	MaxStd      float64 `json:"max_weight_std"`
}

func (o *Options) logf(format string, a ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format, a...)
	}
}

// Run trains, evaluates and writes everything under o.Out.
func Run(ctx context.Context, o Options) (*Results, error) {
	start := time.Now()
	if len(o.Kinds) == 0 {
		return nil, fmt.Errorf("experiment: no models to train")
	}
	sp := corpus.Split(o.Pairs, o.Train, o.Val, o.Test)
	if len(sp.Train) == 0 || len(sp.Val) == 0 || len(sp.Test) == 0 {
		return nil, fmt.Errorf("experiment: the corpus of %d pairs leaves %d train, %d validation and %d test pairs; every split needs some", len(o.Pairs), len(sp.Train), len(sp.Val), len(sp.Test))
	}
	var srcToks, trgToks [][]string
	for _, p := range sp.Train {
		srcToks = append(srcToks, corpus.Tokenize(p.Docstring))
		trgToks = append(trgToks, corpus.Tokenize(p.Code))
	}
	thr := o.FreqThreshold
	if thr == 0 {
		thr = corpus.FreqThreshold
	}
	srcV, trgV := corpus.BuildVocab(srcToks, thr), corpus.BuildVocab(trgToks, thr)
	base := o.Base
	base.SrcVocab, base.TrgVocab = srcV.Len(), trgV.Len()
	train := s2s.Encode(sp.Train, srcV, trgV, base)
	val := s2s.Encode(sp.Val, srcV, trgV, base)
	test := s2s.Encode(sp.Test, srcV, trgV, base)
	res := &Results{Config: base, FreqThreshold: thr, Hyper: o.Hyper, Epochs: o.Epochs, BatchSize: o.BatchSize}
	res.Corpus.Pairs, res.Corpus.Train, res.Corpus.Val, res.Corpus.Test = len(o.Pairs), len(sp.Train), len(sp.Val), len(sp.Test)
	res.Corpus.SrcVocab, res.Corpus.TrgVocab, res.Corpus.TestEncodable = srcV.Len(), trgV.Len(), len(test)
	o.logf("corpus: %d train, %d validation, %d test pairs; vocabularies %d (docstrings) and %d (code)\n", len(train), len(val), len(test), srcV.Len(), trgV.Len())
	for _, kind := range o.Kinds {
		cfg := base
		cfg.Kind = kind
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		mr, err := trainAndScore(ctx, &o, cfg, srcV, trgV, train, val, test)
		if err != nil {
			return nil, err
		}
		res.Models = append(res.Models, mr)
	}
	for _, mr := range res.Models {
		if mr.Kind == s2s.KindAttention {
			st, err := storeAlignments(ctx, &o, mr, test, srcV, trgV)
			if err != nil {
				return nil, err
			}
			res.Attention, res.Run = st, filepath.Join(o.Out, "run")
			break
		}
	}
	res.Seconds = time.Since(start).Seconds()
	if err := writeFigures(o.Out, res); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(filepath.Join(o.Out, "results.json"), append(b, '\n')); err != nil {
		return nil, err
	}
	if err := writeReport(o.Out, res); err != nil {
		return nil, err
	}
	return res, nil
}

func trainAndScore(ctx context.Context, o *Options, cfg s2s.Config, srcV, trgV *corpus.Vocab, train, val, test []s2s.Example) (*ModelResult, error) {
	ckDir := filepath.Join(o.Out, "checkpoints", cfg.Kind)
	t0 := time.Now()
	fr, err := s2s.Fit(ctx, o.Backend, &s2s.Checkpoint{Config: cfg, Weights: cfg.InitParams(o.Hyper.Seed), Src: srcV, Trg: trgV}, o.Hyper, train, val,
		s2s.FitOptions{Epochs: o.Epochs, BatchSize: o.BatchSize, Out: ckDir, Log: o.Log, Name: cfg.Kind})
	if err != nil {
		return nil, err
	}
	mr := &ModelResult{Kind: cfg.Kind, BestEpoch: fr.BestEpoch, History: fr.History, TrainSeconds: time.Since(t0).Seconds(),
		Checkpoint: filepath.Join(ckDir, "best"), Predictions: filepath.Join(o.Out, "predictions_"+cfg.Kind+".jsonl")}
	for _, w := range fr.Best.Weights {
		mr.Parameters += len(w)
	}
	dec, err := s2s.NewDecoder(o.Backend, cfg, fr.Best.Weights)
	if err != nil {
		return nil, err
	}
	t0 = time.Now()
	for k := 0; k < len(test); k += o.BatchSize {
		b := s2s.PadBatch(test[k:min(k+o.BatchSize, len(test))], min(o.BatchSize, len(test)-k), cfg)
		hs, err := dec.Greedy(ctx, b.Src, o.MaxDecode)
		if err != nil {
			return nil, err
		}
		mr.hyps = append(mr.hyps, hs...)
	}
	mr.Greedy = score(test, mr.hyps, trgV)
	mr.Greedy.Seconds = time.Since(t0).Seconds()
	o.logf("%s: BLEU %.4f, corpus BLEU %.2f, exact match %.3f, token accuracy %.3f, syntax valid %.3f (greedy, %d test examples, %.1f s)\n",
		cfg.Kind, mr.Greedy.BLEU, mr.Greedy.CorpusBLEU, mr.Greedy.ExactMatch, mr.Greedy.TokenAccuracy, mr.Greedy.SyntaxValid, len(test), mr.Greedy.Seconds)
	if o.Beam > 1 {
		t0 = time.Now()
		var hs []s2s.Hypothesis
		for _, ex := range test {
			row := s2s.PadBatch([]s2s.Example{ex}, 1, cfg).Src[0]
			h, err := dec.Beam(ctx, row, o.Beam, o.MaxDecode, o.BeamAlpha)
			if err != nil {
				return nil, err
			}
			hs = append(hs, h)
		}
		sc := score(test, hs, trgV)
		sc.Seconds = time.Since(t0).Seconds()
		mr.Beam = &sc
		o.logf("%s: beam %d BLEU %.4f, corpus BLEU %.2f\n", cfg.Kind, o.Beam, sc.BLEU, sc.CorpusBLEU)
	}
	if err := writePredictions(mr.Predictions, test, mr.hyps, trgV); err != nil {
		return nil, err
	}
	return mr, nil
}

// score computes the metrics of hypotheses against the test references (the
// decoded reference target, as evaluate_model compares decoded id lists).
func score(test []s2s.Example, hyps []s2s.Hypothesis, trgV *corpus.Vocab) Scores {
	var refs, gens [][]string
	var lens []int
	var bleus []float64
	var sc Scores
	for i, ex := range test {
		ref, gen := trgV.Decode(ex.Trg), trgV.Decode(hyps[i].IDs)
		refs, gens = append(refs, ref), append(gens, gen)
		b := metrics.BLEU(ref, gen)
		bleus = append(bleus, b)
		lens = append(lens, len(ex.Src))
		sc.BLEU += b
		if metrics.ExactMatch(ref, gen) {
			sc.ExactMatch++
		}
		if metrics.ValidPython(gen) {
			sc.SyntaxValid++
		}
	}
	n := float64(len(test))
	sc.BLEU /= n
	sc.ExactMatch /= n
	sc.SyntaxValid /= n
	sc.CorpusBLEU = metrics.CorpusBLEU(refs, gens)
	sc.TokenAccuracy = metrics.TokenAccuracy(refs, gens)
	sc.Errors = metrics.AnalyzeErrors(refs, gens)
	sc.ByLength = metrics.BLEUByLength(lens, bleus)
	return sc
}

func writePredictions(path string, test []s2s.Example, hyps []s2s.Hypothesis, trgV *corpus.Vocab) error {
	var buf []byte
	for i, ex := range test {
		line, err := json.Marshal(map[string]any{"reference": trgV.Decode(ex.Trg), "generated": trgV.Decode(hyps[i].IDs), "log_prob": hyps[i].LogProb})
		if err != nil {
			return err
		}
		buf = append(append(buf, line...), '\n')
	}
	return atomicfile.WriteFile(path, buf)
}
