package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// enc is an encoding under construction: offsets relative to the text of its
// sequence (seq 0 or 1; -1 for special tokens added by a post-processor), in bytes
// out of encodeSeq and in characters from post-processing on, as in HF.
type enc struct {
	ids     []int
	tokens  []string
	typeIDs []int
	offsets [][2]int
	special []int
	seq     []int
}

func (e *enc) len() int { return len(e.ids) }

// newEnc returns an empty encoding with room for n tokens.
func newEnc(n int) *enc {
	return &enc{ids: make([]int, 0, n), tokens: make([]string, 0, n), typeIDs: make([]int, 0, n),
		offsets: make([][2]int, 0, n), special: make([]int, 0, n), seq: make([]int, 0, n)}
}

func encLen(a, b *enc) int {
	if b == nil {
		return a.len()
	}
	return a.len() + b.len()
}

func (e *enc) push(id int, tok string, typeID int, off [2]int, special, seq int) {
	e.ids = append(e.ids, id)
	e.tokens = append(e.tokens, tok)
	e.typeIDs = append(e.typeIDs, typeID)
	e.offsets = append(e.offsets, off)
	e.special = append(e.special, special)
	e.seq = append(e.seq, seq)
}

func (e *enc) appendEnc(o *enc, typeID int, setType bool) {
	for i := range o.ids {
		t := o.typeIDs[i]
		if setType {
			t = typeID
		}
		e.push(o.ids[i], o.tokens[i], t, o.offsets[i], o.special[i], o.seq[i])
	}
}

// postProcessor adds special tokens and sets type ids (HF's PostProcessor).
type postProcessor interface {
	process(a, b *enc, addSpecial bool) *enc
	addedTokens(pair bool) int
}

// defaultProcess concatenates the encodings, keeping their type ids.
func defaultProcess(a, b *enc) *enc {
	out := newEnc(encLen(a, b) + 4)
	out.appendEnc(a, 0, false)
	if b != nil {
		out.appendEnc(b, 0, false)
	}
	return out
}

type templatePiece struct {
	special bool
	id      string // "A"/"B" for sequences, the special token name otherwise
	typeID  int
}

type specialTokenDef struct {
	ids    []int
	tokens []string
}

type templateProcessor struct {
	single, pair []templatePiece
	specials     map[string]specialTokenDef
}

func (t templateProcessor) addedTokens(pair bool) int {
	tpl := t.single
	if pair {
		tpl = t.pair
	}
	n := 0
	for _, p := range tpl {
		if p.special {
			n += len(t.specials[p.id].ids)
		}
	}
	return n
}

func (t templateProcessor) process(a, b *enc, addSpecial bool) *enc {
	tpl := t.single
	if b != nil {
		tpl = t.pair
	}
	out := newEnc(encLen(a, b) + 4)
	for _, p := range tpl {
		if !p.special {
			if p.id == "A" {
				out.appendEnc(a, p.typeID, true)
			} else if b != nil {
				out.appendEnc(b, p.typeID, true)
			}
			continue
		}
		if !addSpecial {
			continue
		}
		sp := t.specials[p.id]
		for k, id := range sp.ids {
			out.push(id, sp.tokens[k], p.typeID, [2]int{0, 0}, 1, -1)
		}
	}
	return out
}

// clsSep is the special tokens of BertProcessing and RobertaProcessing.
type clsSep struct {
	sepTok, clsTok string
	sep, cls       int
}

// wrap returns cls A sep, and for a pair then sep (twice with doubleSep) B sep, B
// and its sep taking type id bType.
func (c clsSep) wrap(a, b *enc, bType int, doubleSep bool) *enc {
	out := newEnc(encLen(a, b) + 4)
	out.push(c.cls, c.clsTok, 0, [2]int{}, 1, -1)
	out.appendEnc(a, 0, true)
	out.push(c.sep, c.sepTok, 0, [2]int{}, 1, -1)
	if b != nil {
		if doubleSep {
			out.push(c.sep, c.sepTok, bType, [2]int{}, 1, -1)
		}
		out.appendEnc(b, bType, true)
		out.push(c.sep, c.sepTok, bType, [2]int{}, 1, -1)
	}
	return out
}

// bertProcessor: [CLS] A [SEP] (B [SEP]), type ids 0 then 1.
type bertProcessor struct{ clsSep }

func (bertProcessor) addedTokens(pair bool) int {
	if pair {
		return 3
	}
	return 2
}

func (p bertProcessor) process(a, b *enc, addSpecial bool) *enc {
	if !addSpecial {
		return defaultProcess(a, b)
	}
	return p.wrap(a, b, 1, false)
}

// robertaProcessor: <s> A </s> (</s> B </s>), all type ids 0 (as HF's
// RobertaProcessing gives the second sequence), with optional offset trimming.
type robertaProcessor struct {
	clsSep
	trimOffsets    bool
	addPrefixSpace bool
}

func (robertaProcessor) addedTokens(pair bool) int {
	if pair {
		return 4
	}
	return 2
}

func (p robertaProcessor) process(a, b *enc, addSpecial bool) *enc {
	if p.trimOffsets {
		trimByteLevelOffsets(a, p.addPrefixSpace)
		if b != nil {
			trimByteLevelOffsets(b, p.addPrefixSpace)
		}
	}
	if !addSpecial {
		return defaultProcess(a, b)
	}
	return p.wrap(a, b, 0, true)
}

// byteLevelProcessor trims offsets (if trim_offsets) and gives sequence i type id i.
type byteLevelProcessor struct {
	trimOffsets, addPrefixSpace bool
}

func (byteLevelProcessor) addedTokens(bool) int { return 0 }

func (p byteLevelProcessor) process(a, b *enc, addSpecial bool) *enc {
	if p.trimOffsets {
		trimByteLevelOffsets(a, p.addPrefixSpace)
		if b != nil {
			trimByteLevelOffsets(b, p.addPrefixSpace)
		}
	}
	out := newEnc(encLen(a, b) + 4)
	out.appendEnc(a, 0, true)
	if b != nil {
		out.appendEnc(b, 1, true)
	}
	return out
}

// trimByteLevelOffsets is HF's byte_level::process_offsets: leading and trailing
// 'Ġ' (encoded spaces) or whitespace are excluded from each token's offsets.
func trimByteLevelOffsets(e *enc, addPrefixSpace bool) {
	isSp := func(r rune) bool { return r == 'Ġ' || unicode.IsSpace(r) }
	for i, tok := range e.tokens {
		lead := 0
		for _, r := range tok {
			if !isSp(r) {
				break
			}
			lead++
		}
		trail := 0
		for s := tok; len(s) > 0; {
			r, n := utf8.DecodeLastRuneInString(s)
			if !isSp(r) {
				break
			}
			trail++
			s = s[:len(s)-n]
		}
		off := &e.offsets[i]
		if lead > 0 {
			if (i == 0 || off[0] == 0) && addPrefixSpace && lead == 1 {
				lead = 0
			}
			off[0] = min(off[0]+lead, off[1])
		}
		if trail > 0 && off[1] >= trail {
			off[1] = max(off[1]-trail, off[0])
		}
	}
}

type seqProcessor []postProcessor

func (s seqProcessor) addedTokens(pair bool) int {
	n := 0
	for _, p := range s {
		n += p.addedTokens(pair)
	}
	return n
}

// process applies the processors in turn; HF's Sequence passes the encodings through
// each one, so a processor that merges (adding specials) is expected to be last.
func (s seqProcessor) process(a, b *enc, addSpecial bool) *enc {
	if len(s) == 0 {
		return defaultProcess(a, b)
	}
	for i, p := range s {
		if i == len(s)-1 {
			return p.process(a, b, addSpecial)
		}
		switch q := p.(type) {
		case byteLevelProcessor:
			if q.trimOffsets {
				trimByteLevelOffsets(a, q.addPrefixSpace)
				if b != nil {
					trimByteLevelOffsets(b, q.addPrefixSpace)
				}
			}
		default:
			// Other processors merge the sequences: apply to the merged result.
			a, b = p.process(a, b, addSpecial), nil
		}
	}
	return a
}
