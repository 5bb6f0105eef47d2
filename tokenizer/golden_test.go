package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
)

type goldenFile struct {
	Cases []struct {
		Text               string   `json:"text"`
		AddSpecialTokens   bool     `json:"add_special_tokens"`
		IDs                []int    `json:"ids"`
		Tokens             []string `json:"tokens"`
		Offsets            [][2]int `json:"offsets"`
		Decoded            string   `json:"decoded"`
		DecodedSkipSpecial string   `json:"decoded_skip_special"`
	} `json:"cases"`
	Pair struct {
		A       string   `json:"a"`
		B       string   `json:"b"`
		IDs     []int    `json:"ids"`
		TypeIDs []int    `json:"type_ids"`
		Offsets [][2]int `json:"offsets"`
	} `json:"pair"`
}

var goldenTokenizers = []string{"gpt2-bpe", "bert-wordpiece", "llama-sp-bpe", "qwen-bpe", "t5-unigram"}

// TestGoldenEncodings checks every case of the five reference tokenizers' golden files
// (produced by HF tokenizers 0.23): ids, tokens, character offsets, both decodings,
// and the pair encoding's ids, type ids and offsets.
func TestGoldenEncodings(t *testing.T) {
	for _, name := range goldenTokenizers {
		t.Run(name, func(t *testing.T) {
			dir := refdata.Path(t, "tokenizers", name)
			tk, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			var g goldenFile
			readJSON(t, filepath.Join(dir, "golden-encodings.json"), &g)
			if len(g.Cases) == 0 {
				t.Fatal("golden file has no cases")
			}
			for i, c := range g.Cases {
				label := fmt.Sprintf("case %d (%q, special=%v)", i, short(c.Text), c.AddSpecialTokens)
				e, err := tk.Encode(c.Text, c.AddSpecialTokens)
				if err != nil {
					t.Errorf("%s: %v", label, err)
					continue
				}
				if !reflect.DeepEqual(nz(e.IDs), nz(c.IDs)) {
					t.Errorf("%s: ids\n got %v\nwant %v", label, e.IDs, c.IDs)
				}
				if !reflect.DeepEqual(nzs(e.Tokens), nzs(c.Tokens)) {
					t.Errorf("%s: tokens\n got %q\nwant %q", label, e.Tokens, c.Tokens)
				}
				if !reflect.DeepEqual(nzo(e.Offsets), nzo(c.Offsets)) {
					t.Errorf("%s: offsets\n got %v\nwant %v", label, e.Offsets, c.Offsets)
				}
				d, err := tk.Decode(c.IDs, false)
				if err != nil || d != c.Decoded {
					t.Errorf("%s: decode = %q, %v; want %q", label, d, err, c.Decoded)
				}
				d, err = tk.Decode(c.IDs, true)
				if err != nil || d != c.DecodedSkipSpecial {
					t.Errorf("%s: decode(skip special) = %q, %v; want %q", label, d, err, c.DecodedSkipSpecial)
				}
			}
			p := g.Pair
			e, err := tk.EncodePair(p.A, p.B, true)
			if err != nil {
				t.Fatalf("pair: %v", err)
			}
			if !reflect.DeepEqual(e.IDs, p.IDs) || !reflect.DeepEqual(e.TypeIDs, p.TypeIDs) {
				t.Errorf("pair: ids %v type ids %v; want %v %v", e.IDs, e.TypeIDs, p.IDs, p.TypeIDs)
			}
			if p.Offsets != nil && !reflect.DeepEqual(e.Offsets, p.Offsets) {
				t.Errorf("pair: offsets %v; want %v", e.Offsets, p.Offsets)
			}
		})
	}
}

// TestModelReferenceTokens checks the tokenizer.json of every reference model folder
// against the ids, tokens and offsets of its reference.json (special tokens added).
func TestModelReferenceTokens(t *testing.T) {
	root := refdata.Path(t, "models")
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ent := range entries {
		dir := filepath.Join(root, ent.Name())
		if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err != nil {
			continue
		}
		n++
		t.Run(ent.Name(), func(t *testing.T) {
			tk, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			var ref struct {
				Cases []struct {
					Text    string   `json:"text"`
					IDs     []int    `json:"ids"`
					Tokens  []string `json:"tokens"`
					Offsets [][2]int `json:"offsets"`
				} `json:"cases"`
			}
			readJSON(t, filepath.Join(dir, "reference.json"), &ref)
			for i, c := range ref.Cases {
				if c.IDs == nil {
					continue
				}
				e, err := tk.Encode(c.Text, true)
				if err != nil {
					t.Fatalf("case %d: %v", i, err)
				}
				if !reflect.DeepEqual(e.IDs, c.IDs) {
					t.Errorf("case %d (%q): ids\n got %v\nwant %v", i, short(c.Text), e.IDs, c.IDs)
				}
				if c.Tokens != nil && !reflect.DeepEqual(e.Tokens, c.Tokens) {
					t.Errorf("case %d: tokens\n got %q\nwant %q", i, e.Tokens, c.Tokens)
				}
				if c.Offsets != nil && !reflect.DeepEqual(e.Offsets, c.Offsets) {
					t.Errorf("case %d: offsets\n got %v\nwant %v", i, e.Offsets, c.Offsets)
				}
			}
		})
	}
	if n == 0 {
		t.Fatalf("no model folder with tokenizer.json under %s", root)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func short(s string) string {
	r := []rune(s)
	if len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}

func nz(x []int) []int {
	if x == nil {
		return []int{}
	}
	return x
}
func nzs(x []string) []string {
	if x == nil {
		return []string{}
	}
	return x
}
func nzo(x [][2]int) [][2]int {
	if x == nil {
		return [][2]int{}
	}
	return x
}
