package tasks

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/tokenizer"
)

func TestNewFromParams(t *testing.T) {
	for _, tc := range []struct {
		name   string
		params map[string]any
		text   string
	}{
		{"LongAdditionGenerator", map[string]any{"seed": uint64(0), "length": "${as_tuple:1,3}", "num_of_nums": []any{uint64(2), uint64(2)}}, "510+570=090"},
		{"long_multiplication", map[string]any{"seed": 0, "length": "1,2"}, "3400*5100=5120+0340+0000+0000=5460"},
		{"SuccessorGenerator", map[string]any{"start_number_range": []any{8, 12}, "length": []any{3, 3}}, "11 12 13 "},
		{"FlipFlopGenerator", map[string]any{"length": []any{4, 4}, "num_registers": []any{2, 2}}, "w11i11i00r11"},
		{"ValueAssignmentGenerator", map[string]any{"length": []any{3, 3}, "encoding_length": []any{2, 2}, "charset_from": "ABCDEFGH", "charset_to": []any{"1", "2", "3", "4", "5", "6", "7", "8"}}, "A8G8 AAA=888"},
		{"value_assignment", map[string]any{"length": []any{3, 3}, "encoding_length": []any{2, 2}, "charset_from": "ABCDEFGH", "charset_to": uint64(12345678)}, "A8G8 AAA=888"},
	} {
		g, err := New(tc.name, tc.params, fakeTok{})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if s := next(t, g); s.Text != tc.text {
			t.Fatalf("%s: text %q, want %q", tc.name, s.Text, tc.text)
		}
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		params map[string]any
		want   string
	}{
		{"NoSuchGenerator", nil, "unknown generator"},
		{"LongAdditionGenerator", map[string]any{"lenght": []any{1, 2}}, `unknown parameter "lenght"`},
		{"LongAdditionGenerator", map[string]any{"length": []any{5, 2}}, "length (5,2) is empty"},
		{"LongAdditionGenerator", map[string]any{"length": "five"}, "parameter length: expected a range"},
		{"LongAdditionGenerator", map[string]any{"use_few_shot": "yes"}, "expected true or false"},
		{"FlipFlopGenerator", map[string]any{"num_registers": []any{1, 12}}, "num_registers (1,12) must end at 10"},
		{"SuccessorGenerator", map[string]any{"apply_chat_template": true}, "chat_template"},
		{"ValueAssignmentGenerator", map[string]any{"charset_from": "AB", "encoding_length": []any{3, 3}}, "encoding_length"},
		{"StringReversalGenerator", map[string]any{"few_shot_samples": "abc"}, "a list of strings"},
		{"StringReversalGenerator", map[string]any{"few_shot_samples": uint64(12)}, "a list of strings"},
	} {
		_, err := New(tc.name, tc.params, fakeTok{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: error %v, want it to mention %q", tc.name, tc.params, err, tc.want)
		}
	}
}

func TestCharTokenizerRoundTrip(t *testing.T) {
	tok := NewCharTokenizer(DefaultChars())
	if tok.VocabSize() != 99 {
		t.Fatalf("vocab %d, want 99", tok.VocabSize())
	}
	ids := tok.Encode("510+570=090", false)
	if len(ids) != 11 || tok.Decode(ids) != "510+570=090" {
		t.Fatalf("encode/decode: %v → %q", ids, tok.Decode(ids))
	}
	if got := tok.Encode("é", false); !slices.Equal(got, []int{3}) {
		t.Fatalf("unknown char → %v, want [3]", got)
	}
	dir := t.TempDir()
	if err := tok.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	back, err := LoadCharTokenizer(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.vocab, tok.vocab) {
		t.Fatal("tokenizer.json round trip changed the vocabulary")
	}
	os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"model":{"type":"WordPiece","vocab":{}}}`), 0o644)
	if _, err := LoadCharTokenizer(filepath.Join(dir, "bad.json")); err == nil || !strings.Contains(err.Error(), "model") {
		t.Fatalf("bad tokenizer.json: %v", err)
	}
}

func TestCollate(t *testing.T) {
	g, _ := NewLongAddition(oracleCommon(), Range{1, 3}, Range{2, 2}, true)
	ss, err := Take(g, 4)
	if err != nil {
		t.Fatal(err)
	}
	b := Collate(ss, 0, DefaultIgnoreIndex)
	for i, s := range ss {
		n := len(s.InputIDs)
		for j := n; j < b.N; j++ {
			if b.InputIDs[i][j] != 0 || b.TargetIDs[i][j] != DefaultIgnoreIndex || b.Labels[i].At(j, 0) != DefaultIgnoreIndex || b.Labels[i].At(0, j) != DefaultIgnoreIndex {
				t.Fatalf("sample %d not padded at %d", i, j)
			}
		}
		for r := 0; r < n; r++ {
			for c := 0; c < n; c++ {
				if b.Labels[i].At(r, c) != s.Labels.At(r, c) {
					t.Fatalf("sample %d label (%d,%d) changed", i, r, c)
				}
			}
		}
	}
}

// The tokenizer.json written for trained models tokenizes like CharTokenizer in
// the project's tokenizer package (one token per character, <bos> with special tokens).
func TestCharTokenizerJSONWithTokenizerPackage(t *testing.T) {
	tok := NewCharTokenizer(DefaultChars())
	dir := t.TempDir()
	if err := tok.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	hf, err := tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"510+570=090", "w11i11 f10r10", "A8G8 AAA=888", "11 12 13 "} {
		for _, special := range []bool{false, true} {
			enc, err := hf.Encode(text, special)
			if err != nil {
				t.Fatal(err)
			}
			if want := tok.Encode(text, special); !slices.Equal(enc.IDs, want) {
				t.Fatalf("%q special=%v: tokenizer package %v, CharTokenizer %v", text, special, enc.IDs, want)
			}
		}
	}
}

// Generators run on any tokenizer.json: the GPT-2 byte-level BPE of the reference
// data, with BOS/EOS from tokenizer_config.json.
func TestHFTokenizer(t *testing.T) {
	dir := refdata.Path(t, "tokenizers", "gpt2-bpe")
	hf, err := tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := NewHFTokenizer(hf, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New("LongAdditionGenerator", map[string]any{"length": []any{1, 3}, "num_of_nums": []any{2, 2}}, tok)
	if err != nil {
		t.Fatal(err)
	}
	s := next(t, g)
	if s.Text != "510+570=090" || s.InputIDs[0] != tok.BOS() || len(s.InputIDs) != 12 {
		t.Fatalf("text %q ids %v", s.Text, s.InputIDs)
	}
	// Same label structure as oracle 18 (one token per character here).
	if got, want := s.Labels.Ones(), cells(8, 1, 8, 5, 9, 2, 9, 6, 10, 3, 10, 7); !slices.Equal(got, want) {
		t.Fatalf("label ones %v, want %v", got, want)
	}
	dec, err := hf.Decode(s.InputIDs[1:], false)
	if err != nil || dec != s.Text {
		t.Fatalf("decoded %q (%v), want %q", dec, err, s.Text)
	}
}

// A byte-level BPE tokenizer (GPT-2's, ../shared/reference) splits each of ☃
// and ★ into three tokens, the first two shared (â ĺ), and é into two. The
// generators still label reference tokens: each token of the sample belongs to
// one character (its offsets, [0, 1] of that character's encoding), and the
// labels over tokens are those of the same sample under a tokenizer that keeps
// every character whole (CharTokenizer, the original's geometry), with key
// token c in its character's column and query row r in the row that predicts
// token r+1's character (TestStringReversalOracle, TestValueAssignmentOracle
// check the character labels). String reversal is also checked directly: the
// rows predicting answer character i label exactly the tokens of prompt
// character n−1−i. Characters encoded as no token are refused.
func TestHFTokenizerSplitCharacter(t *testing.T) {
	hf, err := tokenizer.Load(filepath.Join(refdata.Path(t, "tokenizers", "gpt2-bpe"), "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := NewHFTokenizer(hf, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	width := map[rune]int{}
	for _, ch := range "☃★éa=xyz01 " {
		enc, err := hf.Encode(string(ch), false)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range enc.Offsets {
			if o != [2]int{0, 1} {
				t.Fatalf("%q: token offsets %v, want every token inside the character", ch, enc.Offsets)
			}
		}
		width[ch] = len(enc.IDs)
	}
	if width['☃'] != 3 || width['★'] != 3 || width['é'] != 2 {
		t.Fatalf("test needs characters split into several tokens: %v", width)
	}
	// owners maps each token of the sample to its character: BOS, the text's
	// characters (width tokens each), EOS.
	owners := func(text string) []int {
		own := []int{0}
		for i, ch := range []rune(text) {
			for range width[ch] {
				own = append(own, i+1)
			}
		}
		return append(own, len([]rune(text))+1)
	}
	for _, c := range []struct {
		gen    string
		params map[string]any
		chars  string
	}{
		{"StringReversalGenerator", map[string]any{"charset": []any{"☃", "★", "é", "a"}, "length": []any{3, 5}, "seed": 3}, "☃★éa="},
		{"ValueAssignmentGenerator", map[string]any{"charset_from": []any{"☃", "★", "a"}, "charset_to": []any{"é", "x", "y"}, "length": []any{3, 4}, "seed": 5}, "☃★aéxy= "},
	} {
		t.Run(c.gen, func(t *testing.T) {
			g, err := New(c.gen, c.params, tok)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := New(c.gen, c.params, NewCharTokenizer(c.chars))
			if err != nil {
				t.Fatal(err)
			}
			for range 5 {
				s, want := next(t, g), next(t, ref)
				if s.Text != want.Text {
					t.Fatalf("texts differ: %q, character tokenizer %q", s.Text, want.Text)
				}
				own := owners(s.Text)
				if n := len(s.InputIDs); n != len(own)-1 || n <= len(want.InputIDs) || s.Labels.N != n {
					t.Fatalf("%q: %d tokens (labels %d), %d characters", s.Text, n, s.Labels.N, len(want.InputIDs))
				}
				ones := 0
				for r := range s.Labels.N {
					for col := range s.Labels.N {
						got, w := s.Labels.At(r, col), want.Labels.At(own[r+1]-1, own[col])
						if got != w {
							t.Fatalf("%q: label (%d, %d) = %d, want %d (character cell (%d, %d))", s.Text, r, col, got, w, own[r+1]-1, own[col])
						}
						if got == 1 {
							ones++
						}
					}
				}
				if ones <= len(want.Labels.Ones()) {
					t.Fatalf("%q: %d token cells labelled for %d character cells", s.Text, ones, len(want.Labels.Ones()))
				}
				if c.gen == "StringReversalGenerator" {
					checkSplitReversal(t, s, own)
				}
			}
		})
	}
	// A character the tokenizer drops has no position to label.
	g, err := New("StringReversalGenerator", map[string]any{"charset": []any{"☃", "a"}, "length": []any{2, 3}}, dropTokenizer{NewCharTokenizer("a=")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Next(); err == nil || !strings.Contains(err.Error(), "as no token") {
		t.Errorf("dropped character: %v", err)
	}
}

// dropTokenizer encodes ☃ as no token.
type dropTokenizer struct{ *CharTokenizer }

func (d dropTokenizer) Encode(text string, special bool) []int {
	if text == "☃" {
		return nil
	}
	return d.CharTokenizer.Encode(text, special)
}

// checkSplitReversal checks string reversal's labels over split characters
// directly: the rows predicting the tokens of answer character i (the token
// before each of them) label exactly the tokens of prompt character n−1−i.
func checkSplitReversal(t *testing.T, s *Sample, own []int) {
	t.Helper()
	n := (len([]rune(s.Text)) - 1) / 2
	want := map[[2]int]bool{}
	for i := range n {
		for tr := range own {
			if own[tr] != n+2+i || tr == 0 {
				continue
			}
			for tc := range own {
				if own[tc] == n-i {
					want[[2]int{tr - 1, tc}] = true
				}
			}
		}
	}
	ones := s.Labels.Ones()
	if len(ones) != len(want) {
		t.Fatalf("%q: %d cells labelled, want %d", s.Text, len(ones), len(want))
	}
	for _, c := range ones {
		if !want[c] {
			t.Fatalf("%q: cell %v labelled, not a reference of its row", s.Text, c)
		}
	}
}

// The chat template of Llama-3.2-1B-Instruct (the model of every AttentionSpan config)
// rendered for [user: "{tokens}{tokens}", assistant: "{tokens}"] and split on
// {tokens}, with strftime_now at its fixed default date.
func TestHFTokenizerLlama32ChatParts(t *testing.T) {
	hf, err := tokenizer.Load(refdata.Path(t, "tokenizers", "gpt2-bpe", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := NewHFTokenizer(hf, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.UseChatTemplate(filepath.Join("..", "tokenizer", "chat", "testdata", "templates", "llama3.2")); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n",
		"",
		"<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
		"<|eot_id|>",
	}
	if got := tok.ChatParts(); !slices.Equal(got, want) {
		t.Errorf("parts %q\nwant %q", got, want)
	}
	g, err := New("LongAdditionGenerator", map[string]any{"apply_chat_template": true, "length": []any{1, 2}}, tok)
	if err != nil {
		t.Fatal(err)
	}
	s := next(t, g)
	if !strings.HasPrefix(s.Text, want[0]) || !strings.Contains(s.Text, "="+want[2]) {
		t.Errorf("sample text %q", s.Text)
	}
}
