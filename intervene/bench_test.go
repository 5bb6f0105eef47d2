package intervene

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/tasks"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// randomGPT2 writes a GPT-2 checkpoint of the given shape with N(0, 0.02²)
// weights (LayerNorm gains 1) into a temporary folder.
func randomGPT2(b *testing.B, layers, heads, width, vocab, positions int) string {
	dir := b.TempDir()
	cfg := fmt.Sprintf(`{"model_type": "gpt2", "n_layer": %d, "n_head": %d, "n_embd": %d, "vocab_size": %d, "n_positions": %d}`, layers, heads, width, vocab, positions)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	c, err := model.ReadConfig(dir)
	if err != nil {
		b.Fatal(err)
	}
	a, err := model.Architecture(c)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var infos []checkpoint.TensorInfo
	var data [][]float32
	seen := map[string]bool{}
	ps := append(a.EmbedParams(), a.FinalParams()...)
	for l := range layers {
		ps = append(ps, a.LayerParams(l)...)
	}
	for _, p := range append(ps, a.HeadParams()...) {
		if seen[p.Name] {
			continue
		}
		seen[p.Name] = true
		size := 1
		for _, d := range p.Shape {
			size *= d
		}
		v := make([]float32, size)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.02)
			if len(p.Shape) == 1 && filepath.Ext(p.Name) == ".weight" {
				v[i] = 1
			}
		}
		infos = append(infos, checkpoint.TensorInfo{Name: p.Name, DType: checkpoint.F32, Shape: p.Shape})
		data = append(data, v)
	}
	if err := checkpoint.WriteSafetensors(filepath.Join(dir, "model.safetensors"), infos, data, map[string]string{"format": "pt"}); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkAblationSweep times a full head-ablation sweep (every head's hook_z
// zeroed alone, plus the clean pass) of a randomly initialised GPT-2-small-shaped
// model (12 layers × 12 heads, width 768; vocabulary 1024) over 100 prompts of
// 32 tokens, and reports the time per head. $ATTNSCOPE_BENCH_LAYERS, _HEADS,
// _WIDTH, _PROMPTS and _TOKENS change the shape for a quick run.
func BenchmarkAblationSweep(b *testing.B) {
	layers, heads, width := envInt("ATTNSCOPE_BENCH_LAYERS", 12), envInt("ATTNSCOPE_BENCH_HEADS", 12), envInt("ATTNSCOPE_BENCH_WIDTH", 768)
	prompts, tokens, vocab := envInt("ATTNSCOPE_BENCH_PROMPTS", 100), envInt("ATTNSCOPE_BENCH_TOKENS", 32), 1024
	m, err := model.Load(randomGPT2(b, layers, heads, width, vocab, 128), model.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	samples := make([]*tasks.Sample, prompts)
	for i := range samples {
		ids := make([]int, tokens+1)
		for j := range ids {
			ids[j] = rng.IntN(vocab)
		}
		samples[i] = &tasks.Sample{InputIDs: ids[:tokens], TargetIDs: ids[1:]}
	}
	b.ResetTimer()
	for range b.N {
		if _, _, err := Ablation(context.Background(), m, samples, tasks.DefaultIgnoreIndex, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/float64(layers*heads+1), "s/head")
}
