package jobs

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/capture"
	"github.com/attnscope/attnscope/configs"
	"github.com/attnscope/attnscope/derive"
	"github.com/attnscope/attnscope/internal/shard"
	"github.com/attnscope/attnscope/store"
)

// modelDir is the bundled default model (a 2-layer addition transformer).
var modelDir = filepath.Join("..", "models", "default")

// addInputs are n addition prompts the default model reads.
func addInputs(n int) []capture.Input {
	var in []capture.Input
	for i := range n {
		in = append(in, capture.Input{ID: fmt.Sprintf("s%02d", i), Text: fmt.Sprintf("%d+%d=", 7*i+3, 13*i+5)})
	}
	return in
}

func demoDeriveYAML(testing.TB) []byte { return configs.DemoDerive() }

func deriveConfig(t testing.TB) *derive.Config {
	t.Helper()
	cfg, err := derive.ParseConfig(configs.DemoDeriveName, configs.DemoDerive(), derive.DefaultRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func captureAndDerive(t *testing.T, dir string, in []capture.Input, sh shard.Shard, cfg *derive.Config) {
	t.Helper()
	ctx := context.Background()
	if _, err := capture.Run(ctx, dir, in, capture.Options{ModelDir: modelDir, Shard: sh}); err != nil {
		t.Fatal(err)
	}
	run, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := derive.Derive(ctx, run, cfg, derive.Options{Workers: 2, Shard: sh}); err != nil {
		t.Fatal(err)
	}
}

// The shards of a capture + derive, merged, give the single-machine run: every tensor,
// derived output and metrics table byte-identical; sample.json identical but for its
// timing; run.json identical but for its provenance (command lines, times, graphs
// compiled). A second merge changes nothing.
func TestMergeEqualsSingleRun(t *testing.T) {
	if testing.Short() {
		t.Skip("captures 5 runs of the default model")
	}
	tmp := t.TempDir()
	in := addInputs(10)
	cfg := deriveConfig(t)
	full := filepath.Join(tmp, "full")
	captureAndDerive(t, full, in, shard.All, cfg)
	var shards []string
	for i := range 4 {
		d := filepath.Join(tmp, fmt.Sprintf("shard%d", i))
		captureAndDerive(t, d, in, shard.Shard{Index: i, Count: 4}, cfg)
		shards = append(shards, d)
	}
	merged := filepath.Join(tmp, "merged")
	sum, err := Merge(context.Background(), merged, shards)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Samples != 10 || sum.SamplesCopied != 10 || sum.Manifests != 8 || sum.MetricRows == 0 {
		t.Errorf("first merge: %+v", sum)
	}
	if err := SameRun(full, merged); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, merged)
	sum, err = Merge(context.Background(), merged, shards)
	if err != nil {
		t.Fatal(err)
	}
	if sum.SamplesCopied != 0 || sum.DerivedCopied != 0 {
		t.Errorf("second merge copied: %+v", sum)
	}
	if after := snapshot(t, merged); !equalMaps(before, after) {
		t.Error("a second merge changed the merged run")
	}
	// SameRun sees a changed value: flip the last byte of one attention file.
	p := filepath.Join(merged, store.SamplesDir, "s03", store.AttentionFile)
	b, _ := os.ReadFile(p)
	b[len(b)-1] ^= 1
	os.WriteFile(p, b, 0o644)
	if err := SameRun(full, merged); err == nil || !strings.Contains(err.Error(), "samples/s03/attention.safetensors differs") {
		t.Errorf("SameRun after a flipped byte: %v", err)
	}
}

// A failed shard (here: its last sample never finished, as when the job was killed)
// makes merge fail without writing anything; a rerun of the shard captures only the
// missing sample, after which the merge succeeds.
func TestFailedShardRerunAndMerge(t *testing.T) {
	if testing.Short() {
		t.Skip("captures runs of the default model")
	}
	tmp := t.TempDir()
	in := addInputs(8)
	ctx := context.Background()
	var shards []string
	for i := range 2 {
		d := filepath.Join(tmp, fmt.Sprintf("shard%d", i))
		if _, err := capture.Run(ctx, d, in, capture.Options{ModelDir: modelDir, Shard: shard.Shard{Index: i, Count: 2}}); err != nil {
			t.Fatal(err)
		}
		shards = append(shards, d)
	}
	// Simulate a kill before the last sample of shard 1 was committed: its sample.json
	// (the commit mark) is gone, and the manifest does not list it.
	r1, _ := store.Open(shards[1])
	ms, _ := r1.ShardManifests()
	if len(ms) != 1 || len(ms[0].Assigned) < 2 {
		t.Fatalf("shard 1's manifests: %+v", ms)
	}
	lost := ms[0].Assigned[len(ms[0].Assigned)-1]
	os.Remove(filepath.Join(r1.SampleDir(lost), store.SampleFile))
	m := ms[0]
	m.Finished = m.Finished[:len(m.Finished)-1]
	if err := r1.WriteShardManifest(m); err != nil {
		t.Fatal(err)
	}
	merged := filepath.Join(tmp, "merged")
	_, err := Merge(ctx, merged, shards)
	if err == nil || !strings.Contains(err.Error(), "capture shard 1/2 has not finished samples "+lost) {
		t.Fatalf("merge of an unfinished shard: %v", err)
	}
	if _, err := os.Stat(merged); !os.IsNotExist(err) {
		t.Fatalf("a failed merge left %s behind", merged)
	}
	// Merging only one of two shards is refused too.
	if _, err := Merge(ctx, merged, shards[:1]); err == nil || !strings.Contains(err.Error(), "1 of the 2 shards") {
		t.Fatalf("merge of 1 of 2 shards: %v", err)
	}
	sum, err := capture.Run(ctx, shards[1], in, capture.Options{ModelDir: modelDir, Shard: shard.Shard{Index: 1, Count: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Captured != 1 || sum.Skipped != len(m.Assigned)-1 {
		t.Errorf("rerun of shard 1: captured %d, skipped %d; want 1 and %d", sum.Captured, sum.Skipped, len(m.Assigned)-1)
	}
	if _, err := Merge(ctx, merged, shards); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(tmp, "full")
	if _, err := capture.Run(ctx, full, in, capture.Options{ModelDir: modelDir}); err != nil {
		t.Fatal(err)
	}
	if err := SameRun(full, merged); err != nil {
		t.Fatal(err)
	}
}

func TestMergeRefusesOtherRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("captures runs of the default model")
	}
	tmp := t.TempDir()
	ctx := context.Background()
	a, b := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	if _, err := capture.Run(ctx, a, addInputs(2), capture.Options{ModelDir: modelDir}); err != nil {
		t.Fatal(err)
	}
	if _, err := capture.Run(ctx, b, addInputs(2), capture.Options{ModelDir: modelDir, FP16: true}); err != nil {
		t.Fatal(err)
	}
	_, err := Merge(ctx, filepath.Join(tmp, "m"), []string{a, b})
	if err == nil || !strings.Contains(err.Error(), "not shards of one run: dtypes float32 and float16") {
		t.Fatalf("merge of float32 and float16 runs: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "m")); !os.IsNotExist(err) {
		t.Fatal("a refused merge created its output folder")
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
