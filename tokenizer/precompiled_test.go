package tokenizer

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
)

// readCharsmap returns testdata/NAME.charsmap.gz uncompressed: the precompiled_charsmap
// SentencePiece (Debian's sentencepiece 0.1.97) stores for its built-in normalization
// rules nmt_nfkc (the one T5, ALBERT and XLM-R ship) and nmt_nfkc_cf; see
// testdata/README.md for how they were made.
func readCharsmap(t testing.TB, name string) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name+".charsmap.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readTiny returns testdata/tiny.charsmap, built from the rules of testdata/tiny.tsv.
func readTiny(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "tiny.charsmap"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// charsmapEdge are strings on which a charsmap and plain NFKC differ, or on which
// HF's grapheme-then-character lookup and its alignments matter.
var charsmapEdge = []string{
	"Ｈｅｌｌｏ，　ｗｏｒｌｄ！", "～ U+FF5E ~ 〜 ∼", "…ellipsis… ‥", "ﬁnance ﬂow ﬀ ﬃ ﬄ ﬅ", "™\x1eg", "™™ ℠ ℡",
	"\x01abc", "abc\x01", "a\x01\x02\x03b", "\x01", "\x01\x02", "\u200babc\u200b", "zero\u200dwidth\u200cnon", "bom\ufeffmark",
	"soft\u00adhyphen", "tab\tand\nnewline\r\n", "\u3000ideo\u3000space", "nb\u00a0sp \u202f \u2007", "e\u0301 é E\u0301",
	"Ａ\u0301 ａ\u0308\u0304", "ｶﾞｷﾞｸﾞ ﾊﾟ", "ﾟﾞ", "\u1100\u1161\u11a8 각", "가\u0301", "❤️ ☺︎", "①②⑳ ⑴ ⒈", "㍻ ㈱ ㌔ ㎏",
	"ǅǆǄ", "ß ẞ İ ı", "½ ¼ ¾ ⅞", "x² y₃", "Ⅻ ⅻ", "℃ ℉ № K Å", "’‘“”„‟", "—–‐‑‒―", "❶ ➀",
	"\u0e01\u0e33 ำ", "क्षि", "ﷺ ﷻ", "ﬀ\x01", "¼\x01\x02", "\x7f\u0080\u009f", "\u2028\u2029", "\U0001d400\U0001d7ce",
	"a\u0300\u0316\u0301", "\u0344\u0340", "\u0958 \u09dc", "\uf900 \ufa10", "\u2126\u212a\u212b", "ﾝｰ", "ﹰﹱ ﺀ", "｡｢｣､",
	"\U0001f1eb\U0001f1f7", "👩\u200d👩\u200d👧", "A\u0301 Ae\u0301 e\u0301\u0301", "\u0301e\u0301", "Ae\u0301\u0301\u0301A", "  double  spaces  ", "ＡＢＣ\u0301\u0302\u0303\u0304", "\u00a8\u00af\u00b4",
}

// TestPrecompiledDifferentialHF compares the Precompiled normalizer, with the real
// nmt_nfkc and nmt_nfkc_cf charsmaps, against HF tokenizers: T5's Unigram, Llama-2's
// BPE and BERT's WordPiece tokenizers with a Precompiled normalizer, on 600 generated
// strings plus strings where the charsmap and NFKC differ (ids, tokens, offsets).
func TestPrecompiledDifferentialHF(t *testing.T) {
	oracles := oracleDir(t)
	tmp := t.TempDir()
	buildFixtures(t, oracles, tmp)
	texts, pairs := sampleCorpus(t, 31, 600, 31, 20, charsmapEdge...)
	cpath := filepath.Join(tmp, "corpus.json")
	writeJSON(t, cpath, map[string]any{"texts": texts, "pairs": pairs})
	precompiled := func(name string) map[string]any {
		return map[string]any{"type": "Precompiled", "precompiled_charsmap": base64.StdEncoding.EncodeToString(readCharsmap(t, name))}
	}
	seq := func(n ...any) map[string]any { return map[string]any{"type": "Sequence", "normalizers": n} }
	variants := []struct {
		name, base string
		normalizer any
	}{
		// T5's own normalizer: Precompiled(nmt_nfkc), then runs of spaces to one.
		{"t5-nmt-nfkc", "t5", seq(precompiled("nmt_nfkc"), map[string]any{"type": "Replace", "pattern": map[string]any{"Regex": " {2,}"}, "content": " "})},
		{"llama2-nmt-nfkc-cf", "llama2", seq(precompiled("nmt_nfkc_cf"), map[string]any{"type": "Prepend", "prepend": "▁"},
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"})},
		{"bert-nmt-nfkc", "bert", precompiled("nmt_nfkc")},
		{"bert-tiny", "bert", map[string]any{"type": "Precompiled", "precompiled_charsmap": base64.StdEncoding.EncodeToString(readTiny(t))}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			var tj map[string]any
			if v.base == "t5" {
				readJSON(t, refdata.Path(t, "tokenizers", "t5-unigram", "tokenizer.json"), &tj)
			} else {
				readJSON(t, filepath.Join(tmp, v.base, "tokenizer.json"), &tj)
			}
			tj["normalizer"] = v.normalizer
			if err := os.MkdirAll(filepath.Join(tmp, v.name), 0o755); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(tmp, v.name, "tokenizer.json")
			writeJSON(t, p, tj)
			compareWithHF(t, oracles, p, cpath, texts, pairs)
		})
	}
}

func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPrecompiledNormalize checks the charsmap lookups and HF's alignment rule on
// cases worked out by hand from nmt_nfkc's rules (U+2122 "™" -> "TM", U+001E and
// U+0001 -> "" (removed), U+FF21 "Ａ" -> "A", U+FB01 "ﬁ" -> "fi").
func TestPrecompiledNormalize(t *testing.T) {
	cm, err := parseCharsmap(readCharsmap(t, "nmt_nfkc"))
	if err != nil {
		t.Fatal(err)
	}
	n := precompiledNormalizer{cm}
	tests := []struct {
		in, out string
		align   [][2]int // per normalized character: original byte span
	}{
		{"abc", "abc", [][2]int{{0, 1}, {1, 2}, {2, 3}}},
		// "M" is an insertion, then the removal of U+001E is counted on it, so it
		// replaces U+001E instead.
		{"™\x1eg", "TMg", [][2]int{{0, 3}, {3, 4}, {4, 5}}},
		{"ﬁx", "fix", [][2]int{{0, 3}, {0, 3}, {3, 4}}},
		{"Ａb", "Ab", [][2]int{{0, 3}, {3, 4}}},
		{"a\x01b", "ab", [][2]int{{0, 1}, {2, 3}}},
		// A removal at the very start has no earlier change to count it on (HF's
		// replace): the next character then replaces the removed one.
		{"\x01ab", "ab", [][2]int{{0, 1}, {1, 2}}},
	}
	for _, tc := range tests {
		p := n.normalize(newNstr(tc.in, 0, len(tc.in)))
		if p.s != tc.out {
			t.Errorf("%q -> %q, want %q", tc.in, p.s, tc.out)
			continue
		}
		var got [][2]int
		for i := range p.s { // i: the byte index of each character
			got = append(got, [2]int{p.align[i].start, p.align[i].end})
		}
		if !equalSpans(got, tc.align) {
			t.Errorf("%q: alignments %v, want %v", tc.in, got, tc.align)
		}
	}
}

func equalSpans(a, b [][2]int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestPrecompiledTiny checks lookups in testdata/tiny.charsmap by hand: a whole
// grapheme cluster shorter than 6 bytes is looked up, and its shortest prefix in
// the trie wins (so "A" or "e\u0301" followed by combining accents become "a" or "é",
// the other accents dropped, as in HF).
func TestPrecompiledTiny(t *testing.T) {
	cm, err := parseCharsmap(readTiny(t))
	if err != nil {
		t.Fatal(err)
	}
	n := precompiledNormalizer{cm}
	for _, tc := range []struct{ in, out string }{
		{"AbA", "aba"}, {"e\u0301", "é"}, {"A\u0301", "a"}, {"xe\u0301\u0301", "x\u00e9"},
		// A cluster of 6 bytes or more is looked up character by character only.
		{"e\u0301\u0301\u0301", "e\u0301\u0301\u0301"},
		{"\ufb01\u2122", "fiTM"}, {"a\x1eb", "ab"}, {"\uff5e", "~"}, {"B", "B"},
	} {
		if got := n.normalize(newNstr(tc.in, 0, len(tc.in))).s; got != tc.out {
			t.Errorf("%q -> %q, want %q", tc.in, got, tc.out)
		}
	}
}

// TestParseCharsmapErrors: malformed charsmaps are errors naming the field.
func TestParseCharsmapErrors(t *testing.T) {
	good := readCharsmap(t, "nmt_nfkc")
	for name, b := range map[string][]byte{
		"empty":          {},
		"short header":   {1, 0},
		"trie too large": {0xff, 0xff, 0, 0, 1, 2, 3, 4},
		"empty trie":     {0, 0, 0, 0, 'a'},
		"bad utf-8":      append(append([]byte{}, good[:4+int(le32(good))]...), 0xff, 0xfe),
	} {
		if _, err := parseCharsmap(b); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
	js := `{"model": {"type": "WordLevel", "vocab": {"a": 0}, "unk_token": "a"}, "normalizer": {"type": "Precompiled", "precompiled_charsmap": "%%%"}}`
	if _, err := Parse([]byte(js)); err == nil || !bytes.Contains([]byte(err.Error()), []byte("normalizer.precompiled_charsmap")) {
		t.Errorf("bad base64: error %v, want one naming normalizer.precompiled_charsmap", err)
	}
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// FuzzPrecompiled: a corrupt charsmap never panics the normalizer, and the output
// alignments stay inside the input.
func FuzzPrecompiled(f *testing.F) {
	f.Add(readTiny(f), "A ™\x1e ﬁ e\u0301 A\u0301 ～")
	f.Add([]byte{8, 0, 0, 0, 0, 4, 0, 0, 0x61, 0x01, 0, 0, 'x', 0}, "abc")
	f.Fuzz(func(t *testing.T, data []byte, text string) {
		cm, err := parseCharsmap(data)
		if err != nil {
			return
		}
		p := precompiledNormalizer{cm}.normalize(newNstr(text, 0, len(text)))
		if len(p.align) != len(p.s) {
			t.Fatalf("%d alignments for %d bytes", len(p.align), len(p.s))
		}
		for _, a := range p.align {
			if a.start < 0 || a.end > len(text) || a.start > a.end {
				t.Fatalf("alignment %v outside %q", a, text)
			}
		}
	})
}
