package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/attnscope/attnscope/train"
)

// TestTrainRefusesSilentOverwrite: `attnscope train` with a config inside a repository
// does not write into the repository's model folder, and never replaces a checkpoint
// without --force; both refusals exit 2 before training and leave the files alone.
func TestTrainRefusesSilentOverwrite(t *testing.T) {
	repo := t.TempDir()
	if err := os.Mkdir(filepath.Join(repo, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfgText, err := os.ReadFile(filepath.Join("..", "..", "configs", "attentionspan", "default-addition.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, filepath.Join(repo, "exp.yaml"), string(cfgText))
	model := filepath.Join(repo, "models", "default")
	if err := os.MkdirAll(model, 0o755); err != nil {
		t.Fatal(err)
	}
	weights := writeFile(t, filepath.Join(model, "model.safetensors"), "bundled")
	t.Chdir(repo) // checkpoint_filepath models/default is relative to the working folder

	if got := run([]string{"train", cfg, "training.steps=1"}); got != exitUsage {
		t.Errorf("train into the repository's models/default exited %d, want %d", got, exitUsage)
	}
	if got := run([]string{"train", cfg, "--out", model, "training.steps=1"}); got != exitUsage {
		t.Errorf("train --out over an existing checkpoint exited %d, want %d", got, exitUsage)
	}
	if b, _ := os.ReadFile(weights); string(b) != "bundled" {
		t.Fatalf("the bundled model was overwritten: %q", b)
	}

	// Allowed: a fresh --out; an existing checkpoint with --force; a config outside a repository.
	tc := &train.TrainCfg{SaveCheckpoint: true, CheckpointFilepath: "models/default"}
	if err := trainOutput(cfg, filepath.Join(repo, "fresh"), false, tc); err != nil || tc.CheckpointFilepath != filepath.Join(repo, "fresh") {
		t.Errorf("fresh --out: %v (output %s)", err, tc.CheckpointFilepath)
	}
	if err := trainOutput(cfg, model, true, tc); err != nil {
		t.Errorf("--out over a checkpoint with --force: %v", err)
	}
	outside := writeFile(t, filepath.Join(t.TempDir(), "exp.yaml"), string(cfgText))
	tc = &train.TrainCfg{SaveCheckpoint: true, CheckpointFilepath: filepath.Join(repo, "elsewhere")}
	if err := trainOutput(outside, "", false, tc); err != nil {
		t.Errorf("config outside the repository: %v", err)
	}
}
