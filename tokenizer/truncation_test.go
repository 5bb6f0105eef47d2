package tokenizer

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// truncationPairs returns generated pairs of word sequences of 0 to 30 words (words
// of one to several WordPiece tokens, punctuation and the [MASK] added token), so
// that every LongestFirst case (one, both or neither input cut; the shorter input
// first or second; a long word across max_length) occurs.
func truncationPairs(seed uint64, n int) [][2]string {
	words := []string{"a", "the", "unbelievable", "transformers", "x1y2z3", "naïve", "[MASK]", "tokenization", "!", "hello,world", "qwertyuiop", "at"}
	rng := rand.New(rand.NewPCG(seed, 7))
	text := func() string {
		k := rng.IntN(31)
		ws := make([]string, k)
		for i := range ws {
			ws[i] = words[rng.IntN(len(words))]
		}
		return strings.Join(ws, " ")
	}
	out := make([][2]string, n)
	for i := range out {
		out[i] = [2]string{text(), text()}
	}
	return out
}

// TestTruncationDifferentialHF compares truncation of singles and pairs with HF
// tokenizers on the BERT fixture: every strategy and direction, with and without a
// stride, and max_length values that leave 9, 2 and 0 tokens for a pair, over the 37
// corpus pairs of TestComponentsDifferentialHF plus 300 generated pairs.
func TestTruncationDifferentialHF(t *testing.T) {
	oracles := oracleDir(t)
	tmp := t.TempDir()
	buildFixtures(t, oracles, tmp)
	texts, pairs := sampleCorpus(t, 7, 400, 11, 40)
	pairs = append(pairs, truncationPairs(3, 300)...)
	texts = texts[:150]
	for _, p := range pairs[40:140] {
		texts = append(texts, p[0])
	}
	cpath := filepath.Join(tmp, "corpus.json")
	writeJSON(t, cpath, map[string]any{"texts": texts, "pairs": pairs})
	var base map[string]any
	readJSON(t, filepath.Join(tmp, "bert", "tokenizer.json"), &base)
	for _, c := range []struct {
		strategy, direction string
		max, stride         int
	}{
		{"LongestFirst", "Right", 12, 0}, {"LongestFirst", "Right", 12, 3}, {"LongestFirst", "Left", 12, 0},
		{"LongestFirst", "Right", 5, 0}, {"LongestFirst", "Right", 3, 0}, {"LongestFirst", "Left", 3, 0},
		{"OnlyFirst", "Right", 10, 0}, {"OnlySecond", "Right", 10, 0}, {"OnlySecond", "Left", 10, 0}, {"LongestFirst", "Left", 10, 2},
	} {
		name := fmt.Sprintf("%s-%s-%d-stride%d", c.strategy, c.direction, c.max, c.stride)
		t.Run(name, func(t *testing.T) {
			base["truncation"] = map[string]any{"direction": c.direction, "max_length": c.max, "strategy": c.strategy, "stride": c.stride}
			dir := filepath.Join(tmp, name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "tokenizer.json")
			writeJSON(t, p, base)
			compareWithHF(t, oracles, p, cpath, texts, pairs)
		})
	}
}

// TestTruncationStrideTooLarge: a stride not below the kept length is an error (HF
// aborts the process on it), and an input that needs no cut is fine.
func TestTruncationStrideTooLarge(t *testing.T) {
	tk, err := Parse([]byte(`{"model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "a": 1}, "unk_token": "[UNK]"},
		"pre_tokenizer": {"type": "WhitespaceSplit"},
		"truncation": {"max_length": 4, "strategy": "LongestFirst", "direction": "Right", "stride": 4}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.EncodePair("a a a", "a a a", true); err == nil || !strings.Contains(err.Error(), "stride 4") {
		t.Errorf("stride 4, 2 + 2 tokens kept: error %v, want one naming the stride", err)
	}
	if e, err := tk.Encode("a a a", true); err != nil || e.Len() != 3 {
		t.Errorf("no cut needed: %v, %v", e, err)
	}
	// Words past max_length are never tokenized (HF's early exit), so no cut.
	if e, err := tk.Encode("a a a a a a", true); err != nil || e.Len() != 4 {
		t.Errorf("early exit: %v, %v", e, err)
	}
}
