package capture

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/store"
)

// TestCaptureTruncate: an input longer than the context is cut to fit with Truncate
// "left" (its end kept) or "right" (its start kept); the sample holds the kept text, its
// tokens fill at most the context, and sample.json and run.json record the cut.
func TestCaptureTruncate(t *testing.T) {
	dir := refdata.Path(t, "models", "tiny-gpt2")
	raw, err := checkpoint.ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := model.ParseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := 0; b.Len() < 40*cfg.MaxPositions; i++ {
		b.WriteString("x" + strings.Repeat("y", i%7) + " = " + string(rune('a'+i%26)) + " + 2\n")
	}
	long := b.String()
	for _, side := range []string{"left", "right"} {
		out := filepath.Join(t.TempDir(), "run")
		if _, err := Run(context.Background(), out, []Input{{ID: "long", Text: long}}, Options{ModelDir: dir, Truncate: side}); err != nil {
			t.Fatalf("%s: %v", side, err)
		}
		run, err := store.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		if run.Meta.Truncate != side {
			t.Errorf("%s: run.json truncate %q", side, run.Meta.Truncate)
		}
		s, err := run.Sample("long")
		if err != nil {
			t.Fatal(err)
		}
		tr := s.Truncated
		if tr == nil || tr.Side != side || tr.OriginalChars != len(long) || tr.KeptChars != len(s.Text) || tr.OriginalTokens <= cfg.MaxPositions {
			t.Fatalf("%s: sample.json truncated %+v (text %d chars)", side, tr, len(s.Text))
		}
		if len(s.IDs) > cfg.MaxPositions || len(s.IDs) < cfg.MaxPositions-8 {
			t.Errorf("%s: %d tokens kept, the context holds %d", side, len(s.IDs), cfg.MaxPositions)
		}
		if side == "right" && !strings.HasPrefix(long, s.Text) || side == "left" && !strings.HasSuffix(long, s.Text) {
			t.Errorf("%s: the kept text is not the input's %s end", side, map[string]string{"left": "last", "right": "first"}[side])
		}
	}
	if _, err := Run(context.Background(), filepath.Join(t.TempDir(), "run"), []Input{{ID: "long", Text: long}}, Options{ModelDir: dir, Truncate: "middle"}); err == nil {
		t.Error("truncate side middle accepted")
	}
}
