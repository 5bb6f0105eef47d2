package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/store"
)

func TestTasksAndTrainCommandErrors(t *testing.T) {
	cfg := filepath.Join("..", "..", "configs", "attentionspan", "default-addition.yaml")
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"tasks", "list"}, exitOK},
		{[]string{"tasks", "sample", "long_addition", "seed=0", "length=[1,3]", "-n", "2"}, exitOK},
		{[]string{"tasks", "sample", "NoSuchGenerator"}, exitError},
		{[]string{"tasks", "sample", "long_addition", "lenght=[1,3]"}, exitError},
		{[]string{"tasks", "sample", "long_addition", "length=[3,1]"}, exitError},
		{[]string{"tasks", "sample", "long_addition", "noequals"}, exitUsage},
		{[]string{"train", cfg, "training.batch_sise=3"}, exitError},
		{[]string{"train", cfg, "training=null"}, exitError},
		{[]string{"train", cfg, "training.steps=abc"}, exitError},
		{[]string{"train", cfg, "+training.batch_size=3"}, exitError},
		{[]string{"train", cfg, "training.train_dataset.generator_parameters.length=[5,1]"}, exitError},
		{[]string{"train", filepath.Join(t.TempDir(), "missing.yaml")}, exitError},
		{[]string{"evaluate", cfg}, exitUsage},
	} {
		if got := run(tc.args); got != tc.want {
			t.Errorf("attnscope %s: exit %d, want %d", strings.Join(tc.args, " "), got, tc.want)
		}
	}
}

// The demo on the bundled model writes a report folder a person can open.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo evaluates 1000 samples and captures attention (about 10 s); skipped with -short")
	}
	out := filepath.Join(t.TempDir(), "demo")
	if got := run([]string{"demo", "--out", out, "--figures", "1"}); got != exitOK {
		t.Fatalf("demo exited %d", got)
	}
	for _, f := range []string{"results.json", "summary.csv", "samples.csv", "README.txt", "index.html", "heads.csv", "run/metrics.csv", "model/model.safetensors",
		"run/run.json", "run/report.html", "figures/dataset1-000-reference.png", "figures/dataset2-000-scores-on-reference.png"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}
	readme, _ := os.ReadFile(filepath.Join(out, "README.txt"))
	if !strings.Contains(string(readme), "dataset1: 500 samples, exact-match accuracy") {
		t.Errorf("README.txt lacks the accuracy line:\n%s", readme)
	}
	// The analyses of configs/demo-derive.yaml ran through derive: each metric pass has
	// rows in the run's metrics table beside the AttentionSpan reference metrics, and
	// report.html shows each pass's output.
	rows, err := store.ReadMetricsCSV(filepath.Join(out, "run", store.MetricsCSV))
	if err != nil {
		t.Fatal(err)
	}
	passRows := map[string]int{}
	for _, r := range rows {
		passRows[r.Pass]++
	}
	for _, p := range []string{"attentionspan_reference", "entropy", "max_weight", "sparsity", "js_units", "js_layers", "head_diversity", "head_collapse", "head_redundancy"} {
		if passRows[p] == 0 {
			t.Errorf("run/metrics.csv has no rows of pass %s (rows per pass: %v)", p, passRows)
		}
	}
	html, err := os.ReadFile(filepath.Join(out, "run", "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"rollout_residual", "entropy", "max_weight", "sparsity", "received", "js_units", "js_layers", "crispiness", "head_diversity", "head_collapse", "head_redundancy"} {
		if _, err := os.Stat(filepath.Join(out, "run", "derived", p, "dataset1-000.npy")); err != nil {
			t.Errorf("derive pass %s: %v", p, err)
		}
		if !strings.Contains(string(html), "Derived: "+p) {
			t.Errorf("run/report.html does not show the derived pass %s", p)
		}
	}
	if !strings.Contains(string(html), "attentionspan_reference") {
		t.Error("run/report.html lacks the attentionspan_reference metrics")
	}
}

// --retrain trains from the config (here shortened by overrides) and reports on the new model.
func TestDemoRetrain(t *testing.T) {
	out := filepath.Join(t.TempDir(), "demo")
	cfg := filepath.Join("..", "..", "configs", "attentionspan", "default-addition.yaml")
	args := []string{"demo", "--retrain", "--config", cfg, "--out", out, "--figures", "1",
		"training.steps=3", "training.train_dataset.num_samples=64", "training.val_dataset.num_samples=8",
		"evaluation.dataset1.num_samples=8", "evaluation.dataset2.num_samples=8"}
	if got := run(args); got != exitOK {
		t.Fatalf("demo --retrain exited %d", got)
	}
	for _, f := range []string{"model/model.safetensors", "model/train_log.jsonl", "results.json", "run/report.html"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	readme, _ := os.ReadFile(filepath.Join(out, "README.txt"))
	if !strings.Contains(string(readme), "dataset1: 8 samples") {
		t.Errorf("README.txt:\n%s", readme)
	}
	if got := run([]string{"demo", "training.steps=3"}); got != exitUsage {
		t.Errorf("overrides without --retrain: exit %d, want %d", got, exitUsage)
	}
}

// evaluate with training=null reads a checkpoint; visualize draws the reference figures.
func TestEvaluateCheckpoint(t *testing.T) {
	out := t.TempDir()
	cfg := filepath.Join("..", "..", "configs", "attentionspan", "default-addition.yaml")
	args := []string{"evaluate", cfg, "training=null", "+model.load_from_checkpoint=true",
		"+model.checkpoint_filepath=" + filepath.Join("..", "..", "models", "default"),
		"evaluation.visualize=true", "evaluation.dataset1.num_samples=20", "evaluation.dataset2.num_samples=20",
		"--figures", "1", "--out", out}
	if got := run(args); got != exitOK {
		t.Fatalf("evaluate exited %d", got)
	}
	for _, f := range []string{"results.json", "summary.csv", "samples.csv",
		"visualizations/default_addition_ID_vs_OOD_dataset1_000-reference.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	summary, _ := os.ReadFile(filepath.Join(out, "summary.csv"))
	if !strings.Contains(string(summary), "dataset1,accuracy,100\n") {
		t.Errorf("the bundled model should get every in-distribution sum right:\n%s", summary)
	}
}

func TestTasksSampleTokenizer(t *testing.T) {
	tok := filepath.Join(refdata.Path(t, "tokenizers", "gpt2-bpe"), "tokenizer.json")
	if got := run([]string{"tasks", "sample", "successor", "--tokenizer", tok, "-n", "1"}); got != exitOK {
		t.Fatalf("exit %d", got)
	}
	if got := run([]string{"tasks", "sample", "successor", "--tokenizer", filepath.Join(t.TempDir(), "none.json")}); got != exitError {
		t.Fatalf("missing tokenizer: exit %d", got)
	}
}
