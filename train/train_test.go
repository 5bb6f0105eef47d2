package train

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/tasks"
)

func tinyConfig() ModelConfig {
	return ModelConfig{Arch: "gpt2", VocabSize: Tokenizer().VocabSize(), NPositions: 32, NEmbd: 16, NLayer: 2, NHead: 2}
}

func additionBatch(t *testing.T, seed int64, n int) (ids, targets [][]int) {
	t.Helper()
	g, err := tasks.NewLongAddition(tasks.Common{Seed: seed, Tokenizer: Tokenizer(), NoLabels: true}, tasks.Range{Lo: 1, Hi: 2}, tasks.Range{Lo: 2, Hi: 2}, true)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := tasks.Take(g, n)
	if err != nil {
		t.Fatal(err)
	}
	return padBatch(ss, 0, -100, 32)
}

func TestTrainerLowersLoss(t *testing.T) {
	llama := tinyConfig()
	llama.Arch, llama.NHead, llama.NKVHead = "llama", 4, 2
	for _, cfg := range []ModelConfig{tinyConfig(), llama} {
		t.Run(cfg.Arch, func(t *testing.T) { checkLowersLoss(t, cfg) })
	}
}

func checkLowersLoss(t *testing.T, cfg ModelConfig) {
	be, err := Backend("")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(be, cfg, Hyper{LearningRate: 1e-2, WarmupSteps: 2, ClipNorm: 1, WeightDecay: 0.01}, cfg.InitParams(3))
	if err != nil {
		t.Fatal(err)
	}
	ids, targets := additionBatch(t, 0, 16)
	var first, last StepResult
	for i := 0; i < 30; i++ {
		r, err := tr.Step(context.Background(), ids, targets)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = r
		}
		last = r
	}
	if first.GradNorm <= 0 || math.IsNaN(first.GradNorm) {
		t.Fatalf("gradient norm %v", first.GradNorm)
	}
	// At initialisation the loss is about ln(vocab) = ln 99 ≈ 4.6.
	if math.Abs(first.Loss-math.Log(float64(cfg.VocabSize))) > 0.3 {
		t.Fatalf("initial loss %.3f, want ≈ ln %d", first.Loss, cfg.VocabSize)
	}
	if last.Loss > first.Loss/2 {
		t.Fatalf("30 steps on one batch: loss %.3f → %.3f, want at least halved", first.Loss, last.Loss)
	}
}

func TestLRSchedule(t *testing.T) {
	h := Hyper{LearningRate: 1, WarmupSteps: 10, TotalSteps: 110, MinLRRatio: 0.1}
	for _, tc := range []struct {
		step int
		want float64
	}{{1, 0.1}, {10, 1}, {60, 0.55}, {110, 0.1}, {500, 0.1}} {
		if got := h.LR(tc.step); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("LR(%d) = %v, want %v", tc.step, got, tc.want)
		}
	}
}

// The saved checkpoint is a Hugging Face GPT-2 folder: train.Load reads it back
// bit for bit, and the project's model runtime (package model) computes the same
// attention and predictions as this package's training graph.
func TestCheckpointMatchesModelRuntime(t *testing.T) {
	llama := tinyConfig()
	llama.Arch, llama.NHead, llama.NKVHead, llama.NInner, llama.RopeTheta = "llama", 4, 2, 40, 10000
	for _, cfg := range []ModelConfig{tinyConfig(), llama} {
		t.Run(cfg.Arch, func(t *testing.T) { checkRuntime(t, cfg) })
	}
}

func checkRuntime(t *testing.T, cfg ModelConfig) {
	be, err := Backend("")
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.InitParams(7)
	dir := t.TempDir()
	tok := Tokenizer()
	if err := Save(dir, cfg, w, SpecialIDs{BOS: tok.BOS(), EOS: tok.EOS(), Pad: tok.Pad()}, nil); err != nil {
		t.Fatal(err)
	}
	if err := tok.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	cfg2, w2, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg2 != cfg {
		t.Fatalf("config %+v, want %+v", cfg2, cfg)
	}
	for i := range w {
		for j := range w[i] {
			if w[i][j] != w2[i][j] {
				t.Fatalf("tensor %d changed on reload", i)
			}
		}
	}
	ids, _ := additionBatch(t, 5, 1)
	p, err := NewPredictor(be, cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := p.Predict(context.Background(), ids, true)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(dir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	n := len(ids[0])
	var maxDiff float64
	seen := 0
	rec := model.RecorderFunc(func(name string, shape []int, data []float32) error {
		var l int
		if _, err := fmt.Sscanf(name, "blocks.%d.attn.pattern", &l); err != nil || !strings.HasSuffix(name, ".attn.pattern") {
			return nil
		}
		seen++
		for h := 0; h < cfg.NHead; h++ {
			for i := 0; i < n*n; i++ {
				maxDiff = math.Max(maxDiff, math.Abs(float64(data[h*n*n+i]-pr.Attention[0][l][h][i])))
			}
		}
		return nil
	})
	out, err := m.Forward(context.Background(), model.Input{IDs: ids[0]}, rec, model.ForwardOptions{Logits: model.LogitsAll})
	if err != nil {
		t.Fatal(err)
	}
	if seen != cfg.NLayer {
		t.Fatalf("the runtime recorded %d attention layers, want %d", seen, cfg.NLayer)
	}
	if maxDiff > 1e-5 {
		t.Fatalf("attention differs from the model runtime by %g", maxDiff)
	}
	v := cfg.VocabSize
	for j := 0; j < n; j++ {
		best := 0
		for k := 1; k < v; k++ {
			if out.Logits[j*v+k] > out.Logits[j*v+best] {
				best = k
			}
		}
		if best != pr.IDs[0][j] {
			t.Fatalf("position %d: runtime predicts %d, training graph %d", j, best, pr.IDs[0][j])
		}
	}
}
