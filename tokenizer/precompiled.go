package tokenizer

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// charsmap is SentencePiece's precompiled_charsmap: a Darts-clone double-array trie
// over (UTF-8) source strings whose leaf values are byte offsets into a blob of
// NUL-terminated replacement strings. Layout (little endian):
// u32 trie size in bytes, the trie's u32 units, then the replacement blob.
// It is read exactly as HF tokenizers' spm_precompiled crate reads it.
type charsmap struct {
	units []uint32
	repl  string
}

func parseCharsmap(b []byte) (*charsmap, error) {
	if len(b) < 4 {
		return nil, errors.New("precompiled charsmap shorter than its 4-byte header")
	}
	n := int(binary.LittleEndian.Uint32(b) / 4)
	rest := b[4:]
	if n > len(rest)/4 {
		return nil, errors.New("precompiled charsmap: trie size larger than the data")
	}
	units := make([]uint32, n)
	for i := range units {
		units[i] = binary.LittleEndian.Uint32(rest[4*i:])
	}
	repl := rest[4*n:]
	if !utf8.Valid(repl) {
		return nil, errors.New("precompiled charsmap: replacement strings are not UTF-8")
	}
	if n == 0 {
		return nil, errors.New("precompiled charsmap: empty trie")
	}
	return &charsmap{units: units, repl: string(repl)}, nil
}

func parseCharsmapBase64(s string) (*charsmap, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	return parseCharsmap(b)
}

// Darts-clone unit fields.
func unitHasLeaf(u uint32) bool  { return (u>>8)&1 == 1 }
func unitValue(u uint32) int     { return int(u & (1<<31 - 1)) }
func unitLabel(u uint32) uint32  { return u & (1<<31 | 0xFF) }
func unitOffset(u uint32) uint32 { return (u >> 10) << ((u & (1 << 9)) >> 6) }

// firstPrefix returns the value of the shortest prefix of key that is in the trie
// (HF's `transform` takes the first result of common_prefix_search). The walk stops
// at a NUL byte. Units out of range (a corrupt charsmap) end the walk.
func (c *charsmap) firstPrefix(key string) (int, bool) {
	pos := unitOffset(c.units[0])
	for i := 0; i < len(key); i++ {
		ch := key[i]
		if ch == 0 {
			break
		}
		pos ^= uint32(ch)
		if int(pos) >= len(c.units) {
			return 0, false
		}
		u := c.units[pos]
		if unitLabel(u) != uint32(ch) {
			return 0, false
		}
		pos ^= unitOffset(u)
		if unitHasLeaf(u) {
			if int(pos) >= len(c.units) {
				return 0, false
			}
			return unitValue(c.units[pos]), true
		}
	}
	return 0, false
}

// transform returns the replacement of key's shortest prefix in the trie: the
// replacement blob from the leaf's value up to the next NUL.
func (c *charsmap) transform(key string) (string, bool) {
	v, ok := c.firstPrefix(key)
	if !ok || v > len(c.repl) {
		return "", false
	}
	end := v
	for end < len(c.repl) && c.repl[end] != 0 {
		end++
	}
	s := c.repl[v:end]
	if !utf8.ValidString(s) {
		return "", false // a value inside a character (corrupt charsmap)
	}
	return s, true
}

// precompiledNormalizer applies a charsmap as HF tokenizers does
// (normalizers/precompiled.rs): grapheme cluster by grapheme cluster, the whole
// cluster is looked up when it is shorter than 6 bytes, else (or when absent) each
// character is looked up on its own; the alignments follow HF's
// NormalizedString::transform of the resulting (char, change) list.
type precompiledNormalizer struct{ cm *charsmap }

func (n precompiledNormalizer) normalize(p nstr) nstr {
	var changes []runeChange
	modified := false
	state := -1
	rest := p.s
	for len(rest) > 0 {
		var g string
		g, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
		if len(g) < 6 {
			if to, ok := n.cm.transform(g); ok {
				modified = true
				changes = appendReplace(changes, g, to)
				continue
			}
		}
		for i := 0; i < len(g); {
			r, sz := utf8.DecodeRuneInString(g[i:])
			if to, ok := n.cm.transform(g[i : i+sz]); ok {
				modified = true
				changes = appendReplace(changes, g[i:i+sz], to)
			} else {
				changes = append(changes, runeChange{r, 0})
			}
			i += sz
		}
	}
	if !modified {
		return p
	}
	return p.transform(changes)
}

// appendReplace records that old became new (HF precompiled.rs `replace`): the new
// characters replace the old ones one by one; extra new characters are insertions
// (change 1); missing ones are removals counted on the last change recorded so far
// (which may belong to an earlier character, or be absent at the very start).
func appendReplace(changes []runeChange, old, new string) []runeChange {
	diff := utf8.RuneCountInString(new) - utf8.RuneCountInString(old)
	for _, r := range new {
		changes = append(changes, runeChange{r, 0})
	}
	switch {
	case diff > 0:
		for k := len(changes) - 1; k >= len(changes)-diff; k-- {
			changes[k].change = 1
		}
	case diff < 0 && len(changes) > 0:
		changes[len(changes)-1].change += diff
	}
	return changes
}
