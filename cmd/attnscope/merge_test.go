package main

import (
	"os"
	"path/filepath"
	"testing"
)

// --shard out of range is a usage error of every sharded command, before anything
// is written.
func TestShardFlagErrors(t *testing.T) {
	tmp := t.TempDir()
	out := filepath.Join(tmp, "run")
	for _, args := range [][]string{
		{"capture", "--model", filepath.Join("..", "..", "models", "default"), "--text", "1+2=", "--shard", "5/4", "--out", out},
		{"capture", "--model", filepath.Join("..", "..", "models", "default"), "--text", "1+2=", "--shard", "1", "--out", out},
		{"derive", "--config", "x.yaml", "--shard", "4/4", out},
		{"compare", "--config", "x.yaml", "--shard", "5/4"},
	} {
		if got := run(args); got != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, got, exitUsage)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused --shard left %s", out)
	}
	// The message is one sentence naming the flag and the value, without pflag's prefix.
	for _, cmd := range [][]string{{"diagnose", "perturb"}, {"diagnose", "confusion"}, {"diagnose", "jacobian"}, {"diagnose", "layernorm"}, {"evaluate", "x.yaml"}, {"compare"}} {
		code, _, stderr := runCapture(t, append(cmd, "--shard", "5/4", "--out", out)...)
		want := `--shard "5/4": the shard index must be between 0 and 3 (shards are counted from 0)`
		if code != exitUsage || stderr != want {
			t.Errorf("%v --shard 5/4: exit %d, %q; want %d, %q", cmd, code, stderr, exitUsage, want)
		}
	}
	if got := run([]string{"merge", filepath.Join(tmp, "nope")}); got != exitUsage {
		t.Errorf("merge without --out: exit %d", got)
	}
	if got := run([]string{"merge", "--out", out, filepath.Join(tmp, "nope")}); got != exitError {
		t.Errorf("merge of a missing folder: exit %d", got)
	}
}
