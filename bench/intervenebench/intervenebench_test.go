package intervenebench

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
)

// TestRunTables: the tables list the three capture variants and one row per
// timed head; a sweep over some heads says it is extrapolated, over all
// heads that it is measured.
func TestRunTables(t *testing.T) {
	dir := refdata.Path(t, "models", "tiny-gpt2") // 3 layers × 4 heads
	for _, c := range []struct {
		heads, rows int
		label       string
	}{{2, 2, "EXTRAPOLATED from 2 of 12 heads"}, {0, 12, "(clean + 12 heads), measured"}} {
		var b bytes.Buffer
		o := Options{Model: dir, CaptureTokens: 16, Repeats: 1, Prompts: 2, Tokens: 8, Heads: c.heads, Seed: 1}
		if err := Run(context.Background(), &b, o); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for _, want := range []string{"no intervention", "hook_z zero, 1 head of layer 0", "hook_pattern scale, all heads × 3 layers", c.label} {
			if !strings.Contains(out, want) {
				t.Errorf("heads %d: output lacks %q:\n%s", c.heads, want, out)
			}
		}
		if n := strings.Count(out, "\nL"); n != c.rows {
			t.Errorf("heads %d: %d head rows, want %d:\n%s", c.heads, n, c.rows, out)
		}
	}
	if got := sweepHeads(12, 12, 12); len(got) != 12 || got[5].Layer != 5 || got[5].Head != 0 {
		t.Errorf("12 of 144 heads: %v, want one per layer", got)
	}
}
