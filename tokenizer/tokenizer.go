// Package tokenizer loads Hugging Face tokenizer.json files and encodes and decodes
// text exactly as the Rust tokenizers library does (ids, tokens, character offsets).
//
// The pipeline follows HF: added tokens are split off the raw text, the rest is
// normalized (with per-byte alignment to the original, like NormalizedString),
// pre-tokenized, tokenized by the model (BPE, WordPiece, Unigram, WordLevel),
// truncated, post-processed (special tokens, type ids) and padded.
package tokenizer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// Encoding is the result of encoding one text or one pair of texts.
type Encoding struct {
	IDs     []int
	Tokens  []string
	TypeIDs []int
	// Offsets are character (Unicode code point) offsets into the input text the token
	// came from (the second text of a pair for its tokens), as Hugging Face reports them.
	// Special tokens added by the post-processor and padding have [0, 0].
	Offsets [][2]int
	// ByteOffsets are the same spans in bytes of the UTF-8 input.
	ByteOffsets [][2]int
	// SequenceIDs tells which input each token came from: 0, 1, or -1 for tokens added
	// by the post-processor or padding.
	SequenceIDs       []int
	SpecialTokensMask []int
	AttentionMask     []int
	// Overflowing holds, under truncation, the encodings of what was cut off, as HF's
	// Encoding.overflowing: windows of the kept length overlapping by the stride,
	// post-processed and padded like the encoding itself (for a pair: each window
	// of the first input with the second input and its windows, then the first input
	// with each window of the second).
	Overflowing []*Encoding
}

// Len returns the number of tokens.
func (e *Encoding) Len() int { return len(e.IDs) }

// Truncation is tokenizer.json's truncation section.
type Truncation struct {
	MaxLength int    `json:"max_length"`
	Stride    int    `json:"stride"`
	Strategy  string `json:"strategy"`  // LongestFirst, OnlyFirst, OnlySecond
	Direction string `json:"direction"` // Right, Left
}

// Padding is tokenizer.json's padding section. Length 0 pads a batch to its longest
// encoding (BatchLongest); otherwise to Length (Fixed).
type Padding struct {
	Length           int
	Direction        string // Right, Left
	PadToMultipleOf  int
	PadID, PadTypeID int
	PadToken         string
}

// Tokenizer is a loaded tokenizer.json. It is safe for concurrent use.
type Tokenizer struct {
	path       string
	model      model
	normalizer normalizer
	preTok     preTokenizer
	post       postProcessor
	dec        decoder

	added             []*AddedToken
	addedByID         map[int]*AddedToken
	addedByText       map[string]*AddedToken
	normalizedContent map[*AddedToken]string
	rawMatcher        *addedMatcher // added tokens with normalized == false
	normMatcher       *addedMatcher // added tokens with normalized == true (normalized content)
	truncation        *Truncation
	padding           *Padding
	specialNames      map[string]string // tokenizer_config.json: bos_token, eos_token, ...
}

// Load reads a tokenizer.json file, or a folder holding tokenizer.json and optionally
// tokenizer_config.json (whose named special tokens, such as bos_token, become
// available through SpecialToken).
func Load(path string) (*Tokenizer, error) {
	file := path
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	if st.IsDir() {
		file = filepath.Join(path, "tokenizer.json")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	t.path = file
	cfg := filepath.Join(filepath.Dir(file), "tokenizer_config.json")
	if cdata, err := os.ReadFile(cfg); err == nil {
		if err := t.readConfig(cdata); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	return t, nil
}

// readConfig takes the special token names of tokenizer_config.json (strings, or
// objects with a "content" field).
func (t *Tokenizer) readConfig(data []byte) error {
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	t.specialNames = map[string]string{}
	for _, k := range []string{"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"} {
		r, ok := cfg[k]
		if !ok || isNull(r) {
			continue
		}
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			var obj struct {
				Content string `json:"content"`
			}
			if err := json.Unmarshal(r, &obj); err != nil {
				return ferr(k, "expected a string or an object with \"content\"")
			}
			s = obj.Content
		}
		t.specialNames[k] = s
	}
	return nil
}

// SpecialToken returns the token that tokenizer_config.json names for role
// ("bos_token", "eos_token", "pad_token", ...) and its id.
func (t *Tokenizer) SpecialToken(role string) (string, int, bool) {
	s, ok := t.specialNames[role]
	if !ok {
		return "", 0, false
	}
	id, ok := t.TokenToID(s)
	return s, id, ok
}

// Path returns the tokenizer.json file the tokenizer was loaded from ("" if parsed).
func (t *Tokenizer) Path() string { return t.path }

// Parse builds a tokenizer from the contents of a tokenizer.json file.
func Parse(data []byte) (*Tokenizer, error) {
	var top rawObj
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	t := &Tokenizer{addedByID: map[int]*AddedToken{}, addedByText: map[string]*AddedToken{}}
	var err error
	if t.model, err = parseModel(top["model"], "model"); err != nil {
		return nil, err
	}
	if t.normalizer, err = parseNormalizer(top["normalizer"], "normalizer"); err != nil {
		return nil, err
	}
	if t.preTok, err = parsePreTokenizer(top["pre_tokenizer"], "pre_tokenizer"); err != nil {
		return nil, err
	}
	if t.post, err = parseProcessor(top["post_processor"], "post_processor", t); err != nil {
		return nil, err
	}
	if t.dec, err = parseDecoder(top["decoder"], "decoder"); err != nil {
		return nil, err
	}
	if err := top.get("", "added_tokens", &t.added); err != nil {
		return nil, ferr("added_tokens", "expected a list of added tokens")
	}
	// As HF's deserializer, add the tokens in order: a token already in the model
	// vocabulary takes its id there, a new one the next id after the vocabulary and
	// the tokens added so far (the ids in the file agree for files HF wrote).
	maxAdded := -1
	for i, a := range t.added {
		if a == nil || a.Content == "" {
			return nil, ferr(fmt.Sprintf("added_tokens[%d].content", i), "empty token")
		}
		if a.ID < 0 {
			return nil, ferr(fmt.Sprintf("added_tokens[%d].id", i), "negative id %d", a.ID)
		}
		if prev, ok := t.addedByText[a.Content]; ok {
			a.ID = prev.ID
		} else if id, ok := t.model.tokenToID(a.Content); ok {
			a.ID = id
		} else {
			a.ID = max(maxAdded, t.model.vocabSize()-1) + 1
		}
		maxAdded = max(maxAdded, a.ID)
		t.addedByID[a.ID] = a
		t.addedByText[a.Content] = a
	}
	if err := t.buildMatchers(); err != nil {
		return nil, err
	}
	if r, ok := top["truncation"]; ok && !isNull(r) {
		tr := &Truncation{Strategy: "LongestFirst", Direction: "Right"}
		if err := json.Unmarshal(r, tr); err != nil {
			return nil, ferr("truncation", "wrong type: %v", err)
		}
		if tr.MaxLength <= 0 {
			return nil, ferr("truncation.max_length", "expected a positive length, got %d", tr.MaxLength)
		}
		t.truncation = tr
	}
	if r, ok := top["padding"]; ok && !isNull(r) {
		p, err := parsePadding(r)
		if err != nil {
			return nil, err
		}
		t.padding = p
	}
	return t, nil
}

func parsePadding(r json.RawMessage) (*Padding, error) {
	var raw struct {
		Strategy        json.RawMessage `json:"strategy"`
		Direction       string          `json:"direction"`
		PadToMultipleOf *int            `json:"pad_to_multiple_of"`
		PadID           int             `json:"pad_id"`
		PadTypeID       int             `json:"pad_type_id"`
		PadToken        string          `json:"pad_token"`
	}
	if err := json.Unmarshal(r, &raw); err != nil {
		return nil, ferr("padding", "wrong type: %v", err)
	}
	p := &Padding{Direction: raw.Direction, PadID: raw.PadID, PadTypeID: raw.PadTypeID, PadToken: raw.PadToken}
	if raw.PadToMultipleOf != nil {
		p.PadToMultipleOf = *raw.PadToMultipleOf
	}
	var s string
	if json.Unmarshal(raw.Strategy, &s) == nil {
		if s != "BatchLongest" {
			return nil, ferr("padding.strategy", "expected BatchLongest or {\"Fixed\": n}, got %q", s)
		}
	} else {
		var f struct {
			Fixed int `json:"Fixed"`
		}
		if err := json.Unmarshal(raw.Strategy, &f); err != nil || f.Fixed <= 0 {
			return nil, ferr("padding.strategy", "expected BatchLongest or {\"Fixed\": n}")
		}
		p.Length = f.Fixed
	}
	return p, nil
}

func (t *Tokenizer) buildMatchers() error {
	var rawToks, normToks []*AddedToken
	var rawPats, normPats []string
	// HF: special tokens first, then the others, each partitioned by `normalized`.
	sorted := append([]*AddedToken(nil), t.added...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Special && !sorted[j].Special })
	for _, a := range sorted {
		if a.Normalized {
			c := a.Content
			if t.normalizer != nil {
				c = t.normalizer.normalize(newNstr(c, 0, len(c))).s
			}
			normToks, normPats = append(normToks, a), append(normPats, c)
			if t.normalizedContent == nil {
				t.normalizedContent = map[*AddedToken]string{}
			}
			t.normalizedContent[a] = c
		} else {
			rawToks, rawPats = append(rawToks, a), append(rawPats, a.Content)
		}
	}
	t.rawMatcher = newAddedMatcher(rawToks, rawPats)
	t.normMatcher = newAddedMatcher(normToks, normPats)
	return nil
}

// SetTruncation sets (or with nil removes) truncation.
func (t *Tokenizer) SetTruncation(tr *Truncation) { t.truncation = tr }

// SetPadding sets (or with nil removes) padding.
func (t *Tokenizer) SetPadding(p *Padding) { t.padding = p }

// TokenToID returns the id of a token (added tokens first, then the model vocabulary).
func (t *Tokenizer) TokenToID(tok string) (int, bool) {
	if a, ok := t.addedByText[tok]; ok {
		return a.ID, true
	}
	return t.model.tokenToID(tok)
}

// IDToToken returns the token of an id.
func (t *Tokenizer) IDToToken(id int) (string, bool) {
	if a, ok := t.addedByID[id]; ok {
		return a.Content, true
	}
	return t.model.idToToken(id)
}

// VocabSize is the model vocabulary plus the added tokens that are not in it.
func (t *Tokenizer) VocabSize() int {
	n := t.model.vocabSize()
	for _, a := range t.added {
		if _, ok := t.model.tokenToID(a.Content); !ok {
			n++
		}
	}
	return n
}

// AddedTokens returns the added tokens of tokenizer.json.
func (t *Tokenizer) AddedTokens() []AddedToken {
	out := make([]AddedToken, len(t.added))
	for i, a := range t.added {
		out[i] = *a
	}
	return out
}

// ErrInvalidUTF8 is returned for input text that is not valid UTF-8.
var ErrInvalidUTF8 = errors.New("text is not valid UTF-8")

// encodeSeq runs everything up to the model for one text; offsets are bytes of text.
//
// Under truncation, HF tokenizers (since 0.23, PR #1990 "early exit for truncation")
// stops running the model once a word brings the sequence to max_length tokens
// (added tokens count, but never stop it): with direction Right the later words and
// added tokens are dropped, with Left (walking back from the end) the earlier ones.
// A sequence may so hold a little more than max_length tokens when truncate_encodings
// sees it, which decides which input of a pair LongestFirst cuts.
func (t *Tokenizer) encodeSeq(text string, seq int) (*enc, error) {
	if !utf8.ValidString(text) {
		return nil, ErrInvalidUTF8
	}
	right, left := 0, 0
	if tr := t.truncation; tr != nil {
		if tr.Direction == "Left" {
			left = tr.MaxLength
		} else {
			right = tr.MaxLength
		}
	}
	out := newEnc(len(text)/3 + 4)
	var words []int // with left: the first token of each word (-1 for an added token)
	emit := func(tk token, p nstr, special int) {
		off := p.toOriginal(tk.off[0], tk.off[1])
		out.push(tk.id, tk.value, seq, off, special, seq)
	}
	addAdded := func(a *AddedToken, off [2]int, value string) {
		sp := 0
		if a.Special {
			sp = 1
		}
		if left > 0 {
			words = append(words, -1)
		}
		out.push(a.ID, value, seq, off, sp, seq)
	}
	for _, sp := range t.rawMatcher.split(text) {
		if sp.tok != nil {
			addAdded(sp.tok, [2]int{sp.a, sp.b}, text[sp.a:sp.b])
			continue
		}
		p := newNstr(text, sp.a, sp.b)
		if t.normalizer != nil {
			p = t.normalizer.normalize(p)
		}
		for _, ns := range t.normMatcher.split(p.s) {
			q := p.slice(ns.a, ns.b)
			if ns.tok != nil {
				addAdded(ns.tok, q.toOriginal(0, len(q.s)), q.s)
				continue
			}
			if len(q.s) == 0 {
				continue
			}
			pieces := []nstr{q}
			if t.preTok != nil {
				pieces = t.preTok.split(q)
			}
			for _, pc := range pieces {
				toks, err := t.model.tokenize(pc.s)
				if err != nil {
					return nil, err
				}
				if left > 0 {
					words = append(words, out.len())
				}
				for _, tk := range toks {
					emit(tk, pc, 0)
				}
				if right > 0 && out.len() >= right {
					return out, nil
				}
			}
		}
	}
	if left > 0 && out.len() > left {
		for i := len(words) - 1; i >= 0; i-- {
			if start := words[i]; start >= 0 && out.len()-start >= left {
				out.keep(start, out.len())
				break
			}
		}
	}
	return out, nil
}

// keep keeps tokens [lo, hi).
func (e *enc) keep(lo, hi int) {
	e.ids, e.tokens, e.typeIDs = e.ids[lo:hi], e.tokens[lo:hi], e.typeIDs[lo:hi]
	e.offsets, e.special, e.seq = e.offsets[lo:hi], e.special[lo:hi], e.seq[lo:hi]
}

// Encode encodes one text; addSpecial adds the post-processor's special tokens.
func (t *Tokenizer) Encode(text string, addSpecial bool) (*Encoding, error) {
	return t.encode(text, nil, addSpecial)
}

// EncodePair encodes a pair of texts (type ids 0 and 1 for the usual templates).
func (t *Tokenizer) EncodePair(a, b string, addSpecial bool) (*Encoding, error) {
	return t.encode(a, &b, addSpecial)
}

func (t *Tokenizer) encode(a string, b *string, addSpecial bool) (*Encoding, error) {
	ea, err := t.encodeSeq(a, 0)
	if err != nil {
		return nil, err
	}
	var eb *enc
	if b != nil {
		if eb, err = t.encodeSeq(*b, 1); err != nil {
			return nil, err
		}
	}
	// HF converts offsets to characters before truncation and post-processing.
	toCharOffsets(ea, a)
	if eb != nil {
		toCharOffsets(eb, *b)
	}
	var aOver, bOver []*enc
	if t.truncation != nil {
		n := t.truncation.MaxLength
		if addSpecial && t.post != nil {
			n -= t.post.addedTokens(eb != nil)
		}
		if aOver, bOver, err = truncate(ea, eb, max(n, 0), t.truncation); err != nil {
			return nil, err
		}
	}
	texts := [2]string{a, ""}
	if b != nil {
		texts[1] = *b
	}
	reused := len(aOver)+len(bOver) > 0
	process := func(x, y *enc) *Encoding {
		if reused { // post-processors may change their inputs (offset trimming)
			x = x.clone()
			if y != nil {
				y = y.clone()
			}
		}
		if t.post != nil {
			return finish(t.post.process(x, y, addSpecial), texts)
		}
		return finish(defaultProcess(x, y), texts)
	}
	// Overflowing encodings in HF's order: each window of the first input with the
	// second input and with each of its windows, then the first input with each
	// window of the second.
	var over []*Encoding
	for _, ao := range aOver {
		over = append(over, process(ao, eb))
		for _, bo := range bOver {
			over = append(over, process(ao, bo))
		}
	}
	for _, bo := range bOver {
		over = append(over, process(ea, bo))
	}
	res := process(ea, eb)
	res.Overflowing = over
	if t.padding != nil {
		// Fixed pads to its length; BatchLongest pads a single encoding to its own
		// length (which pad_to_multiple_of may round up), as HF's post_process.
		n := t.padding.Length
		if n == 0 {
			n = res.Len()
		}
		t.pad([]*Encoding{res}, n)
	}
	return res, nil
}

// toCharOffsets converts the byte offsets of e (into text) to character offsets.
func toCharOffsets(e *enc, text string) {
	if len(e.offsets) == 0 {
		return
	}
	idx := charIndex(text)
	for i, o := range e.offsets {
		e.offsets[i] = byteToChar(idx, o)
	}
}

// finish fills the byte offsets (the characters' spans in bytes) and the masks.
func finish(e *enc, texts [2]string) *Encoding {
	var starts [2][]int
	res := &Encoding{
		IDs: e.ids, Tokens: e.tokens, TypeIDs: e.typeIDs, Offsets: e.offsets,
		SequenceIDs: e.seq, SpecialTokensMask: e.special,
		ByteOffsets:   make([][2]int, len(e.ids)),
		AttentionMask: make([]int, len(e.ids)),
	}
	for i := range e.ids {
		res.AttentionMask[i] = 1
		s := e.seq[i]
		if s < 0 {
			res.ByteOffsets[i] = e.offsets[i]
			continue
		}
		if starts[s] == nil {
			starts[s] = runeStarts(texts[s])
		}
		o := e.offsets[i]
		st := starts[s]
		if o[0] >= 0 && o[1] < len(st) && o[0] <= o[1] {
			res.ByteOffsets[i] = [2]int{st[o[0]], st[o[1]]}
		}
	}
	return res
}

// runeStarts returns the byte offset of every character of s, then len(s).
func runeStarts(s string) []int {
	st := make([]int, 0, len(s)+1)
	for i := range s {
		st = append(st, i)
	}
	return append(st, len(s))
}

// charIndex maps every byte offset of s (and len(s)) to the index of the character
// containing it.
func charIndex(s string) []int32 {
	idx := make([]int32, len(s)+1)
	c := int32(0)
	for i := 0; i < len(s); {
		_, n := utf8.DecodeRuneInString(s[i:])
		for k := 0; k < n; k++ {
			idx[i+k] = c
		}
		c++
		i += n
	}
	idx[len(s)] = c
	return idx
}

// byteToChar is HF's BytesToCharOffsetConverter: the start maps to its character,
// the end to one past the character holding its last byte.
func byteToChar(idx []int32, off [2]int) [2]int {
	a, b := off[0], off[1]
	if a < 0 || b > len(idx)-1 || a > b {
		return off
	}
	if a == b {
		return [2]int{int(idx[a]), int(idx[a])}
	}
	return [2]int{int(idx[a]), int(idx[b-1]) + 1}
}

// truncate shortens the encodings so that together they hold at most n tokens, and
// returns what was cut off each as HF's overflowing windows (Encoding::truncate):
// windows of the kept length, each starting stride tokens before the end of the
// previous one, over the whole sequence (the first window is what is kept).
func truncate(a, b *enc, n int, tr *Truncation) (aOver, bOver []*enc, err error) {
	var strideErr error
	cut := func(e *enc, keep int) []*enc {
		if keep >= e.len() {
			return nil
		}
		if keep == 0 {
			whole := e.clone()
			e.keep(0, 0)
			return []*enc{whole}
		}
		if tr.Stride >= keep {
			// HF's Encoding::truncate asserts this (and aborts the process).
			if strideErr == nil {
				strideErr = fmt.Errorf("truncation: stride %d must be less than the %d tokens kept of a sequence", tr.Stride, keep)
			}
			return nil
		}
		var windows [][2]int
		step, total := keep-tr.Stride, e.len()
		if tr.Direction == "Left" {
			for stop := total; stop > 0; stop -= step {
				start := max(stop-keep, 0)
				windows = append(windows, [2]int{start, stop})
				if start == 0 {
					break
				}
			}
		} else {
			for start := 0; start < total; start += step {
				stop := min(start+keep, total)
				windows = append(windows, [2]int{start, stop})
				if stop == total {
					break
				}
			}
		}
		var over []*enc
		for _, w := range windows[1:] {
			o := e.clone()
			o.keep(w[0], w[1])
			over = append(over, o)
		}
		e.keep(windows[0][0], windows[0][1])
		return over
	}
	if n == 0 { // HF: everything goes, whatever the strategy
		aOver = cut(a, 0)
		if b != nil {
			bOver = cut(b, 0)
		}
		return aOver, bOver, nil
	}
	total := a.len()
	if b != nil {
		total += b.len()
	}
	if total <= n {
		return nil, nil, nil
	}
	toRemove := total - n
	switch {
	case tr.Strategy == "OnlyFirst" || tr.Strategy == "OnlySecond":
		target := a
		if tr.Strategy == "OnlySecond" {
			if b == nil {
				return nil, nil, fmt.Errorf("truncation strategy OnlySecond needs a pair of sequences")
			}
			target = b
		}
		if target.len() <= toRemove {
			return nil, nil, fmt.Errorf("truncation: the sequence to truncate (%d tokens) is too short to fit max_length %d", target.len(), n)
		}
		over := cut(target, target.len()-toRemove)
		if target == a {
			aOver = over
		} else {
			bOver = over
		}
	case b == nil:
		aOver = cut(a, n)
	default: // LongestFirst: HF's truncate_encodings (utils/truncation.rs)
		n1, n2 := a.len(), b.len()
		swap := n1 > n2
		if swap {
			n1, n2 = n2, n1
		}
		if n1 > n {
			n2 = n1
		} else {
			n2 = max(n1, n-n1)
		}
		if n1+n2 > n {
			n1 = n / 2
			n2 = n1 + n%2
		}
		na, nb := n1, n2
		if swap {
			na, nb = n2, n1
		}
		aOver = cut(a, na)
		bOver = cut(b, nb)
	}
	if strideErr != nil {
		return nil, nil, strideErr
	}
	return aOver, bOver, nil
}

// clone returns a copy of e that shares no memory with it.
func (e *enc) clone() *enc {
	return &enc{ids: slices.Clone(e.ids), tokens: slices.Clone(e.tokens), typeIDs: slices.Clone(e.typeIDs),
		offsets: slices.Clone(e.offsets), special: slices.Clone(e.special), seq: slices.Clone(e.seq)}
}

// pad pads every encoding to length (rounded up to PadToMultipleOf).
func (t *Tokenizer) pad(encs []*Encoding, length int) {
	p := t.padding
	if p.PadToMultipleOf > 0 && length%p.PadToMultipleOf != 0 {
		length += p.PadToMultipleOf - length%p.PadToMultipleOf
	}
	for _, e := range encs {
		t.pad(e.Overflowing, length)
		k := length - e.Len()
		if k <= 0 {
			continue
		}
		ids, toks, types := make([]int, k), make([]string, k), make([]int, k)
		offs, seqs, spec, att := make([][2]int, k), make([]int, k), make([]int, k), make([]int, k)
		for i := 0; i < k; i++ {
			ids[i], toks[i], types[i], seqs[i], spec[i] = p.PadID, p.PadToken, p.PadTypeID, -1, 1
		}
		if p.Direction == "Left" {
			e.IDs, e.Tokens, e.TypeIDs = append(ids, e.IDs...), append(toks, e.Tokens...), append(types, e.TypeIDs...)
			e.Offsets, e.ByteOffsets = append(offs, e.Offsets...), append(append([][2]int(nil), offs...), e.ByteOffsets...)
			e.SequenceIDs, e.SpecialTokensMask, e.AttentionMask = append(seqs, e.SequenceIDs...), append(spec, e.SpecialTokensMask...), append(att, e.AttentionMask...)
		} else {
			e.IDs, e.Tokens, e.TypeIDs = append(e.IDs, ids...), append(e.Tokens, toks...), append(e.TypeIDs, types...)
			e.Offsets, e.ByteOffsets = append(e.Offsets, offs...), append(e.ByteOffsets, offs...)
			e.SequenceIDs, e.SpecialTokensMask, e.AttentionMask = append(e.SequenceIDs, seqs...), append(e.SpecialTokensMask, spec...), append(e.AttentionMask, att...)
		}
	}
}

// EncodeBatch encodes texts in parallel (one worker per CPU), then pads the batch
// if padding is configured. It stops early when ctx is cancelled.
func (t *Tokenizer) EncodeBatch(ctx context.Context, texts []string, addSpecial bool) ([]*Encoding, error) {
	out := make([]*Encoding, len(texts))
	workers := min(runtime.GOMAXPROCS(0), len(texts))
	var next int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	take := func() int {
		mu.Lock()
		defer mu.Unlock()
		if firstErr != nil {
			return -1
		}
		i := int(next)
		next++
		return i
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := take()
				if i < 0 || i >= len(texts) {
					return
				}
				if err := ctx.Err(); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				e, err := t.Encode(texts[i], addSpecial)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("text %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
				out[i] = e
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if t.padding != nil && t.padding.Length == 0 {
		longest := 0
		for _, e := range out {
			longest = max(longest, e.Len())
		}
		t.pad(out, longest)
	}
	return out, nil
}

// Decode turns ids back into text; skipSpecial drops special added tokens. Unknown
// ids are skipped, as in HF.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) (string, error) {
	toks := make([]string, 0, len(ids))
	for _, id := range ids {
		if a, ok := t.addedByID[id]; ok {
			if skipSpecial && a.Special {
				continue
			}
			if c, ok := t.normalizedContent[a]; ok {
				// HF decodes a normalized added token as its normalized form.
				toks = append(toks, c)
			} else {
				toks = append(toks, a.Content)
			}
			continue
		}
		tok, ok := t.model.idToToken(id)
		if !ok {
			continue
		}
		toks = append(toks, tok)
	}
	if t.dec == nil {
		return strings.Join(toks, " "), nil
	}
	return strings.Join(t.dec.decodeChain(toks), ""), nil
}
