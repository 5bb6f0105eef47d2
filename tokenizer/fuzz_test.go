package tokenizer

import (
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/attnscope/attnscope/internal/refdata"
)

var parseSeeds = []string{
	`{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}, "pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "ByteLevel"}}`,
	`{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "<unk>": 3, "<0x41>": 4}, "merges": [["a", "b"]], "unk_token": "<unk>", "byte_fallback": true, "fuse_unk": true},
	  "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
	  "added_tokens": [{"id": 5, "content": "<s>", "special": true, "lstrip": true, "rstrip": true}]}`,
	`{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 1, "##b": 2}, "unk_token": "[UNK]"}, "normalizer": {"type": "BertNormalizer", "lowercase": true},
	  "pre_tokenizer": {"type": "BertPreTokenizer"}, "post_processor": {"type": "BertProcessing", "sep": ["[UNK]", 0], "cls": ["a", 1]}, "decoder": {"type": "WordPiece"}}`,
	`{"model": {"type": "Unigram", "vocab": [["<unk>", 0], ["a", -1.5], ["ab", -2.0], ["▁", -3]], "unk_id": 0},
	  "normalizer": {"type": "NFKC"}, "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}, "decoder": {"type": "Metaspace"}}`,
	`{"model": {"type": "WordLevel", "vocab": {"<unk>": 0, "a": 1}, "unk_token": "<unk>"}, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Whitespace"}, {"type": "Digits", "individual_digits": true}, {"type": "Punctuation"}]},
	  "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<unk>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}], "special_tokens": {"<unk>": {"id": "<unk>", "ids": [0], "tokens": ["<unk>"]}}},
	  "truncation": {"max_length": 4, "strategy": "LongestFirst", "direction": "Right", "stride": 0}, "padding": {"strategy": {"Fixed": 6}, "direction": "Left", "pad_id": 0, "pad_type_id": 0, "pad_token": "<unk>"}}`,
	`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\s+(?!\\S)|\\w+"}, "behavior": "MergedWithNext", "invert": true}}`,
	`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}`,
	`{"model": null}`,
	`[]`,
	`{"model": {"type": "Unigram", "vocab": [["a", "x"]]}}`,
}

// FuzzParse: any tokenizer.json either fails with an error or gives a tokenizer whose
// encodings stay inside the text; nothing panics.
func FuzzParse(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s), "ab a\tb 12 ÀB")
	}
	f.Fuzz(func(t *testing.T, data []byte, text string) {
		tk, err := Parse(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if !utf8.ValidString(text) {
			return
		}
		for _, special := range []bool{false, true} {
			e, err := tk.Encode(text, special)
			if err != nil {
				continue
			}
			checkEncoding(t, e, text, "")
			if _, err := tk.Decode(e.IDs, false); err != nil {
				t.Fatalf("decode: %v", err)
			}
		}
		if e, err := tk.EncodePair(text, "b a", true); err == nil {
			checkEncoding(t, e, text, "b a")
		}
	})
}

// checkEncoding verifies lengths and that every offset lies inside its text, with
// character offsets agreeing with byte offsets.
func checkEncoding(t *testing.T, e *Encoding, a, b string) {
	t.Helper()
	n := e.Len()
	for name, l := range map[string]int{"tokens": len(e.Tokens), "type ids": len(e.TypeIDs), "offsets": len(e.Offsets),
		"byte offsets": len(e.ByteOffsets), "sequence ids": len(e.SequenceIDs), "special mask": len(e.SpecialTokensMask), "attention mask": len(e.AttentionMask)} {
		if l != n {
			t.Fatalf("%d ids but %d %s", n, l, name)
		}
	}
	for i := range e.IDs {
		s := e.SequenceIDs[i]
		if s < 0 {
			continue
		}
		text := a
		if s == 1 {
			text = b
		}
		bo, co := e.ByteOffsets[i], e.Offsets[i]
		if bo[0] < 0 || bo[0] > bo[1] || bo[1] > len(text) {
			t.Fatalf("token %d %q: byte offsets %v outside text of %d bytes", i, e.Tokens[i], bo, len(text))
		}
		if co[0] < 0 || co[0] > co[1] || co[1] > utf8.RuneCountInString(text) {
			t.Fatalf("token %d %q: offsets %v outside text of %d characters", i, e.Tokens[i], co, utf8.RuneCountInString(text))
		}
		if utf8.RuneStart(text[min(bo[0], len(text)-1)]) && bo[0] < len(text) && co[0] != utf8.RuneCountInString(text[:bo[0]]) {
			t.Fatalf("token %d: char offset %d disagrees with byte offset %d", i, co[0], bo[0])
		}
	}
}

var (
	fuzzToksOnce sync.Once
	fuzzToks     map[string]*Tokenizer
	fuzzErr      error
)

// FuzzEncode encodes arbitrary strings with the five reference tokenizers: invalid
// UTF-8 is an error, offsets stay inside the text, and the byte-level tokenizers (and
// Llama's byte-fallback one, away from literal <0xNN> tokens and a leading space,
// which its prepend_scheme "first" plus Strip decoder drop, as in HF) decode back to the input.
func FuzzEncode(f *testing.F) {
	dir := refdata.Path(f, "tokenizers")
	fuzzToksOnce.Do(func() {
		fuzzToks = map[string]*Tokenizer{}
		for _, name := range goldenTokenizers {
			tk, err := Load(dir + "/" + name)
			if err != nil {
				fuzzErr = err
				return
			}
			fuzzToks[name] = tk
		}
	})
	if fuzzErr != nil {
		f.Fatal(fuzzErr)
	}
	for _, s := range []string{"", " ", "def f(x):\n\treturn x  # ok\r\n", "café 東京 👩\u200d💻 🇫🇷", "\xff\xfe", "<|endoftext|> <s> [CLS]",
		"   lead", "a\u0301\u0302", "ﬁ\u00a0\u3000x", "I'M can'T", "\x00\x01\u200b", strings.Repeat("ab ", 50)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for name, tk := range fuzzToks {
			e, err := tk.Encode(text, true)
			if !utf8.ValidString(text) {
				if err == nil {
					t.Fatalf("%s: invalid UTF-8 accepted", name)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			checkEncoding(t, e, text, "")
			lossless := name == "gpt2-bpe" || name == "qwen-bpe" || (name == "llama-sp-bpe" && !strings.Contains(text, "<0x") && !strings.HasPrefix(text, " "))
			if !lossless {
				continue
			}
			n, err := tk.Encode(text, false)
			if err != nil {
				t.Fatal(err)
			}
			if d, _ := tk.Decode(n.IDs, false); d != text {
				t.Fatalf("%s: decode(encode(%q)) = %q", name, text, d)
			}
		}
	})
}
