package diagnose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/internal/shard"
	"github.com/attnscope/attnscope/store"
)

// A sharded perturb and confusion run interrupted after two items (its context
// cancelled) keeps them in its work folder and publishes nothing; the rerun computes
// only the other items (it says so, and the kept items' files are not rewritten), and
// the finished shard (0/1: every item), summarized as merge does, holds what the
// unsharded run writes.
func TestShardResumesAfterInterruption(t *testing.T) {
	dir := refdata.Path(t, "models", "tiny-bert")
	tmp := t.TempDir()
	text := filepath.Join(tmp, "in.txt")
	glue := filepath.Join(tmp, "train.tsv")
	var lines, rows strings.Builder
	rows.WriteString("index\tsentence1\tsentence2\tgold_label\n")
	for i := range 10 {
		fmt.Fprintf(&lines, "x = %d + y\n", i)
		fmt.Fprintf(&rows, "%d\ta b %d\tc\t%s\n", i, i, []string{"neutral", "entailment", "contradiction"}[i%3])
	}
	os.WriteFile(text, []byte(lines.String()), 0o644)
	os.WriteFile(glue, []byte(rows.String()), 0o644)
	for _, d := range []struct {
		name, pass string
		opts       Options
		run        func(context.Context, *Setup, func(int, int)) (string, error)
	}{
		{"perturb", "perturb", Options{Text: text, Batches: 5, BatchSize: 2, Train: true},
			func(ctx context.Context, s *Setup, p func(int, int)) (string, error) {
				return RunPerturb(ctx, s, 0.01, p)
			}},
		{"confusion", ConfusionGradients, Options{GLUE: glue, Task: "MNLI", InitHead: true, Batches: 5, BatchSize: 2, Train: true},
			func(ctx context.Context, s *Setup, p func(int, int)) (string, error) {
				return RunConfusion(ctx, s, 2, p)
			}},
	} {
		t.Run(d.name, func(t *testing.T) {
			o := d.opts
			o.ModelDir, o.MaxLen, o.Seed = dir, 8, 7
			setup := func(out string, sh shard.Shard, log *bytes.Buffer) *Setup {
				o := o
				o.Out, o.Shard = out, sh
				if log != nil {
					o.Log = log
				}
				s, err := Prepare(o, d.name == "confusion")
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			single := filepath.Join(tmp, d.name+"-single")
			if _, err := d.run(context.Background(), setup(single, shard.All, nil), nil); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(tmp, d.name+"-shard")
			ctx, cancel := context.WithCancel(context.Background())
			_, err := d.run(ctx, setup(out, shard.Shard{Index: 0, Count: 1}, nil), func(done, _ int) {
				if done == 2 {
					cancel()
				}
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted run: %v", err)
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatal("the interrupted shard published its run folder")
			}
			work := workDir(out)
			kept, _ := filepath.Glob(filepath.Join(runDir(out), store.DerivedDir, d.pass, "*.npy"))
			if len(kept) != 2 {
				t.Fatalf("the interrupted shard kept %d items, want 2", len(kept))
			}
			// The same shard with other items (fewer batches): its work is refused and kept.
			fewer := setup(out, shard.Shard{Index: 0, Count: 1}, nil)
			fewer.opts.Batches = 4
			if _, err := d.run(context.Background(), fewer, nil); err == nil || !strings.Contains(err.Error(), work+" holds the unfinished work of another diagnose-"+d.name) {
				t.Fatalf("a rerun with other items: %v; want the work refused", err)
			}
			before := map[string]os.FileInfo{}
			for _, k := range kept {
				before[filepath.Base(k)], _ = os.Stat(k)
			}
			var log bytes.Buffer
			if _, err := d.run(context.Background(), setup(out, shard.Shard{Index: 0, Count: 1}, &log), nil); err != nil {
				t.Fatal(err)
			}
			if want := "2 of 5 finished, computing 3"; !strings.Contains(log.String(), want) {
				t.Errorf("the rerun says %q, not %q", log.String(), want)
			}
			for name, fi := range before {
				now, err := os.Stat(filepath.Join(out, store.DerivedDir, d.pass, name))
				if err != nil || !os.SameFile(fi, now) {
					t.Errorf("%s, kept from the interrupted run, was rewritten (%v)", name, err)
				}
			}
			if _, err := os.Stat(work); !os.IsNotExist(err) {
				t.Errorf("the work folder is left: %v", err)
			}
			r, err := store.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := Summarize(r); err != nil {
				t.Fatal(err)
			}
			sameOutputs(t, single, out)
		})
	}
}

// sameOutputs fails unless a and b hold the same files, byte for byte, run.json and
// the shard manifests aside.
func sameOutputs(t *testing.T, a, b string) {
	t.Helper()
	list := func(dir string) map[string][]byte {
		out := map[string][]byte{}
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			rel, _ := filepath.Rel(dir, p)
			if err != nil || d.IsDir() || rel == store.RunFile || strings.HasPrefix(rel, store.ShardsDir+string(filepath.Separator)) {
				return err
			}
			out[rel], err = os.ReadFile(p)
			return err
		})
		return out
	}
	x, y := list(a), list(b)
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range x {
			if !yield(k) {
				return
			}
		}
	})
	if len(x) != len(y) || len(x) == 0 {
		t.Fatalf("%s holds %d files, %s %d", a, len(x), b, len(y))
	}
	for _, n := range names {
		if !bytes.Equal(x[n], y[n]) {
			t.Errorf("%s differs between %s and %s", n, a, b)
		}
	}
}
