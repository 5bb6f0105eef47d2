package seq2seq

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/gomlx/compute"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/attnscope/attnscope/seq2seq/corpus"
)

// Example is one encoded pair: Src and Trg are [SOS] + ids + [EOS].
type Example struct{ Src, Trg []int }

// Encode tokenises and encodes pairs with the vocabularies, truncating to the
// model's maximum lengths (Text_to_Python's CodeDataset).
func Encode(pairs []corpus.Pair, src, trg *corpus.Vocab, cfg Config) []Example {
	out := make([]Example, 0, len(pairs))
	for _, p := range pairs {
		d, c := corpus.Tokenize(p.Docstring), corpus.Tokenize(p.Code)
		if len(d) == 0 || len(c) == 0 {
			continue
		}
		out = append(out, Example{Src: src.Encode(d, cfg.MaxSrcLen), Trg: trg.Encode(c, cfg.MaxTrgLen)})
	}
	return out
}

// PadBatch pads examples into a batch of exactly size rows with fixed widths
// MaxSrcLen+2 and MaxTrgLen+2 (so that one compiled graph serves every batch).
// Missing rows get a target of SOS then PAD only, which the loss ignores.
func PadBatch(ex []Example, size int, cfg Config) Batch {
	S, T := cfg.MaxSrcLen+2, cfg.MaxTrgLen+2
	b := Batch{Src: make([][]int, size), Trg: make([][]int, size)}
	for i := range size {
		b.Src[i], b.Trg[i] = make([]int, S), make([]int, T)
		if i < len(ex) {
			copy(b.Src[i], ex[i].Src)
			copy(b.Trg[i], ex[i].Trg)
		} else {
			b.Src[i][0], b.Src[i][1], b.Trg[i][0] = SOSID, EOSID, SOSID
		}
	}
	return b
}

// FitOptions configure Fit.
type FitOptions struct {
	Epochs, BatchSize int
	// Out receives the checkpoints Out/best (lowest validation loss) and Out/final.
	Out string
	// Log receives one line per epoch; a terminal gets a progress bar instead.
	Log io.Writer
	// Name labels the progress bar and log lines.
	Name string
}

// EpochRecord is one line of the training history.
type EpochRecord struct {
	Epoch        int     `json:"epoch"`
	TrainLoss    float64 `json:"train_loss"`
	ValLoss      float64 `json:"val_loss"`
	Seconds      float64 `json:"seconds"`
	TokensPerSec float64 `json:"train_tokens_per_s"` // scored target tokens per second of training steps
}

// FitResult is what Fit produced.
type FitResult struct {
	History   []EpochRecord
	Best      *Checkpoint // lowest validation loss
	Final     *Checkpoint
	BestEpoch int
}

// Fit trains a model for Epochs epochs over train (shuffled each epoch with the
// hyper-parameters' seed, batches of BatchSize), computes the validation loss after
// each epoch, and keeps the weights of the epoch with the lowest one (Text_to_Python's
// train_model with its _best and _final checkpoints).
func Fit(ctx context.Context, backend compute.Backend, ck *Checkpoint, h Hyper, train, val []Example, opts FitOptions) (*FitResult, error) {
	if len(train) == 0 || len(val) == 0 {
		return nil, fmt.Errorf("seq2seq: fit needs training and validation examples (got %d and %d)", len(train), len(val))
	}
	if opts.Epochs < 1 || opts.BatchSize < 1 {
		return nil, fmt.Errorf("seq2seq: epochs %d and batch size %d: positive values expected", opts.Epochs, opts.BatchSize)
	}
	tr, err := NewTrainer(backend, ck.Config, h, ck.Weights)
	if err != nil {
		return nil, err
	}
	nb := (len(train) + opts.BatchSize - 1) / opts.BatchSize
	var bar *progressbar.ProgressBar
	logw := opts.Log
	if f, ok := opts.Log.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar = progressbar.NewOptions(nb*opts.Epochs, progressbar.OptionSetWriter(f), progressbar.OptionShowCount(),
			progressbar.OptionSetDescription("training "+opts.Name), progressbar.OptionThrottle(200*time.Millisecond))
		logw = nil
	}
	rng := rand.New(rand.NewPCG(h.Seed, 0xe90c))
	order := make([]int, len(train))
	for i := range order {
		order[i] = i
	}
	res := &FitResult{}
	bestLoss := math.Inf(1)
	for epoch := 1; epoch <= opts.Epochs; epoch++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		start := time.Now()
		var sum, stepSecs float64
		tokens := 0
		for k := range nb {
			ex := make([]Example, 0, opts.BatchSize)
			for _, i := range order[k*opts.BatchSize : min((k+1)*opts.BatchSize, len(order))] {
				ex = append(ex, train[i])
			}
			b := PadBatch(ex, opts.BatchSize, ck.Config)
			t0 := time.Now()
			r, err := tr.Step(ctx, b)
			if err != nil {
				return nil, err
			}
			stepSecs += time.Since(t0).Seconds()
			tokens += b.Tokens()
			sum += r.Loss
			if bar != nil {
				bar.Describe(fmt.Sprintf("training %s epoch %d loss %.3f", opts.Name, epoch, r.Loss))
				bar.Add(1)
			}
		}
		vl, err := evalLoss(ctx, tr, val, opts.BatchSize)
		if err != nil {
			return nil, err
		}
		rec := EpochRecord{Epoch: epoch, TrainLoss: sum / float64(nb), ValLoss: vl, Seconds: time.Since(start).Seconds(), TokensPerSec: float64(tokens) / stepSecs}
		res.History = append(res.History, rec)
		if logw != nil {
			fmt.Fprintf(logw, "%s epoch %d: train loss %.4f, val loss %.4f, %.0f tokens/s, %.1f s\n", opts.Name, epoch, rec.TrainLoss, rec.ValLoss, rec.TokensPerSec, rec.Seconds)
		}
		w, err := tr.Weights()
		if err != nil {
			return nil, err
		}
		cur := &Checkpoint{Config: ck.Config, Weights: w, Src: ck.Src, Trg: ck.Trg,
			Meta: map[string]any{"epoch": epoch, "val_loss": vl, "history": res.History}}
		if vl < bestLoss {
			bestLoss, res.Best, res.BestEpoch = vl, cur, epoch
			if opts.Out != "" {
				if err := cur.Save(filepath.Join(opts.Out, "best")); err != nil {
					return nil, err
				}
			}
		}
		res.Final = cur
	}
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(opts.Log)
	}
	if opts.Out != "" {
		if err := res.Final.Save(filepath.Join(opts.Out, "final")); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func evalLoss(ctx context.Context, tr *Trainer, val []Example, bs int) (float64, error) {
	var sum float64
	n := 0
	for k := 0; k < len(val); k += bs {
		l, err := tr.EvalLoss(ctx, PadBatch(val[k:min(k+bs, len(val))], bs, tr.Config))
		if err != nil {
			return 0, err
		}
		sum += l
		n++
	}
	return sum / float64(n), nil
}
