package report

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/viz"
)

// Generated token p was predicted by query p−1: row t of the alignment is query
// PromptLen−1+t over the prompt columns.
func TestGenerationAlignment(t *testing.T) {
	ctx := context.Background()
	const P = 8
	run := newMemRun(testCode, 2, 3, 0, P)
	s, _ := run.Sample("s0")
	N := len(s.Tokens)
	for _, head := range []int{1, MeanHeads} {
		m, src, trg, err := GenerationAlignment(ctx, run, "s0", 1, head)
		if err != nil {
			t.Fatal(err)
		}
		if m.Rows != N-P || m.Cols != P || len(src) != P || len(trg) != N-P || trg[0] != s.Tokens[P] || src[P-1] != s.Tokens[P-1] {
			t.Fatalf("head %d: %d×%d matrix, %d source and %d target tokens (trg[0] %q), want %d×%d", head, m.Rows, m.Cols, len(src), len(trg), trg[0], N-P, P)
		}
		full, _ := layerMatrix(run.att["s0"][1], head)
		for r := range m.Rows {
			for c := range m.Cols {
				if got, want := m.At(r, c), full.At(P-1+r, c); got != want {
					t.Fatalf("head %d: alignment[%d,%d] = %v, want query %d key %d = %v", head, r, c, got, P-1+r, c, want)
				}
			}
		}
	}
	if _, err := AlignmentFigure(ctx, run, "s0", 0, MeanHeads); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := GenerationAlignment(ctx, newMemRun(testCode, 1, 1, 0, 0), "s0", 0, 0); err == nil {
		t.Error("a forward pass (prompt length 0) aligned without error")
	}
	if _, _, _, err := GenerationAlignment(ctx, run, "s0", 2, 0); err == nil {
		t.Error("layer out of range: no error")
	}
}

// The §5.4 aggregate statistics on hand-checked rows: a one-hot row has entropy
// ≈ −(n−1)·1e−10·ln 1e−10 and maximum 1 + 1e−10; a uniform row over n has ln n.
func TestAlignmentRowStats(t *testing.T) {
	m := viz.Matrix{Rows: 2, Cols: 4, Data: []float64{0, 1, 0, 0, 0.25, 0.25, 0.25, 0.25}}
	e, mx, err := AlignmentRowStats([]viz.Matrix{m})
	if err != nil {
		t.Fatal(err)
	}
	eps := 1e-10
	want0 := -(1+eps)*math.Log(1+eps) - 3*eps*math.Log(eps)
	want1 := -4 * (0.25 + eps) * math.Log(0.25+eps)
	if len(e) != 2 || math.Abs(e[0]-want0) > 1e-15 || math.Abs(e[1]-want1) > 1e-12 {
		t.Errorf("entropy %v, want [%v %v]", e, want0, want1)
	}
	if mx[0] != 1+eps || mx[1] != 0.25+eps {
		t.Errorf("max %v, want [1+1e-10 0.25+1e-10]", mx)
	}
	if _, _, err := AlignmentRowStats([]viz.Matrix{{Rows: 1, Cols: 2, Data: []float64{-0.5, 1.5}}}); err == nil {
		t.Error("negative weight: no error")
	}
	if _, _, err := AlignmentRowStats(nil); err == nil {
		t.Error("no matrices: no error")
	}
	if _, err := AlignmentEntropyFigure([]viz.Matrix{m}, "t"); err != nil {
		t.Fatal(err)
	}
}

// FuzzReadTokens: any token file either fails with an error naming it or gives tokens;
// a line-per-token file's tokens joined by newlines give back its text.
func FuzzReadTokens(f *testing.F) {
	for _, s := range []string{"def\nf\n(\n", `["def", " f", "\n"]`, "a\r\nb", "", "[", "  [1, 2]", "x\n\n", "\u00a0é\n⏎"} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, s string) {
		p := filepath.Join(dir, "tokens")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		toks, err := ReadTokensFile(p)
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		if len(toks) == 0 {
			t.Errorf("%q: no tokens and no error", s)
		}
		if t0 := strings.TrimSpace(s); !strings.HasPrefix(t0, "[") {
			want := strings.TrimSuffix(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
			if got := strings.Join(toks, "\n"); got != want {
				t.Errorf("%q: tokens %q join to %q", s, toks, got)
			}
		}
	})
}
