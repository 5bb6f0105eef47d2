package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
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

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/derive/derivetest"
	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/internal/shard"
	"github.com/attnscope/attnscope/store"
)

// deriveTestConfig runs the code-category pass on attention and on its layer-0 head sums.
const deriveTestConfig = `passes:
  - name: code_categories
    input: attention
    function: attention_per_code_category
    kwargs: {distribution: equal_share}
  - name: code_categories_replicated
    input: attention
    function: attention_per_code_category
    kwargs: {distribution: replication, language: python}
`

func writeFile(t testing.TB, path, text string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDeriveCommandErrors(t *testing.T) {
	tmp := t.TempDir()
	cfg := writeFile(t, filepath.Join(tmp, "ok.yaml"), deriveTestConfig)
	badKwarg := writeFile(t, filepath.Join(tmp, "bad.yaml"), "passes:\n  - name: x\n    function: attention_per_code_category\n    kwargs: {lang: py}\n")
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"list", []string{"derive", "--list"}, exitOK},
		{"no config", []string{"derive", tmp}, exitUsage},
		{"no run", []string{"derive", "--config", cfg}, exitUsage},
		{"workers 0", []string{"derive", "--config", cfg, "--workers", "0", tmp}, exitUsage},
		{"unknown kwarg", []string{"derive", "--config", badKwarg, tmp}, exitError},
		{"unknown pass", []string{"derive", "--config", cfg, "--pass", "nope", tmp}, exitError},
		{"missing config", []string{"derive", "--config", filepath.Join(tmp, "nope.yaml"), tmp}, exitError},
		{"not a run", []string{"derive", "--config", cfg, tmp}, exitError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(tt.args); got != tt.want {
				t.Errorf("run(%q) = %d, want %d", strings.Join(tt.args, " "), got, tt.want)
			}
		})
	}
}

type refCase struct {
	Text string `json:"text"`
}

// importNPY imports per-sample .npy attention files [L,H,N,N] with attnscope import,
// taking text, tokens and offsets from the samples of src.
func importNPY(t *testing.T, dst string, src *store.Run, npyDir string) {
	t.Helper()
	ids, _ := src.Samples()
	tokens := map[string]any{}
	args := []string{"import", "--out", dst}
	for _, id := range ids {
		s, err := src.Sample(id)
		if err != nil {
			t.Fatal(err)
		}
		tokens[id] = map[string]any{"text": s.Text, "ids": s.IDs, "tokens": s.Tokens, "offsets": s.Offsets, "prompt_length": s.PromptLen}
		args = append(args, filepath.Join(npyDir, id+".npy"))
	}
	b, err := json.Marshal(tokens)
	if err != nil {
		t.Fatal(err)
	}
	tokFile := writeFile(t, filepath.Join(t.TempDir(), "tokens.json"), string(b))
	args = append(args[:3], append([]string{"--tokens-from", tokFile}, args[3:]...)...)
	if got := run(args); got != exitOK {
		t.Fatalf("import exited %d", got)
	}
	got, _ := store.Open(dst)
	if got == nil {
		t.Fatal("import wrote no run")
	}
	if gotIDs, _ := got.Samples(); strings.Join(gotIDs, ",") != strings.Join(ids, ",") {
		t.Fatalf("imported samples %v, want %v", gotIDs, ids)
	}
}

// Acceptance: derive with configs/derive-all.yaml (every pass) over a run captured from
// each trained reference model and over the same attention exported to .npy and imported
// gives the same numbers (byte-identical outputs), and both agree with derive over
// PyTorch's reference attention.
func TestDeriveCapturedVsImported(t *testing.T) {
	for _, model := range []string{"code-gpt2-mini", "code-bert-mini", "code-llama-mini"} {
		t.Run(model, func(t *testing.T) { deriveCapturedVsImported(t, model) })
	}
}

func deriveCapturedVsImported(t *testing.T, model string) {
	modelDir := refdata.Path(t, "models", model)
	tmp := t.TempDir()
	b, err := os.ReadFile(filepath.Join(modelDir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct{ Cases []refCase }
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	prompts := filepath.Join(tmp, "prompts")
	os.MkdirAll(prompts, 0o755)
	for i, c := range ref.Cases {
		writeFile(t, filepath.Join(prompts, fmt.Sprintf("case%d.py", i)), c.Text)
	}
	captured := filepath.Join(tmp, "captured")
	if got := run([]string{"capture", "--model", modelDir, "--prompts", prompts, "--out", captured}); got != exitOK {
		t.Fatalf("capture exited %d", got)
	}
	cfg := filepath.Join(refdata.RepoRoot(), "configs", "derive-all.yaml")
	if got := run([]string{"derive", "--config", cfg, "--workers", "2", captured}); got != exitOK {
		t.Fatalf("derive exited %d", got)
	}

	// Export the captured attention to .npy, import it into a new run, derive again.
	capRun, err := store.Open(captured)
	if err != nil {
		t.Fatal(err)
	}
	npyDir := filepath.Join(tmp, "npy")
	os.MkdirAll(npyDir, 0o755)
	ids, _ := capRun.Samples()
	for _, id := range ids {
		a, err := capRun.Attention(id)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkpoint.WriteNpyFile(filepath.Join(npyDir, id+".npy"), a.Shape, a.Float32()); err != nil {
			t.Fatal(err)
		}
	}
	imported := filepath.Join(tmp, "imported")
	importNPY(t, imported, capRun, npyDir)
	if got := run([]string{"derive", "--config", cfg, "--workers", "1", imported}); got != exitOK {
		t.Fatalf("derive of the imported run exited %d", got)
	}
	derivetest.Same(t, derivetest.Files(t, imported, derivetest.Derived), derivetest.Files(t, captured, derivetest.Derived))

	// PyTorch's attentions (reference.safetensors) give the same numbers within the
	// attention tolerance of trained models (1e-4, shares are ratios of sums of weights).
	st, err := checkpoint.OpenSafetensors(filepath.Join(modelDir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range ref.Cases {
		data, shape, err := st.Float32(fmt.Sprintf("case%d.attentions", i))
		if err != nil {
			t.Fatal(err)
		}
		if err := checkpoint.WriteNpyFile(filepath.Join(npyDir, fmt.Sprintf("case%d.py.npy", i)), shape, data); err != nil {
			t.Fatal(err)
		}
	}
	pytorch := filepath.Join(tmp, "pytorch")
	importNPY(t, pytorch, capRun, npyDir)
	if got := run([]string{"derive", "--config", cfg, pytorch}); got != exitOK {
		t.Fatalf("derive of the reference run exited %d", got)
	}
	got, err := store.ReadMetricsCSV(filepath.Join(captured, store.MetricsCSV))
	if err != nil {
		t.Fatal(err)
	}
	want, err := store.ReadMetricsCSV(filepath.Join(pytorch, store.MetricsCSV))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("%d metric rows, reference run %d", len(got), len(want))
	}
	worst := 0.0
	for k := range got {
		g, w := got[k], want[k]
		if g.Sample != w.Sample || g.Pass != w.Pass || g.Layer != w.Layer || g.Head != w.Head || g.Metric != w.Metric {
			t.Fatalf("row %d: %+v vs reference %+v", k, g, w)
		}
		worst = math.Max(worst, math.Abs(g.Value-w.Value))
	}
	if worst > 1e-4 {
		t.Errorf("captured vs PyTorch attention: metrics differ by up to %g, want ≤ 1e-4", worst)
	}
	t.Logf("captured vs PyTorch attention: largest metric difference %.3g over %d rows", worst, len(got))
}

// syntheticRun writes n samples of random causal attention with Python text.
func syntheticRun(t testing.TB, dir string, n int) {
	t.Helper()
	r, err := store.Create(dir, store.Meta{Kind: "import", DType: "float32", StartTime: time.Unix(0, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	const L, H = 2, 2
	for s := 0; s < n; s++ {
		// tokens "x1", " =", " 1", "\n", ... : one line "x<k> = <k>\n" per 4 tokens
		var text strings.Builder
		var tokens []string
		var offsets [][2]int
		pos := 0
		for k := 0; k < 6+s%5; k++ {
			for _, tok := range []string{fmt.Sprintf("x%d", k), " =", fmt.Sprintf(" %d", k), "\n"} {
				tokens = append(tokens, tok)
				offsets = append(offsets, [2]int{pos, pos + len(tok)})
				text.WriteString(tok)
				pos += len(tok)
			}
		}
		N := len(tokens)
		id := fmt.Sprintf("s%03d", s)
		w, err := r.NewSample(id, store.SampleOptions{Layers: L})
		if err != nil {
			t.Fatal(err)
		}
		for l := 0; l < L; l++ {
			data := make([]float32, H*N*N)
			for h := 0; h < H; h++ {
				for i := 0; i < N; i++ {
					row := data[(h*N+i)*N:][:N]
					var sum float32
					for j := 0; j <= i; j++ {
						row[j] = rng.Float32() + 0.01
						sum += row[j]
					}
					for j := 0; j <= i; j++ {
						row[j] /= sum
					}
				}
			}
			if err := w.Record(store.AttentionName(l), []int{H, N, N}, data); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Commit(&store.Sample{ID: id, Text: text.String(), PromptText: text.String(), Tokens: tokens, Offsets: offsets, PromptLen: N, Language: "python"}); err != nil {
			t.Fatal(err)
		}
	}
}

const deriveChildEnv = "ATTNSCOPE_DERIVE_CHILD_ARGS"

// countDerived counts the files derivetest.Derived keeps under dir, without reading them.
func countDerived(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if rel, err := filepath.Rel(dir, p); err == nil && derivetest.Derived(rel) {
				n++
			}
		}
		return nil
	})
	return n
}

// childStopEnv, "DIR\x1fN", makes TestDeriveChild stop itself (SIGSTOP) once the
// shard work folder DIR records N finished items, so that a parent killing it there
// finds it mid-way however fast the remaining items would be.
const childStopEnv = "ATTNSCOPE_CHILD_STOP_AT"

// TestDeriveChild is the child process of TestDeriveKilledMidway and of the kill
// tests of other sharded commands: it runs the attnscope command line given in its
// environment (stopping itself as childStopEnv says).
func TestDeriveChild(t *testing.T) {
	args := os.Getenv(deriveChildEnv)
	if args == "" {
		t.Skip("helper for TestDeriveKilledMidway; runs only as its child process")
	}
	if at := os.Getenv(childStopEnv); at != "" {
		dir, n, _ := strings.Cut(at, "\x1f")
		want, err := strconv.Atoi(n)
		if err != nil {
			t.Fatalf("%s=%q: DIR\\x1fN expected", childStopEnv, at)
		}
		go func() {
			for {
				if done, err := shard.ReadProgress(dir); err == nil && len(done) >= want {
					syscall.Kill(os.Getpid(), syscall.SIGSTOP)
					return
				}
				time.Sleep(100 * time.Microsecond)
			}
		}()
	}
	os.Exit(run(strings.Split(args, "\x1f")))
}

// startStoppingChild starts TestDeriveChild on argv, stopping itself once the work
// folder dir records n finished items.
func startStoppingChild(t *testing.T, argv []string, dir string, n int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDeriveChild$")
	cmd.Env = append(os.Environ(), deriveChildEnv+"="+strings.Join(argv, "\x1f"), childStopEnv+"="+dir+"\x1f"+strconv.Itoa(n))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// Acceptance: killing derive (SIGKILL, a real process) midway and rerunning it gives
// byte-identical outputs to one uninterrupted run.
func TestDeriveKilledMidway(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process; skipped with -short")
	}
	tmp := t.TempDir()
	cfg := filepath.Join(refdata.RepoRoot(), "configs", "derive-all.yaml") // every pass
	const n = 16
	full, killed := filepath.Join(tmp, "full"), filepath.Join(tmp, "killed")
	syntheticRun(t, full, n)
	syntheticRun(t, killed, n)
	if got := run([]string{"derive", "--config", cfg, "--workers", "2", full}); got != exitOK {
		t.Fatalf("derive exited %d", got)
	}
	want := derivetest.Files(t, full, derivetest.Derived)

	for attempt := 0; attempt < 3; attempt++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDeriveChild$")
		cmd.Env = append(os.Environ(), deriveChildEnv+"="+strings.Join([]string{"derive", "--config", cfg, "--workers", "1", killed}, "\x1f"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill it once a quarter (then a half, three quarters) of the outputs exist.
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if countDerived(killed) >= (attempt+1)*len(want)/4 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	if _, err := os.Stat(filepath.Join(killed, store.MetricsCSV)); err == nil {
		t.Skip("derive finished before it was killed; nothing to test")
	}
	partial := derivetest.Files(t, killed, derivetest.Derived)
	if len(partial) == 0 {
		t.Fatal("the killed derive wrote nothing")
	}
	for k, v := range partial {
		if w, ok := want[k]; !ok || !bytes.Equal(v, w) {
			t.Errorf("after the kill, %s is not the file an uninterrupted run writes", k)
		}
	}
	if got := run([]string{"derive", "--config", cfg, "--workers", "2", killed}); got != exitOK {
		t.Fatalf("rerun exited %d", got)
	}
	derivetest.Same(t, derivetest.Files(t, killed, derivetest.Derived), want)
}

// configs/derive-all.yaml runs on captures of each tokenizer family (byte-level BPE,
// WordPiece with special tokens of empty span, SentencePiece), and the code-category
// shares of every sample, layer and head add to 1.
func TestDeriveAllConfigOnTokenizerFamilies(t *testing.T) {
	cfg := filepath.Join(refdata.RepoRoot(), "configs", "derive-all.yaml")
	for _, model := range []string{"code-gpt2-mini", "code-bert-mini", "code-llama-mini"} {
		t.Run(model, func(t *testing.T) {
			modelDir := refdata.Path(t, "models", model)
			tmp := t.TempDir()
			prompts := filepath.Join(tmp, "prompts")
			os.MkdirAll(prompts, 0o755)
			writeFile(t, filepath.Join(prompts, "a.py"), "import os\n\ndef f(a, b=2):\n    # sum\n    return a + b  # done\n")
			out := filepath.Join(tmp, "run")
			if got := run([]string{"capture", "--model", modelDir, "--prompts", prompts, "--out", out}); got != exitOK {
				t.Fatalf("capture exited %d", got)
			}
			if got := run([]string{"derive", "--config", cfg, out}); got != exitOK {
				t.Fatalf("derive exited %d", got)
			}
			rows, err := store.ReadMetricsCSV(filepath.Join(out, store.MetricsCSV))
			if err != nil {
				t.Fatal(err)
			}
			sums := map[[2]int64]float64{}
			for _, r := range rows {
				if r.Pass == "code_categories" && strings.HasSuffix(r.Metric, "_share") {
					sums[[2]int64{r.Layer, r.Head}] += r.Value
				}
			}
			if len(sums) != 4*4+1 {
				t.Errorf("%d (layer, head) groups of shares, want 17", len(sums))
			}
			for k, s := range sums {
				if math.Abs(s-1) > 1e-9 {
					t.Errorf("layer %d head %d: shares add to %g", k[0], k[1], s)
				}
			}
		})
	}
}
