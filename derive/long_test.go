package derive

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attnscope/attnscope/capture"
	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/model/arch"
	"github.com/attnscope/attnscope/store"
)

// writeRandomLlama writes a Llama-shaped checkpoint with random weights (normal,
// std 0.02; norms 1) and tiny-llama's tokenizer into dir.
func writeRandomLlama(t testing.TB, dir string, layers, width, heads, kvHeads, ctxLen int) {
	t.Helper()
	src := refdata.Path(t, "models", "tiny-llama")
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama", "hidden_act": "silu",
		"hidden_size": width, "intermediate_size": 2 * width, "num_attention_heads": heads, "num_key_value_heads": kvHeads,
		"head_dim": width / heads, "num_hidden_layers": layers, "max_position_embeddings": ctxLen, "rms_norm_eps": 1e-5,
		"rope_theta": 10000.0, "vocab_size": 4096, "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": false,
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := model.ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := model.Architecture(c)
	if err != nil {
		t.Fatal(err)
	}
	var infos []checkpoint.TensorInfo
	seen := map[string]bool{}
	params := append(append([]paramT{}, toParams(a.EmbedParams())...), toParams(a.FinalParams())...)
	params = append(params, toParams(a.HeadParams())...)
	for l := range layers {
		params = append(params, toParams(a.LayerParams(l))...)
	}
	var keep []paramT
	for _, p := range params {
		if !seen[p.name] {
			seen[p.name] = true
			keep = append(keep, p)
			infos = append(infos, checkpoint.TensorInfo{Name: p.name, DType: checkpoint.F32, Shape: p.shape})
		}
	}
	w, err := checkpoint.CreateSafetensors(filepath.Join(dir, "model.safetensors"), infos, nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, p := range keep {
		size := 1
		for _, d := range p.shape {
			size *= d
		}
		data := make([]float32, size)
		for i := range data {
			if len(p.shape) == 1 {
				data[i] = 1
			} else {
				data[i] = float32(rng.NormFloat64() * 0.02)
			}
		}
		if err := w.Write(p.name, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

func toParams(ps []arch.Param) []paramT {
	out := make([]paramT, len(ps))
	for i, p := range ps {
		out[i] = paramT{p.Name, p.Shape}
	}
	return out
}

type paramT struct {
	name  string
	shape []int
}

// TestQKLongContext captures 32,768 tokens (ATTNSCOPE_QK_TOKENS overrides) of a
// 4-layer Llama-shaped model with random weights (width 512, 8 query heads, 2 kv
// heads) with --store qk, checks that the process's peak resident memory stays
// under 4 GB, then runs attention_entropy, attention_max_weight and
// attention_received on it (streamed row blocks) and checks that every layer's
// received weights sum to N. Slow: runs only with ATTNSCOPE_QK_LONG=1 (or
// ATTNSCOPE_QK_TOKENS) and without -short. At 32k the capture took 167 s of CPU
// (peak 1.87 GiB). The streamed passes recompute every weight with the AVX-512
// tile kernel (store/qktile_simd.go): at 8,192 tokens entropy, max weight and
// received took 16.4, 15.7 and 10.6 CPU seconds (TestQKDeriveSpeed), quadratic
// in N, so about 11 CPU minutes at 32k (not yet measured there).
func TestQKLongContext(t *testing.T) {
	if testing.Short() || (os.Getenv("ATTNSCOPE_QK_LONG") == "" && os.Getenv("ATTNSCOPE_QK_TOKENS") == "") {
		t.Skip("slow (the 32,768-token capture takes ~3 CPU-minutes, the streamed passes about 11 more): set ATTNSCOPE_QK_LONG=1 (or ATTNSCOPE_QK_TOKENS=n) and run without -short")
	}
	n := 32768
	if v, err := strconv.Atoi(os.Getenv("ATTNSCOPE_QK_TOKENS")); err == nil && v > 0 {
		n = v // a quicker look at smaller sizes
	}
	dir := t.TempDir()
	writeRandomLlama(t, dir, 4, 512, 8, 2, n)
	out := filepath.Join(t.TempDir(), "run")
	start := time.Now()
	var note string
	text := strings.Repeat("def add(a, b):\n    return a + b\n", n/10+1)
	if _, err := capture.Run(context.Background(), out, []capture.Input{{ID: "long", Text: text}}, capture.Options{ModelDir: dir, QK: true, Truncate: "right", Command: []string{"test"}, Info: func(m string) { note = m }}); err != nil {
		t.Fatal(err)
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	peak := ru.Maxrss * 1024 // kilobytes on Linux
	t.Logf("%s; capture took %v, peak resident memory %.2f GiB", note, time.Since(start).Round(time.Second), float64(peak)/(1<<30))
	if peak >= 4e9 {
		t.Errorf("peak resident memory %d bytes, want under 4 GB", peak)
	}
	r, err := store.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Sample("long")
	if err != nil {
		t.Fatal(err)
	}
	if s.QK == nil || s.QK.Tokens != n || s.QK.KVHeads != 2 {
		t.Fatalf("sample holds %+v, want %d tokens with 2 kv heads", s.QK, n)
	}
	start = time.Now()
	if err := deriveRun(t, out, qkPasses); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	t.Logf("derive entropy, max weight, received took %v; peak resident memory so far %.2f GiB", time.Since(start).Round(time.Second), float64(ru.Maxrss*1024)/(1<<30))
	e, err := r.Derived("received", "long")
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, v := range e.Data {
		total += v
	}
	if want := float64(4 * n); math.Abs(total-want) > 1e-6*want {
		t.Errorf("received weights sum to %g, want %g", total, want)
	}
}
