package capture

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tokenizer"
)

// storedHooks are the hooks a capture with --hidden and --qkv stores.
var storedHooks = []string{"hook_resid_pre", "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_pattern", "hook_resid_post"}

// TestPatchFromStoredRun: patching every activation a clean run stored on disk
// (attention, residual stream, queries, keys and values of every layer) into
// the corrupted prompt reproduces the clean logits bitwise, as patching from
// the clean pass in memory does (tiny-llama: grouped-query keys and values,
// which the store repeats per query head).
func TestPatchFromStoredRun(t *testing.T) {
	clean, corrupted := "x = add(a, b)", "x = sub(a, b)"
	for _, name := range []string{"tiny-gpt2", "tiny-llama"} {
		t.Run(name, func(t *testing.T) {
			dir := refdata.Path(t, "models", name)
			cleanRun := filepath.Join(t.TempDir(), "clean")
			if _, err := Run(context.Background(), cleanRun, []Input{{ID: "a", Text: clean}}, Options{ModelDir: dir, Hidden: true, QKV: true}); err != nil {
				t.Fatal(err)
			}
			tk, err := tokenizer.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			ce, _ := tk.Encode(clean, true)
			xe, _ := tk.Encode(corrupted, true)
			if len(ce.IDs) != len(xe.IDs) {
				t.Fatalf("the texts tokenize to %d and %d tokens", len(ce.IDs), len(xe.IDs))
			}
			m, err := model.Load(dir, model.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			acts, n, err := RunSource(cleanRun, "", m.Config(), 0)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(ce.IDs) {
				t.Fatalf("the stored sample has %d tokens, want %d", n, len(ce.IDs))
			}
			ctx := context.Background()
			want, err := m.Forward(ctx, model.Input{IDs: ce.IDs}, nil, model.ForwardOptions{Logits: model.LogitsAll})
			if err != nil {
				t.Fatal(err)
			}
			var iv model.Intervention
			for _, h := range storedHooks {
				iv.Edits = append(iv.Edits, model.Edit{Hook: h, Op: model.OpPatch, Source: acts})
			}
			for _, c := range []struct {
				what string
				iv   *model.Intervention
			}{{"unpatched", nil}, {"every stored hook patched", &iv}} {
				got, err := m.Forward(ctx, model.Input{IDs: xe.IDs}, nil, model.ForwardOptions{Logits: model.LogitsAll, Intervention: c.iv})
				if err != nil {
					t.Fatal(err)
				}
				same := true
				for i := range got.Logits {
					same = same && math.Float32bits(got.Logits[i]) == math.Float32bits(want.Logits[i])
				}
				if c.iv == nil && same {
					t.Fatal("the corrupted prompt gives the clean logits: the test would prove nothing")
				}
				if c.iv != nil && !same {
					t.Errorf("%s: the logits differ from the clean prompt's (bitwise)", c.what)
				}
			}
		})
	}
}

// TestCapturePatchSourceRun: capture --intervene with source_run patches from
// the stored clean run (the patched run stores the clean final hidden states
// bitwise), and a source of another length, a hook the run does not store, a
// missing sample and a run of a model of another shape are refused with the
// file, line and field before anything is written.
func TestCapturePatchSourceRun(t *testing.T) {
	dir := refdata.Path(t, "models", "tiny-gpt2")
	tmp := t.TempDir()
	ctx := context.Background()
	cleanRun := filepath.Join(tmp, "clean")
	if _, err := Run(ctx, cleanRun, []Input{{ID: "a", Text: "x = add(a, b)"}}, Options{ModelDir: dir, Hidden: true}); err != nil {
		t.Fatal(err)
	}
	ivPath := filepath.Join(tmp, "patch.yaml")
	capture := func(out, yaml string) error {
		if err := os.WriteFile(ivPath, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		iv, err := model.ReadIntervention(ivPath)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Run(ctx, out, []Input{{ID: "a", Text: "x = sub(a, b)"}}, Options{ModelDir: dir, Hidden: true, Intervention: iv})
		return err
	}
	patched := filepath.Join(tmp, "patched")
	if err := capture(patched, "edits:\n  - hook: hook_resid_post\n    op: patch\n    source_run: "+cleanRun+"\n    source_sample: a\n"); err != nil {
		t.Fatal(err)
	}
	rc, _ := store.Open(cleanRun)
	rp, err := store.Open(patched)
	if err != nil {
		t.Fatal(err)
	}
	hc, _ := rc.Hidden("a", "final_norm")
	hp, _ := rp.Hidden("a", "final_norm")
	if d := maxDiff(t, hp.Float32(), hc.Float32()); d != 0 {
		t.Errorf("patched final_norm differs from the clean run's by %g", d)
	}
	if rp.Meta.Intervention == nil || !strings.Contains(rp.Meta.Intervention.YAML, "source_run: "+cleanRun) {
		t.Errorf("run.json intervention %+v", rp.Meta.Intervention)
	}

	longRun, otherModel := filepath.Join(tmp, "long"), filepath.Join(tmp, "other")
	if _, err := Run(ctx, longRun, []Input{{ID: "a", Text: "x = add(a, b, c)"}}, Options{ModelDir: dir}); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctx, otherModel, []Input{{ID: "a", Text: "x = add(a, b)"}}, Options{ModelDir: refdata.Path(t, "models", "code-gpt2-mini"), Hidden: true}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ yaml, want string }{
		{"edits:\n  - hook: attn.hook_pattern\n    op: patch\n    source_run: " + longRun + "\n",
			":4: edits[0].source_run: the source sample in " + longRun + " has"},
		{"edits:\n  - hook: attn.hook_z\n    op: patch\n    source_run: " + cleanRun + "\n",
			":2: edits[0].hook: the run " + cleanRun + " stores no blocks.0.attn.hook_z"},
		{"edits:\n  - hook: attn.hook_pattern\n    op: patch\n    source_run: " + cleanRun + "\n    source_sample: zz\n",
			":5: edits[0].source_sample: run " + cleanRun + " has no finished sample \"zz\" (its samples: a)"},
		{"edits:\n  - hook: attn.hook_pattern\n    op: patch\n    source_run: " + otherModel + "\n",
			":4: edits[0].source_run: " + filepath.Join(otherModel, "samples", "a", "hidden.safetensors") + " holds embed of shape"},
		{"edits:\n  - hook: attn.hook_pattern\n    op: patch\n    source_run: " + filepath.Join(tmp, "nowhere") + "\n",
			":4: edits[0].source_run: "},
	} {
		out := filepath.Join(tmp, "bad")
		err := capture(out, c.yaml)
		if err == nil || !strings.Contains(err.Error(), ivPath+c.want) {
			t.Errorf("error %v, want %q", err, ivPath+c.want)
		}
		if _, serr := os.Stat(out); !os.IsNotExist(serr) {
			t.Errorf("a refused capture left %s behind", out)
		}
		os.RemoveAll(out)
	}
}
