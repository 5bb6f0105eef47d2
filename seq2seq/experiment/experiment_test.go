package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"

	s2s "github.com/attnscope/attnscope/model/seq2seq"
	"github.com/attnscope/attnscope/report"
	"github.com/attnscope/attnscope/seq2seq/corpus"
	"github.com/attnscope/attnscope/store"
)

// TestAlignmentSampleRoundTrip: an alignment stored as a run sample reads back
// through report.GenerationAlignment with the same [T, S] weights, every source
// position (SOS, EOS, PAD included) as a column label and row t labelled with
// generated token t (no one-column shift).
func TestAlignmentSampleRoundTrip(t *testing.T) {
	src := []string{"<SOS>", "add", "two", "<EOS>", "<PAD>"}
	gen := []store.GeneratedToken{{ID: 4, Token: "def", Prob: 0.5}, {ID: 5, Token: "add", Prob: 0.6}, {ID: 2, Token: "<EOS>", Prob: 0.9}}
	att := [][]float32{{0.1, 0.6, 0.1, 0.1, 0.1}, {0, 0.9, 0.1, 0, 0}, {0.2, 0.2, 0.2, 0.2, 0.2}}
	s, data, err := AlignmentSample("x", src, gen, att)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	run, err := store.Create(dir, store.Meta{Kind: "seq2seq", DType: "float32"})
	if err != nil {
		t.Fatal(err)
	}
	N := len(s.Tokens)
	w, _ := run.NewSample("x", store.SampleOptions{Layers: 1})
	if err := w.Record(store.AttentionName(0), []int{1, N, N}, data); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(s); err != nil {
		t.Fatal(err)
	}
	rr, err := report.OpenRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, gotSrc, gotTrg, err := report.GenerationAlignment(context.Background(), rr, "x", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gotSrc, src) || !slices.Equal(gotTrg, []string{"def", "add", "<EOS>"}) || m.Rows != 3 || m.Cols != 5 {
		t.Fatalf("labels %v / %v, matrix %d×%d", gotSrc, gotTrg, m.Rows, m.Cols)
	}
	for i, row := range att {
		for j, v := range row {
			if float32(m.Data[i*5+j]) != v {
				t.Fatalf("weight (%d, %d) = %v, stored %v", i, j, m.Data[i*5+j], v)
			}
		}
	}
	if _, _, err := AlignmentSample("y", src, gen, att[:2]); err == nil {
		t.Fatal("rows ≠ generated tokens accepted")
	}
}

// toyPairs is a small docstring → code corpus with a learnable mapping.
func toyPairs(n int) []corpus.Pair {
	ops := []struct{ word, op string }{{"sum", "+"}, {"difference", "-"}, {"product", "*"}, {"quotient", "/"}}
	names := []string{"a", "b", "x", "y", "n", "m"}
	rng := rand.New(rand.NewPCG(1, 1))
	var out []corpus.Pair
	for range n {
		o := ops[rng.IntN(len(ops))]
		p, q := names[rng.IntN(len(names))], names[rng.IntN(len(names))]
		out = append(out, corpus.Pair{Docstring: fmt.Sprintf("Return the %s of %s and %s.", o.word, p, q),
			Code: fmt.Sprintf("def f(%s, %s):\n\treturn %s %s %s", p, q, p, o.op, q)})
	}
	return out
}

// TestRunTiny runs the whole study on a toy corpus with tiny models: results.json,
// checkpoints, predictions, the run folder and the figures must appear, and the
// attention model must learn the toy mapping.
func TestRunTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("trains small models")
	}
	backend, err := compute.NewWithConfig("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	res, err := Run(context.Background(), Options{
		Pairs: toyPairs(300), Train: 240, Val: 30, Test: 30,
		Base:  s2s.Config{Embed: 16, Hidden: 32, Layers: 1, MaxSrcLen: 12, MaxTrgLen: 16},
		Kinds: []string{s2s.KindAttention, s2s.KindLSTM}, Hyper: s2s.Hyper{LearningRate: 1e-2, ClipNorm: 1, TeacherForcing: 0.5, Seed: 1},
		Epochs: 8, BatchSize: 32, MaxDecode: 20, Beam: 2, AlignSamples: 12, Out: out, Backend: backend,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"results.json", "report.md", "predictions_lstm_attention.jsonl", "checkpoints/lstm/best/model.safetensors", "checkpoints/lstm_attention/final/config.json",
		"figures/training_curves.png", "figures/bleu_vs_length.png", "figures/model_comparison.png", "figures/attention_example_3.png", "figures/attention_entropy_analysis.png", "run/run.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	var back Results
	b, _ := os.ReadFile(filepath.Join(out, "results.json"))
	if err := json.Unmarshal(b, &back); err != nil || len(back.Models) != 2 || back.Attention == nil || back.Attention.Samples != 12 {
		t.Fatalf("results.json: %v %+v", err, back.Attention)
	}
	att := res.Models[0]
	if att.Greedy.BLEU < 0.5 || att.Beam == nil {
		t.Fatalf("attention model BLEU %.3f on the toy corpus", att.Greedy.BLEU)
	}
	run, err := store.Open(filepath.Join(out, "run"))
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := run.Samples()
	if len(ids) != 12 {
		t.Fatalf("%d samples stored", len(ids))
	}
}
