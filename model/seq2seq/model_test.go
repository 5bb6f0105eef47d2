package seq2seq

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/attnscope/attnscope/seq2seq/corpus"
)

// TestAttentionRowsAndDependence: every attention row is a distribution, and it
// changes when the encoder states change (the bug class of the old PyTorch tutorial,
// whose attention weights ignored the encoder outputs).
func TestAttentionRowsAndDependence(t *testing.T) {
	backend := testBackend(t)
	cfg := tinyConfig(KindAttention)
	params := float64Params(cfg, 5)
	np := len(params)
	e := MustNewExec(backend, func(in []*Node) []*Node {
		w := cfg.bind(in[:np])
		out := in[np]
		enc := Encoded{Out: out, Keys: linear(out, w["decoder.attention.W_h.weight"], nil)}
		a, ctx := cfg.Attend(w, in[np+1], enc)
		return []*Node{a, ctx}
	})
	rng := rand.New(rand.NewPCG(1, 2))
	randT := func(dims ...int) []float64 {
		n := 1
		for _, d := range dims {
			n *= d
		}
		v := make([]float64, n)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		return v
	}
	B, S, H := 2, 5, cfg.Hidden
	out := randT(B, S, 2*H)
	s := tensors.FromFlatDataAndDimensions(randT(B, H), B, H)
	run := func(o []float64) []float64 {
		args := []any{}
		for _, p := range params {
			args = append(args, p)
		}
		r := e.MustExec(append(args, tensors.FromFlatDataAndDimensions(o, B, S, 2*H), s)...)
		return tensors.MustCopyFlatData[float64](r[0])
	}
	a := run(out)
	for b := range B {
		sum := 0.0
		for j := range S {
			sum += a[b*S+j]
		}
		if math.Abs(sum-1) > 1e-12 {
			t.Fatalf("row %d sums to %v", b, sum)
		}
	}
	out2 := slices.Clone(out)
	for i := range out2[:S*2*H] { // change the encoder states of sample 0 only
		out2[i] += rng.NormFloat64()
	}
	a2 := run(out2)
	diff0, diff1 := 0.0, 0.0
	for j := range S {
		diff0 += math.Abs(a2[j] - a[j])
		diff1 += math.Abs(a2[S+j] - a[S+j])
	}
	if diff0 < 1e-3 {
		t.Fatalf("attention did not change with the encoder states (Σ|Δ| = %g)", diff0)
	}
	if diff1 != 0 {
		t.Fatalf("attention of an untouched sample changed by %g", diff1)
	}
}

// copyTask returns examples whose target is the source (ids 4..V-1), with vocabularies.
func copyTask(n int, seed uint64) ([]Example, *corpus.Vocab) {
	rng := rand.New(rand.NewPCG(seed, 9))
	itos := append([]string(nil), corpus.Specials[:]...)
	for i := range 8 {
		itos = append(itos, string(rune('a'+i)))
	}
	v, _ := corpus.NewVocab(itos)
	var ex []Example
	for range n {
		l := 2 + rng.IntN(4)
		ids := []int{SOSID}
		for range l {
			ids = append(ids, 4+rng.IntN(8))
		}
		ids = append(ids, EOSID)
		ex = append(ex, Example{Src: ids, Trg: slices.Clone(ids)})
	}
	return ex, v
}

func smallCopyConfig(kind string) Config {
	return Config{Kind: kind, SrcVocab: 12, TrgVocab: 12, Embed: 16, Hidden: 24, Layers: 2, MaxSrcLen: 6, MaxTrgLen: 6}
}

// TestFitCopyTask trains the attention model on a copy task, checks that the loss
// falls and that greedy decoding of training sources reproduces them, that beam
// search of width 1 equals greedy decoding, and that the checkpoints load back.
func TestFitCopyTask(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a small model")
	}
	backend := testBackend(t)
	train, v := copyTask(256, 1)
	val, _ := copyTask(32, 2)
	cfg := smallCopyConfig(KindAttention)
	ck := &Checkpoint{Config: cfg, Weights: cfg.InitParams(1), Src: v, Trg: v}
	out := t.TempDir()
	res, err := Fit(context.Background(), backend, ck, Hyper{LearningRate: 1e-2, ClipNorm: 1, TeacherForcing: 0.5, Seed: 1}, train, val,
		FitOptions{Epochs: 12, BatchSize: 32, Out: out, Name: "copy"})
	if err != nil {
		t.Fatal(err)
	}
	h := res.History
	if h[len(h)-1].TrainLoss > 0.5*h[0].TrainLoss {
		t.Fatalf("training loss %v → %v", h[0].TrainLoss, h[len(h)-1].TrainLoss)
	}
	back, err := Load(filepath.Join(out, "best"))
	if err != nil {
		t.Fatal(err)
	}
	if back.Config != cfg || !slices.Equal(back.Weights[3], res.Best.Weights[3]) {
		t.Fatal("best checkpoint does not round-trip")
	}
	dec, err := NewDecoder(backend, cfg, back.Weights)
	if err != nil {
		t.Fatal(err)
	}
	b := PadBatch(val[:8], 8, cfg)
	hyps, err := dec.Greedy(context.Background(), b.Src, 10)
	if err != nil {
		t.Fatal(err)
	}
	exact := 0
	for i, hy := range hyps {
		if slices.Equal(hy.IDs, val[i].Trg[1:]) {
			exact++
		}
		if len(hy.Attention) != len(hy.IDs) {
			t.Fatalf("hypothesis %d: %d attention rows for %d ids", i, len(hy.Attention), len(hy.IDs))
		}
		for _, row := range hy.Attention {
			sum := 0.0
			for _, x := range row {
				sum += float64(x)
			}
			if len(row) != cfg.MaxSrcLen+2 || math.Abs(sum-1) > 1e-5 {
				t.Fatalf("attention row of %d positions sums to %v", len(row), sum)
			}
		}
		beam, err := dec.Beam(context.Background(), b.Src[i], 1, 10, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(beam.IDs, hy.IDs) || math.Abs(beam.LogProb-hy.LogProb) > 1e-4 {
			t.Fatalf("beam k=1 %v (%v) differs from greedy %v (%v)", beam.IDs, beam.LogProb, hy.IDs, hy.LogProb)
		}
		b4, err := dec.Beam(context.Background(), b.Src[i], 4, 10, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(b4.Attention) != len(b4.IDs) {
			t.Fatalf("beam hypothesis: %d attention rows for %d ids", len(b4.Attention), len(b4.IDs))
		}
	}
	if exact < 6 {
		t.Fatalf("greedy decoding copied %d of 8 validation sequences", exact)
	}
}

func TestBadInput(t *testing.T) {
	backend := testBackend(t)
	_, v := copyTask(1, 1)
	cfg := smallCopyConfig(KindLSTM)
	ck := &Checkpoint{Config: cfg, Weights: cfg.InitParams(2), Src: v, Trg: v}
	dir := t.TempDir()
	if err := ck.Save(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err != nil {
		t.Fatal(err)
	}
	// A vocabulary of the same size but other tokens.
	other := slices.Clone(v.Itos)
	other[5], other[6] = other[6], other[5]
	ov, _ := corpus.NewVocab(other)
	ov.Save(filepath.Join(dir, TrgVocabFile))
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "not the vocabulary the model was trained with") {
		t.Fatalf("swapped vocabulary: %v", err)
	}
	bigger, _ := corpus.NewVocab(append(slices.Clone(v.Itos), "zz"))
	bigger.Save(filepath.Join(dir, TrgVocabFile))
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "13 tokens") {
		t.Fatalf("larger vocabulary: %v", err)
	}
	os.WriteFile(filepath.Join(dir, ConfigFile), []byte("{"), 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Fatalf("broken config: %v", err)
	}
	dec, err := NewDecoder(backend, cfg, ck.Weights)
	if err != nil {
		t.Fatal(err)
	}
	long := make([]int, cfg.MaxSrcLen+3)
	if _, err := dec.Greedy(context.Background(), [][]int{long}, 5); err == nil || !strings.Contains(err.Error(), "exceeds the model's maximum") {
		t.Fatalf("long source: %v", err)
	}
	if _, err := NewDecoder(backend, cfg, ck.Weights[1:]); err == nil {
		t.Fatal("missing weights accepted")
	}
}
