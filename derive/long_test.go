package derive

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attnscope/attnscope/capture"
	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/procstat"
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
// heads) with --store qk, then runs attention_entropy, attention_max_weight and
// attention_received on it (streamed row blocks recomputed from queries and keys).
// Each of the four steps runs in its own child process (TestQKLongStage), so the
// peak resident memory (the child's ru_maxrss from wait4, the same counter as its
// VmHWM) and CPU time measured belong to that step alone; each peak must stay
// under 4 GB. The outputs are checked against what softmax rows imply: causal
// row i has i+1 weights, so its entropy lies in [0, ln(i+1)] and its largest
// weight in [1/(i+1), 1]; key k is attended by rows k..N-1, so it receives at
// most N-k, and every layer's received weights sum to N. Slow: runs only with
// ATTNSCOPE_QK_LONG=1 (or ATTNSCOPE_QK_TOKENS) and without -short; figures
// measured at 32k are in README.md ("Long contexts").
func TestQKLongContext(t *testing.T) {
	if testing.Short() || (os.Getenv("ATTNSCOPE_QK_LONG") == "" && os.Getenv("ATTNSCOPE_QK_TOKENS") == "") {
		t.Skip("slow (the 32,768-token capture takes ~3 CPU-minutes, the streamed passes about 9 more): set ATTNSCOPE_QK_LONG=1 (or ATTNSCOPE_QK_TOKENS=n) and run without -short")
	}
	n := 32768
	if v, err := strconv.Atoi(os.Getenv("ATTNSCOPE_QK_TOKENS")); err == nil && v > 0 {
		n = v // a quicker look at smaller sizes
	}
	const layers, heads = 4, 8
	modelDir := t.TempDir()
	writeRandomLlama(t, modelDir, layers, 512, heads, 2, n)
	out := filepath.Join(t.TempDir(), "run")
	for _, stage := range []string{"capture", "entropy", "maxw", "received"} {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestQKLongStage$", "-test.v", "-test.timeout=0")
		cmd.Env = append(os.Environ(), "ATTNSCOPE_QK_STAGE="+stage, "ATTNSCOPE_QK_MODEL="+modelDir, "ATTNSCOPE_QK_RUN="+out, "ATTNSCOPE_QK_TOKENS="+strconv.Itoa(n))
		start := time.Now()
		b, err := cmd.CombinedOutput()
		wall := time.Since(start)
		if err != nil {
			t.Fatalf("%s: %v\n%s", stage, err, b)
		}
		ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		if !ok {
			t.Fatalf("%s: no resource usage for the child process", stage)
		}
		peak := ru.Maxrss * 1024 // kilobytes on Linux
		cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		t.Logf("%s (%d tokens): wall %v, CPU %v, peak resident memory %.2f GiB", stage, n, wall.Round(100*time.Millisecond), cpu.Round(100*time.Millisecond), float64(peak)/(1<<30))
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "long_test.go") {
				t.Log(strings.TrimSpace(line))
			}
		}
		if peak >= 4e9 {
			t.Errorf("%s: peak resident memory %d bytes, want under 4 GB", stage, peak)
		}
	}
	r, err := store.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Sample("long")
	if err != nil {
		t.Fatal(err)
	}
	if s.QK == nil || s.QK.Tokens != n || s.QK.KVHeads != 2 || s.QK.Layers != layers {
		t.Fatalf("sample holds %+v, want %d layers of %d tokens with 2 kv heads", s.QK, layers, n)
	}
	const eps = 1e-9
	rows := func(pass string, check func(i int, v float64) bool) {
		d, err := r.Derived(pass, "long")
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Shape) != 3 || d.Shape[0] != layers || d.Shape[1] != heads || d.Shape[2] != n {
			t.Fatalf("%s shape %v, want [%d %d %d]", pass, d.Shape, layers, heads, n)
		}
		bad := 0
		for j, v := range d.Data {
			if i := j % n; !check(i, v) {
				if bad++; bad <= 3 {
					t.Errorf("%s: row %d (flat %d) = %g, out of range", pass, i, j, v)
				}
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d values out of range", pass, bad, len(d.Data))
		}
	}
	rows("entropy", func(i int, v float64) bool { return v >= -eps && v <= math.Log(float64(i+1))+1e-6 })
	rows("maxw", func(i int, v float64) bool { return v >= 1/float64(i+1)-eps && v <= 1+eps })
	e, err := r.Derived("received", "long")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Shape) != 2 || e.Shape[0] != layers || e.Shape[1] != n {
		t.Fatalf("received shape %v, want [%d %d]", e.Shape, layers, n)
	}
	for l := range layers {
		total := 0.0
		for k, v := range e.Data[l*n : (l+1)*n] {
			total += v
			if v < -eps || v > float64(n-k)+1e-6 {
				t.Errorf("received: layer %d key %d = %g, want within [0, %d]", l, k, v, n-k)
			}
		}
		if math.Abs(total-float64(n)) > 1e-6*float64(n) {
			t.Errorf("received: layer %d sums to %g, want %d", l, total, n)
		}
	}
}

// TestQKLongStage is one step of TestQKLongContext, run by it in a child process
// (ATTNSCOPE_QK_STAGE names the step) so that the peak memory measured is that
// step's alone.
func TestQKLongStage(t *testing.T) {
	stage := os.Getenv("ATTNSCOPE_QK_STAGE")
	if stage == "" {
		t.Skip("a child process of TestQKLongContext (needs ATTNSCOPE_QK_STAGE)")
	}
	out := os.Getenv("ATTNSCOPE_QK_RUN")
	switch stage {
	case "capture":
		n, err := strconv.Atoi(os.Getenv("ATTNSCOPE_QK_TOKENS"))
		if err != nil {
			t.Fatal(err)
		}
		var note string
		text := strings.Repeat("def add(a, b):\n    return a + b\n", n/10+1)
		if _, err := capture.Run(t.Context(), out, []capture.Input{{ID: "long", Text: text}}, capture.Options{ModelDir: os.Getenv("ATTNSCOPE_QK_MODEL"), QK: true, Truncate: "right", Command: []string{"test"}, Info: func(m string) { note = m }}); err != nil {
			t.Fatal(err)
		}
		t.Logf("capture: %s", note)
	default:
		fn := map[string]string{"entropy": "attention_entropy", "maxw": "attention_max_weight", "received": "attention_received"}[stage]
		if fn == "" {
			t.Fatalf("unknown stage %q", stage)
		}
		if err := deriveRun(t, out, "passes:\n  - name: "+stage+"\n    input: attention\n    function: "+fn+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%s: VmHWM %.2f GiB, CPU %v", stage, float64(procstat.PeakRSS())/(1<<30), procstat.CPUTime().Round(time.Millisecond))
}
