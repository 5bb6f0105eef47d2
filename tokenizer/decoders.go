package tokenizer

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// decoder is HF's Decoder::decode_chain: tokens in, tokens out; the results are joined.
type decoder interface {
	decodeChain(toks []string) []string
}

type seqDecoder []decoder

func (s seqDecoder) decodeChain(t []string) []string {
	for _, d := range s {
		t = d.decodeChain(t)
	}
	return t
}

// byteLevelDecoder maps byte-level characters back to bytes; tokens with other
// characters are kept as they are. Invalid UTF-8 becomes U+FFFD (from_utf8_lossy).
type byteLevelDecoder struct{}

func (byteLevelDecoder) decodeChain(toks []string) []string {
	var buf []byte
	for _, t := range toks {
		start := len(buf)
		ok := true
		for _, r := range t {
			b, found := charBytes[r]
			if !found {
				ok = false
				break
			}
			buf = append(buf, b)
		}
		if !ok {
			buf = append(buf[:start], t...)
		}
	}
	return []string{lossyUTF8(buf)}
}

type wordPieceDecoder struct {
	prefix  string
	cleanup bool
}

func (d wordPieceDecoder) decodeChain(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		if i != 0 {
			if strings.HasPrefix(t, d.prefix) {
				t = strings.Replace(t, d.prefix, "", 1)
			} else {
				t = " " + t
			}
		}
		if d.cleanup {
			t = cleanupDecoded(t)
		}
		out[i] = t
	}
	return out
}

// cleanupDecoded is HF's wordpiece cleanup (clean_up_tokenization_spaces).
func cleanupDecoded(s string) string {
	for _, r := range [][2]string{
		{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
		{" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
	} {
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	return s
}

type metaspaceDecoder struct {
	replacement rune
	prepend     string
}

func (d metaspaceDecoder) decodeChain(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		var b strings.Builder
		for _, r := range t {
			if r == d.replacement {
				if i == 0 && d.prepend != "never" {
					continue
				}
				b.WriteByte(' ')
			} else {
				b.WriteRune(r)
			}
		}
		out[i] = b.String()
	}
	return out
}

// byteFallbackDecoder turns runs of <0xXX> tokens into their UTF-8 string, or one
// U+FFFD per byte when the run is not valid UTF-8.
type byteFallbackDecoder struct{}

func (byteFallbackDecoder) decodeChain(toks []string) []string {
	var out []string
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, string(pending))
		} else {
			for range pending {
				out = append(out, "\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, t := range toks {
		if len(t) == 6 && strings.HasPrefix(t, "<0x") && t[5] == '>' {
			if v, err := strconv.ParseUint(t[3:5], 16, 8); err == nil {
				pending = append(pending, byte(v))
				continue
			}
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}

type fuseDecoder struct{}

func (fuseDecoder) decodeChain(toks []string) []string { return []string{strings.Join(toks, "")} }

type replaceDecoder struct {
	pat     matcher
	content string
}

func (d replaceDecoder) decodeChain(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		ms := d.pat.findAll(t)
		if len(ms) == 0 {
			out[i] = t
			continue
		}
		var b strings.Builder
		last := 0
		for _, m := range ms {
			b.WriteString(t[last:m[0]])
			b.WriteString(d.content)
			last = m[1]
		}
		b.WriteString(t[last:])
		out[i] = b.String()
	}
	return out
}

type stripDecoder struct {
	content     rune
	start, stop int
}

func (d stripDecoder) decodeChain(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		rs := []rune(t)
		a := 0
		for k := 0; k < d.start && k < len(rs); k++ {
			if rs[k] != d.content {
				break
			}
			a = k + 1
		}
		b := len(rs)
		for k := 0; k < d.stop && k < len(rs); k++ {
			idx := len(rs) - k - 1
			if rs[idx] != d.content {
				break
			}
			b = idx
		}
		if b < a {
			b = a
		}
		out[i] = string(rs[a:b])
	}
	return out
}

type bpeDecoder struct{ suffix string }

func (d bpeDecoder) decodeChain(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		rep := " "
		if i == len(toks)-1 {
			rep = ""
		}
		out[i] = strings.ReplaceAll(t, d.suffix, rep)
	}
	return out
}

// ctcDecoder removes repeated tokens and the pad token, and replaces the word delimiter.
type ctcDecoder struct {
	pad, delim string
	cleanup    bool
}

func (d ctcDecoder) decodeChain(toks []string) []string {
	var out []string
	for i, t := range toks {
		if i > 0 && toks[i-1] == t {
			continue
		}
		if t == d.pad {
			continue
		}
		t = strings.ReplaceAll(t, d.delim, " ")
		if d.cleanup {
			t = cleanupDecoded(t)
		}
		out = append(out, t)
	}
	return out
}

// lossyUTF8 is Rust's String::from_utf8_lossy: each maximal invalid subpart
// (a truncated but otherwise valid prefix, or a single bad byte) becomes U+FFFD.
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || n > 1 {
			sb.Write(b[i : i+n])
			i += n
			continue
		}
		sb.WriteString("\uFFFD")
		i += invalidPrefixLen(b[i:])
	}
	return sb.String()
}

// invalidPrefixLen returns how many bytes at the start of b form the maximal
// prefix of a well-formed sequence (at least 1), per Unicode's "maximal subpart".
func invalidPrefixLen(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for k := 1; k <= need && k < len(b); k++ {
		x := b[k]
		if k == 1 {
			if x < lo || x > hi {
				return n
			}
		} else if x < 0x80 || x > 0xBF {
			return n
		}
		n++
	}
	return n
}
