package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attnscope/attnscope/evaluate"
	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/internal/shard"
)

// TestEvaluateHFModel runs `attnscope evaluate --model` on the tiny-llama reference
// model given Mistral's chat template, with an AttentionSpan-style config using
// apply_chat_template.
func TestEvaluateHFModel(t *testing.T) {
	dir, cfg := hfEvalSetup(t, 2)
	out := filepath.Join(t.TempDir(), "res")
	if got := run([]string{"evaluate", cfg, "--model", dir, "--out", out}); got != exitError {
		t.Errorf("--model with a training section: exit %d, want an error", got)
	}
	if got := run([]string{"evaluate", cfg, "training=null", "--model", dir, "--out", out}); got != exitOK {
		t.Fatalf("evaluate --model exited %d", got)
	}
	for _, f := range []string{"results.json", "summary.csv", "samples.csv"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	iv := filepath.Join(t.TempDir(), "ablate.yaml")
	os.WriteFile(iv, []byte("name: ablate-l0\nedits:\n  - hook: blocks.0.attn.hook_z\n    op: zero\n"), 0o644)
	out2 := filepath.Join(t.TempDir(), "res")
	if got := run([]string{"evaluate", cfg, "training=null", "--model", dir, "--intervene", iv, "--out", out2}); got != exitOK {
		t.Fatalf("evaluate --intervene exited %d", got)
	}
	res, err := os.ReadFile(filepath.Join(out2, "results.json"))
	if err != nil || !strings.Contains(string(res), `"name": "ablate-l0"`) {
		t.Errorf("results.json does not record the intervention (%v)", err)
	}
	os.WriteFile(iv, []byte("edits:\n  - hook: attn.hook_z\n    heads: [99]\n    op: zero\n"), 0o644)
	if got := run([]string{"evaluate", cfg, "training=null", "--model", dir, "--intervene", iv, "--out", filepath.Join(t.TempDir(), "bad")}); got != exitError {
		t.Errorf("a head the model lacks: exit %d, want an error", got)
	}
}

// hfEvalSetup copies the tiny-llama reference model with Mistral's chat template and
// writes an AttentionSpan-style config evaluating n samples of each dataset.
func hfEvalSetup(t *testing.T, n int) (dir, cfg string) {
	src := refdata.Path(t, "models", "tiny-llama")
	dir = t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	tc, err := os.ReadFile(filepath.Join(refdata.RepoRoot(), "tokenizer", "chat", "testdata", "templates", "mistral", "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), tc, 0o644)
	cfg = filepath.Join(t.TempDir(), "hf.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`name: hf
model:
  name: meta-llama/Llama-3.2-1B-Instruct
  is_pretrained: true
training:
  epochs: 1
  batch_size: 2
  learning_rate: 1.0e-3
  train_dataset: {generator: LongAdditionGenerator, generator_parameters: {seed: 0}, num_samples: 2}
evaluation:
  batch_size: 2
  visualize: false
  name: hf_eval
  dataset1:
    num_samples: %d
    generator: LongAdditionGenerator
    generator_parameters: {seed: 1, length: "1,2", apply_chat_template: true}
  dataset2:
    num_samples: %d
    generator: LongAdditionGenerator
    generator_parameters: {seed: 1, length: "3,4", apply_chat_template: true}
`, n, n)), 0o644)
	return dir, cfg
}

// evaluate --shard: 3 shards merged give the unsharded results.json, summary.csv and
// samples.csv byte for byte; a finished shard's rerun does nothing; a config that
// trains, and --shard 5/4, are usage errors.
func TestEvaluateShards(t *testing.T) {
	dir, cfg := hfEvalSetup(t, 7)
	tmp := t.TempDir()
	base := []string{"evaluate", cfg, "training=null", "--model", dir}
	single := filepath.Join(tmp, "single")
	if got := run(append(base, "--out", single)); got != exitOK {
		t.Fatalf("evaluate: exit %d", got)
	}
	var shards []string
	for i := range 3 {
		o := filepath.Join(tmp, fmt.Sprintf("shard-%d", i))
		for range 2 {
			if got := run(append(base, "--out", o, "--shard", fmt.Sprintf("%d/3", i))); got != exitOK {
				t.Fatalf("shard %d/3: exit %d", i, got)
			}
		}
		shards = append(shards, o)
	}
	merged := filepath.Join(tmp, "merged")
	for range 2 {
		if got := run(append([]string{"merge", "--out", merged}, shards...)); got != exitOK {
			t.Fatalf("merge: exit %d", got)
		}
	}
	for _, f := range []string{"results.json", "summary.csv", "samples.csv"} {
		a, err1 := os.ReadFile(filepath.Join(single, f))
		b, err2 := os.ReadFile(filepath.Join(merged, f))
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Errorf("merged %s differs from the single run's (%v %v)", f, err1, err2)
		}
	}
	if got := run(append([]string{"merge", "--out", filepath.Join(tmp, "m2")}, shards[:2]...)); got != exitError {
		t.Errorf("merge of 2 of 3 shards: exit %d", got)
	}
	trains := filepath.Join(refdata.RepoRoot(), "configs", "attentionspan", "train-flip-flop.yaml")
	if got := run([]string{"evaluate", trains, "--out", filepath.Join(tmp, "x"), "--shard", "0/2"}); got != exitUsage {
		t.Errorf("--shard with a training section: exit %d", got)
	}
	if got := run(append(base, "--out", filepath.Join(tmp, "x"), "--shard", "5/4")); got != exitUsage {
		t.Errorf("--shard 5/4: exit %d", got)
	}
	if _, err := os.Stat(filepath.Join(tmp, "x")); !os.IsNotExist(err) {
		t.Errorf("a refused evaluate left its folder")
	}
}

// Acceptance of sharded runs: an evaluate shard killed (SIGKILL, a real process) after
// a few batches keeps them in its work folder; its rerun evaluates only the missing
// batches (it says how many), leaves no temporary file or work folder, and the merged
// shards give the unsharded results byte for byte.
func TestEvaluateShardKilledMidway(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process; skipped with -short")
	}
	dir, cfg := hfEvalSetup(t, 160)
	tmp := t.TempDir()
	base := []string{"evaluate", cfg, "training=null", "--model", dir, "evaluation.batch_size=1"}
	single, s0, s1 := filepath.Join(tmp, "single"), filepath.Join(tmp, "s0"), filepath.Join(tmp, "s1")
	if got := run(append(base, "--out", single)); got != exitOK {
		t.Fatalf("evaluate: exit %d", got)
	}
	if got := run(append(base, "--out", s1, "--shard", "1/2")); got != exitOK {
		t.Fatalf("shard 1/2: exit %d", got)
	}
	argv := append(slices.Clone(base), "--out", s0, "--shard", "0/2")
	work := filepath.Join(s0, shard.WorkDir)
	cmd := startStoppingChild(t, argv, work, 3)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if done, err := shard.ReadProgress(work); err == nil && len(done) >= 3 {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if _, err := os.Stat(filepath.Join(s0, evaluate.ShardManifestFile)); err == nil {
		t.Fatal("the shard finished although it stopped itself mid-way to be killed")
	}
	done, err := shard.ReadProgress(work)
	if err != nil || len(done) == 0 {
		t.Fatalf("the killed shard left no progress in %s (%v)", work, err)
	}
	rerun := exec.Command(os.Args[0], "-test.run=^TestDeriveChild$")
	rerun.Env = append(os.Environ(), deriveChildEnv+"="+strings.Join(argv, "\x1f"))
	out, err := rerun.CombinedOutput()
	if err != nil {
		t.Fatalf("rerun: %v\n%s", err, out)
	}
	final, err := evaluate.ReadShardManifest(s0)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("shard 0/2: %d batches evaluated, %d kept from an earlier run", len(final.Assigned)-len(done), len(done))
	if !strings.Contains(string(out), want) {
		t.Errorf("the rerun does not say %q:\n%s", want, out)
	}
	filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err == nil && (strings.Contains(d.Name(), ".tmp-") || d.Name() == shard.WorkDir) {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
	merged := filepath.Join(tmp, "merged")
	if got := run([]string{"merge", "--out", merged, s0, s1}); got != exitOK {
		t.Fatalf("merge: exit %d", got)
	}
	for _, f := range []string{"results.json", "summary.csv", "samples.csv"} {
		a, err1 := os.ReadFile(filepath.Join(single, f))
		b, err2 := os.ReadFile(filepath.Join(merged, f))
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Errorf("merged %s differs from the single run's (%v %v)", f, err1, err2)
		}
	}
}
