package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/attnscope/attnscope/train"
)

// trainOutput decides where `attnscope train` saves the model and refuses a silent
// overwrite: --out (when given) replaces training.checkpoint_filepath; a config that
// lies inside a git repository (such as the shipped configs/attentionspan/*.yaml) may not
// write into an existing folder of that repository (models/default: the bundled model)
// unless --out names it; and an existing checkpoint is never replaced without --force.
func trainOutput(cfgPath, out string, force bool, t *train.TrainCfg) error {
	if out != "" {
		t.CheckpointFilepath, t.SaveCheckpoint = out, true
	}
	if !t.SaveCheckpoint {
		return nil
	}
	dest := t.CheckpointFilepath
	if out == "" {
		if repo := repoRoot(cfgPath); repo != "" && within(repo, dest) && nonEmptyDir(dest) {
			return usageErrorf("%s: training.checkpoint_filepath %s is a folder of the repository %s (the config's own output, e.g. the bundled model); "+
				"give the output folder with --out DIR (add --force to replace a checkpoint there)", cfgPath, dest, repo)
		}
	}
	for _, f := range []string{"model.safetensors", "config.json"} {
		if _, err := os.Stat(filepath.Join(dest, f)); err == nil && !force {
			return usageErrorf("%s already holds a checkpoint (%s): choose another --out folder, or pass --force to replace it", dest, f)
		}
	}
	return nil
}

// usageErrorf is a usage error of attnscope train (exit status 2).
func usageErrorf(format string, a ...any) error {
	return &usageError{cmd: "attnscope train", err: fmt.Errorf(format, a...)}
}

// repoRoot is the folder holding .git above path (a file or folder), or "".
func repoRoot(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			return ""
		}
	}
}

// within reports whether path lies inside (or is) the folder dir.
func within(dir, path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(dir, abs)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// nonEmptyDir reports whether dir exists and holds something.
func nonEmptyDir(dir string) bool {
	entries, err := os.ReadDir(dir)
	return err == nil && len(entries) > 0
}
