package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/refdata"
)

// causal returns an [L, H, N, N] attention tensor with rows summing to 1.
func causal(layers, heads, n int) []float32 {
	out := make([]float32, 0, layers*heads*n*n)
	for l := range layers {
		for h := range heads {
			for q := range n {
				row := make([]float32, n)
				var sum float32
				for k := 0; k <= q; k++ {
					row[k] = float32(1 + (l+2*h+3*k)%5)
					sum += row[k]
				}
				for k := range row {
					row[k] /= sum
				}
				out = append(out, row...)
			}
		}
	}
	return out
}

func mustImport(t *testing.T, out string, paths []string, opts ImportOptions) *ImportSummary {
	t.Helper()
	sum, err := Import(context.Background(), out, paths, opts)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func TestImportNpyNpz(t *testing.T) {
	dir := t.TempDir()
	a4 := causal(2, 3, 5)
	a3 := causal(2, 1, 4)
	checkpoint.WriteNpyFile(filepath.Join(dir, "four.npy"), []int{2, 3, 5, 5}, a4)
	f64 := make([]float64, len(a3))
	for i, v := range a3 {
		f64[i] = float64(v)
	}
	checkpoint.WriteNpyFile(filepath.Join(dir, "three.npy"), []int{2, 4, 4}, f64)
	w, _ := checkpoint.CreateNpz(filepath.Join(dir, "pair.npz"), true)
	w.Write("x", []int{2, 3, 5, 5}, a4)
	w.Write("y", []int{2, 4, 4}, a3)
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "run")
	sum := mustImport(t, out, []string{dir}, ImportOptions{Command: []string{"attnscope", "import"}})
	if sum.Imported != 4 {
		t.Fatalf("summary %+v", sum)
	}
	r, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := r.Samples()
	if !reflect.DeepEqual(ids, []string{"four", "pair.x", "pair.y", "three"}) {
		t.Fatalf("samples %v", ids)
	}
	for _, c := range []struct {
		id    string
		shape []int
		want  []float32
	}{{"four", []int{2, 3, 5, 5}, a4}, {"pair.x", []int{2, 3, 5, 5}, a4}, {"pair.y", []int{2, 1, 4, 4}, a3}, {"three", []int{2, 1, 4, 4}, a3}} {
		got, err := r.Attention(c.id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Shape, c.shape) || !reflect.DeepEqual(got.Float32(), c.want) {
			t.Errorf("%s: shape %v, data equal %v", c.id, got.Shape, reflect.DeepEqual(got.Float32(), c.want))
		}
		s, _ := r.Sample(c.id)
		if s.PromptLen != c.shape[2] || !strings.HasPrefix(s.Source, dir) {
			t.Errorf("%s: sample %+v", c.id, s)
		}
	}
	if r.Meta.Kind != "import" || r.Meta.EndTime == nil || len(r.Meta.Inputs) != 1 {
		t.Errorf("meta %+v", r.Meta)
	}
	// A rerun skips everything.
	if sum := mustImport(t, out, []string{dir}, ImportOptions{}); sum.Skipped != 4 || sum.Imported != 0 {
		t.Errorf("rerun %+v", sum)
	}
	// Re-importing attnscope's own attention.safetensors gives the same tensor.
	out2 := filepath.Join(t.TempDir(), "run2")
	mustImport(t, out2, []string{r.AttentionPath("four")}, ImportOptions{FP16: true})
	r2, _ := Open(out2)
	got, err := r2.Attention("attention")
	if err != nil {
		t.Fatal(err)
	}
	for i := range a4 {
		if d := math.Abs(got.Data[i] - float64(a4[i])); d > 1e-3 {
			t.Fatalf("fp16 re-import value %d differs by %g", i, d)
		}
	}
}

// TestImportReference imports transformers' attentions from reference.safetensors
// with the tokens of reference.json.
func TestImportReference(t *testing.T) {
	dir := refdata.Path(t, "models", "code-gpt2-mini")
	out := filepath.Join(t.TempDir(), "run")
	mustImport(t, out, []string{filepath.Join(dir, "reference.safetensors")}, ImportOptions{TokensFrom: filepath.Join(dir, "reference.json")})
	r, _ := Open(out)
	var doc struct {
		Cases []struct {
			Text    string   `json:"text"`
			IDs     []int    `json:"ids"`
			Tokens  []string `json:"tokens"`
			Offsets [][2]int `json:"offsets"`
		} `json:"cases"`
	}
	b, _ := os.ReadFile(filepath.Join(dir, "reference.json"))
	json.Unmarshal(b, &doc)
	ref, _ := checkpoint.OpenSafetensors(filepath.Join(dir, "reference.safetensors"))
	defer ref.Close()
	for i, c := range doc.Cases {
		id := fmt.Sprintf("reference.case%d.attentions", i)
		s, err := r.Sample(id)
		if err != nil {
			t.Fatal(err)
		}
		if s.Text != c.Text || !reflect.DeepEqual(s.IDs, c.IDs) || !reflect.DeepEqual(s.Tokens, c.Tokens) || !reflect.DeepEqual(s.Offsets, c.Offsets) {
			t.Errorf("%s: token information differs from reference.json", id)
		}
		want, _, _ := ref.Float32(fmt.Sprintf("case%d.attentions", i))
		got, err := r.Attention(id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Float32(), want) {
			t.Errorf("%s: attention differs", id)
		}
		g, err := r.Sample(fmt.Sprintf("reference.case%d.generation_attentions", i))
		if err != nil {
			t.Fatalf("generation attention of case %d not imported: %v", i, err)
		}
		gen, _, _ := ref.Int64(fmt.Sprintf("case%d.generated_ids", i))
		if g.PromptLen != len(c.IDs) || len(g.IDs) != len(gen) || g.IDs[len(gen)-1] != int(gen[len(gen)-1]) {
			t.Errorf("case %d generation: prompt %d ids %v, want prompt %d ids %v", i, g.PromptLen, g.IDs, len(c.IDs), gen)
		}
	}
}

func TestImportFollowup(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "att_tensor"), 0o755)
	os.MkdirAll(filepath.Join(dir, "metadata"), 0o755)
	// "def café(): ÿ" split so that one token ends inside "é" (Ã + ©).
	tokens := []string{"def", "Ġcaf", "Ã", "©", "():", "Ġ", "Ã¿"}
	meta := map[string]any{
		"tokens_all": tokens, "tokens_prompt": tokens[:4], "tokens_generated": tokens[4:],
		"text_prompt": "def café", "text_generated": "def café(): ÿ",
		"generation_time_seconds": 1.5, "source_file": "x.py", "mode_name": "Salesforce/codegen-350M-mono",
	}
	b, _ := json.Marshal(meta)
	os.WriteFile(filepath.Join(dir, "metadata", "x.py_0_model.json"), b, 0o644)
	checkpoint.WriteNpyFile(filepath.Join(dir, "att_tensor", "x.py_0_model.npy"), []int{2, 2, 6, 6}, causal(2, 2, 6))
	out := filepath.Join(t.TempDir(), "run")
	mustImport(t, out, []string{dir}, ImportOptions{})
	r, _ := Open(out)
	s, err := r.Sample("x.py_0_model")
	if err != nil {
		t.Fatal(err)
	}
	wantOffsets := [][2]int{{0, 3}, {3, 7}, {7, 8}, {7, 8}, {8, 11}, {11, 12}, {12, 13}}
	if s.Text != "def café(): ÿ" || s.PromptText != "def café" || s.PromptLen != 4 || !reflect.DeepEqual(s.Offsets, wantOffsets) {
		t.Errorf("sample: text %q prompt %q len %d offsets %v", s.Text, s.PromptText, s.PromptLen, s.Offsets)
	}
	if s.Extra["source_file"] != "x.py" || s.Seconds != 1.5 {
		t.Errorf("extra %v, seconds %g", s.Extra, s.Seconds)
	}
}

func TestImportErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, shape []int, data []float32) string {
		p := filepath.Join(dir, name)
		if err := checkpoint.WriteNpyFile(p, shape, data); err != nil {
			t.Fatal(err)
		}
		return p
	}
	nan := causal(2, 1, 3)
	nan[10] = float32(math.NaN())
	neg := causal(2, 1, 3)
	neg[4] = -0.5
	truncated := filepath.Join(dir, "truncated.npy")
	full, _ := os.ReadFile(write("full.npy", []int{2, 1, 3, 3}, causal(2, 1, 3)))
	os.WriteFile(truncated, full[:len(full)-8], 0o644)
	txt := filepath.Join(dir, "a.txt")
	os.WriteFile(txt, []byte("x"), 0o644)
	cases := []struct {
		name  string
		paths []string
		want  string
	}{
		{"rank", []string{write("rank.npy", []int{3, 3}, causal(1, 1, 3))}, "rank 2"},
		{"square", []string{write("square.npy", []int{1, 3, 2}, make([]float32, 6))}, "not square"},
		{"nan", []string{write("nan.npy", []int{2, 3, 3}, nan)}, "NaN, finite attention weights expected"},
		{"negative", []string{write("neg.npy", []int{2, 3, 3}, neg)}, "non-negative"},
		{"truncated", []string{truncated}, "truncated"},
		{"extension", []string{txt}, "unknown file type"},
		{"duplicate", []string{filepath.Join(dir, "full.npy"), filepath.Join(dir, "full.npy")}, "both be sample"},
		{"missing", []string{filepath.Join(dir, "nope.npy")}, "no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			_, err := Import(context.Background(), out, c.paths, ImportOptions{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if !strings.Contains(err.Error(), c.paths[0]) && c.name != "duplicate" {
				t.Errorf("error %q does not name the file", err)
			}
			r, err := Open(out)
			if err != nil {
				return // nothing created at all
			}
			ids, _ := r.Samples()
			if len(ids) != 0 {
				t.Errorf("samples written: %v", ids)
			}
			filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() && d.Name() != RunFile {
					t.Errorf("file left behind: %s", p)
				}
				return nil
			})
		})
	}
	// A capture run is not an import target.
	out := filepath.Join(t.TempDir(), "run")
	Create(out, Meta{Kind: "capture", DType: "float32"})
	if _, err := Import(context.Background(), out, []string{filepath.Join(dir, "full.npy")}, ImportOptions{}); err == nil || !strings.Contains(err.Error(), "capture run") {
		t.Errorf("import into a capture run: %v", err)
	}
	// --tokens-from whose tokens do not fit the attention.
	tok := filepath.Join(dir, "tokens.json")
	os.WriteFile(tok, []byte(`{"full": {"text": "a b", "tokens": ["a", "b"]}}`), 0o644)
	if _, err := Import(context.Background(), filepath.Join(t.TempDir(), "r"), []string{filepath.Join(dir, "full.npy")}, ImportOptions{TokensFrom: tok}); err == nil || !strings.Contains(err.Error(), "tokens has 2 entries") {
		t.Errorf("mismatched tokens: %v", err)
	}
	os.WriteFile(tok, []byte(`{"full": {"text": "a b", "tokens": ["a", "Ġb", "c"], "offsets": [[0, 1], [1, 3], [3, 9]]}}`), 0o644)
	if _, err := Import(context.Background(), filepath.Join(t.TempDir(), "r"), []string{filepath.Join(dir, "full.npy")}, ImportOptions{TokensFrom: tok}); err == nil || !strings.Contains(err.Error(), "offsets of token 2") {
		t.Errorf("offsets outside the text: %v", err)
	}
}
