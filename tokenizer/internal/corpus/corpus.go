// Package corpus generates deterministic test and benchmark text for the tokenizer:
// source code, prose, Unicode edge cases and random code points.
package corpus

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

var prose = []string{
	"The quick brown fox jumps over the lazy dog.",
	"Attention is all you need, or so the paper claims.",
	"She said: \"I'm not sure it'll work, but we've tried.\"",
	"In 1905, Einstein published four papers; each changed physics.",
	"Dr. Smith's results (p < 0.05) weren't reproduced — yet.",
	"Transformers map tokens to vectors, then mix them with attention heads.",
	"It's 3:45 p.m. on Tuesday, and the meeting hasn't started.",
	"Don't panic! Keep calm and carry on...",
	"The café on the corner serves crème brûlée and naïve jokes.",
	"Prices rose 12.5% in Q3 (from $4.99 to $5.61).",
	"A man, a plan, a canal: Panama!",
	"Why? Because the model couldn't see past its context window.",
	"E-mail me at someone@example.com or visit https://example.org/path?q=1&r=2.",
	"They'll arrive at 09:00; we'd better be ready.",
	"MULTI-HEAD ATTENTION and layer-norm are CamelCase-free words.",
}

var edge = []string{
	"café", "cafe\u0301", "naïve", "ﬁnancial ﬂow", "Ａｂｃ１２３", "İstanbul", "ǅemal", "ß ẞ", "Ωmega Ω",
	"東京タワー", "北京市", "한국어 텍스트", "ภาษาไทย", "עברית", "العربية", "हिन्दी", "Ελληνικά",
	"👩\u200d💻", "👍🏽", "🇫🇷🇯🇵", "🏳️\u200d🌈", "1️⃣", "\u00a0nbsp\u00a0", "thin\u2009space", "ideo\u3000space",
	"zero\u200bwidth", "soft\u00adhyphen", "bom\ufeffmark", "tab\there", "cr\rlf\r\n", "\v\f", "ctrl\x01\x02\x7f",
	"\u2028line\u2029para", "e\u0301\u0302\u0303", "ａ", "½ ⅓ ¼", "x² + y³", "①②③", "Ⅻ", "℃ ℉ №",
	"’quotes’ “double”", "…ellipsis…", "—dash–", "can't", "CAN'T", "it'S", "I'LL", "we'Ve",
	"\\escaped\\", "   ", "\n\n\n", " \n ", "a  b   c", "\t\t\tindent", "    four", "x\u0000y",
	"\ufffdreplacement", "<|endoftext|>", "[CLS] [SEP] [MASK]", "<s> </s> <unk>", "<0x0A>", "▁meta▁space",
	"Ġgpt", "##piece", "$$$", "!!!???", "...", "'''", "\"\"\"", "0x1F 1e-10 -42", "3.14159", "1,000,000",
}

// Strings returns n deterministic strings mixing source code lines, prose, Unicode
// edge cases and random code points.
func Strings(seed uint64, n int, code []string) []string {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]string, 0, n)
	for len(out) < n {
		var s string
		switch k := len(out) % 4; {
		case k == 0 && len(code) > 0:
			// 1 to 6 consecutive lines of code.
			i := rng.IntN(len(code))
			j := min(len(code), i+1+rng.IntN(6))
			s = strings.Join(code[i:j], "\n")
			if rng.IntN(2) == 0 {
				s += "\n"
			}
		case k == 1:
			parts := rng.IntN(3) + 1
			var b []string
			for p := 0; p < parts; p++ {
				b = append(b, prose[rng.IntN(len(prose))])
			}
			s = strings.Join(b, " ")
		case k == 2:
			parts := rng.IntN(4) + 1
			var b strings.Builder
			for p := 0; p < parts; p++ {
				if p > 0 {
					b.WriteString([]string{" ", "", "\n", "  ", "-"}[rng.IntN(5)])
				}
				b.WriteString(edge[rng.IntN(len(edge))])
			}
			s = b.String()
		default:
			s = randomString(rng, 1+rng.IntN(24))
		}
		out = append(out, s)
	}
	return out
}

// randomString draws code points from several ranges (ASCII, Latin, general BMP,
// CJK, astral), skipping surrogates and noncharacters.
func randomString(rng *rand.Rand, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		var r rune
		switch rng.IntN(6) {
		case 0, 1:
			r = rune(0x20 + rng.IntN(0x5f))
		case 2:
			r = rune(rng.IntN(0x250))
		case 3:
			r = rune(rng.IntN(0x10000))
		case 4:
			r = rune(0x4E00 + rng.IntN(0x5200))
		default:
			r = rune(0x10000 + rng.IntN(0x10000))
		}
		if !utf8.ValidRune(r) || !unicode.Is(assigned15, r) {
			// Surrogates, noncharacters and code points not assigned in Unicode 15.0
			// (assigned15, Go 1.26's tables): characters assigned since are classified
			// by Go's current tables (Unicode 17.0 with Go 1.27) and by HF's Rust tables
			// differently, a documented difference the corpus avoids.
			r = 'x'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// CodeLines returns the non-empty lines of the given files.
func CodeLines(files ...string) ([]string, error) {
	var lines []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		for _, l := range strings.Split(string(data), "\n") {
			if strings.TrimSpace(l) != "" {
				lines = append(lines, l)
			}
		}
	}
	return lines, nil
}

// GoSource returns about size bytes of real source code: the .go files of the Go
// installation's src tree (GOROOT), in sorted path order, each file whole.
func GoSource(size int) ([]string, error) {
	root := filepath.Join(runtime.GOROOT(), "src")
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", root, err)
	}
	sort.Strings(paths)
	var files []string
	total := 0
	for _, p := range paths {
		if total >= size {
			break
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		if !utf8.Valid(data) {
			continue
		}
		files = append(files, string(data))
		total += len(data)
	}
	if total < size {
		return nil, fmt.Errorf("only %d bytes of Go source under %s, want %d", total, root, size)
	}
	return files, nil
}
