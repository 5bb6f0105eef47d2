package compare

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/store"
)

// fixture writes synthetic human and machine run folders: sources are source files
// of nLines lines; each human session and machine try gets derived outputs
// produced by gen (pass name → array for the item).
type item struct {
	id, source, user, task string
	try                    int
}

// sourceText returns a text of n tokens "tK " on lines of 5 tokens, and its tokens.
func sourceText(n int) (string, []string, [][2]int) {
	var b strings.Builder
	toks := make([]string, n)
	offs := make([][2]int, n)
	for i := range n {
		t := fmt.Sprintf("t%d", i%10)
		if i%5 == 4 {
			t += "\n"
		} else {
			t += " "
		}
		offs[i] = [2]int{b.Len(), b.Len() + len(t)}
		b.WriteString(t)
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, " ", "Ġ"), "\n", "Ċ")
	}
	return b.String(), toks, offs
}

func writeRun(t testing.TB, dir string, items []item, nTok int, arrays func(it item) map[string]*Array) {
	t.Helper()
	r, err := store.Create(dir, store.Meta{Kind: "import"})
	if err != nil {
		t.Fatal(err)
	}
	text, toks, offs := sourceText(nTok)
	for _, it := range items {
		s := &store.Sample{ID: it.id, Text: text, PromptText: text, Tokens: toks, Offsets: offs, PromptLen: len(toks), Source: "tasks/" + it.source, Try: it.try}
		if it.user != "" {
			s.Extra = map[string]any{"user_name": it.user, "task_number": it.task}
		}
		for pass, a := range arrays(it) {
			p := r.DerivedPath(pass, it.id)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := checkpoint.WriteNpyFile(p, a.Shape, a.Data); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.WriteSample(s); err != nil {
			t.Fatal(err)
		}
	}
}

func randomMatrix(rng *rand.Rand, n int) *Array {
	a := &Array{Shape: []int{n, n}, Data: make([]float64, n*n)}
	for i := range n {
		for j := 0; j <= i; j++ {
			a.Data[i*n+j] = rng.Float64()
		}
	}
	return a
}

func randomVector(rng *rand.Rand, n int) *Array {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.Float64()
	}
	return Vector(v)
}

func writeArray(path string, a *Array) error { return checkpoint.WriteNpyFile(path, a.Shape, a.Data) }
