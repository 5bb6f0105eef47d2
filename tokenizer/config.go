package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// fieldError names the JSON field of tokenizer.json that is wrong.
type fieldError struct {
	field string
	msg   string
}

func (e *fieldError) Error() string { return fmt.Sprintf("field %q: %s", e.field, e.msg) }

func ferr(field, format string, a ...any) error {
	return &fieldError{field: field, msg: fmt.Sprintf(format, a...)}
}

type rawObj map[string]json.RawMessage

func isNull(r json.RawMessage) bool {
	t := bytes.TrimSpace(r)
	return len(t) == 0 || string(t) == "null"
}

func decodeObj(raw json.RawMessage, field string) (rawObj, string, error) {
	var o rawObj
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, "", ferr(field, "expected a JSON object: %v", err)
	}
	var typ string
	if t, ok := o["type"]; ok && !isNull(t) {
		if err := json.Unmarshal(t, &typ); err != nil {
			return nil, "", ferr(field+".type", "expected a string")
		}
	}
	return o, typ, nil
}

// get decodes o[key] into v when present and not null.
func (o rawObj) get(field, key string, v any) error {
	r, ok := o[key]
	if !ok || isNull(r) {
		return nil
	}
	if err := json.Unmarshal(r, v); err != nil {
		return ferr(field+"."+key, "wrong type: %v", err)
	}
	return nil
}

// fields decodes, in order, each key of kv (key, pointer, key, pointer, ...) that
// is present and not null, and returns the first error.
func (o rawObj) fields(field string, kv ...any) error {
	for i := 0; i+1 < len(kv); i += 2 {
		if err := o.get(field, kv[i].(string), kv[i+1]); err != nil {
			return err
		}
	}
	return nil
}

func (o rawObj) has(key string) bool { r, ok := o[key]; return ok && !isNull(r) }

func (o rawObj) list(field, key string) ([]json.RawMessage, error) {
	var l []json.RawMessage
	if err := o.get(field, key, &l); err != nil {
		return nil, err
	}
	return l, nil
}

// parsePattern reads {"String": s} or {"Regex": r}.
func parsePattern(o rawObj, field string) (matcher, error) {
	var p struct {
		String *string `json:"String"`
		Regex  *string `json:"Regex"`
	}
	if err := o.get(field, "pattern", &p); err != nil {
		return nil, err
	}
	switch {
	case p.String != nil:
		return literalMatcher(*p.String), nil
	case p.Regex != nil:
		m, err := compilePattern(*p.Regex)
		if err != nil {
			return nil, ferr(field+".pattern.Regex", "%v", err)
		}
		return m, nil
	}
	return nil, ferr(field+".pattern", "expected {\"String\": ...} or {\"Regex\": ...}")
}

// parseComponent decodes one component object at field (null gives the zero T): a
// "Sequence" of the components listed under seqKey (parsed with parse, null ones
// left out) becomes seq(items), any other type one(o, field, type).
func parseComponent[T any](raw json.RawMessage, field, seqKey string, parse func(json.RawMessage, string) (T, error),
	seq func([]T) T, one func(o rawObj, field, typ string) (T, error)) (T, error) {
	var zero T
	if isNull(raw) {
		return zero, nil
	}
	o, typ, err := decodeObj(raw, field)
	if err != nil {
		return zero, err
	}
	if typ != "Sequence" {
		return one(o, field, typ)
	}
	l, err := o.list(field, seqKey)
	if err != nil {
		return zero, err
	}
	var items []T
	for i, r := range l {
		x, err := parse(r, fmt.Sprintf("%s.%s[%d]", field, seqKey, i))
		if err != nil {
			return zero, err
		}
		if any(x) != nil {
			items = append(items, x)
		}
	}
	return seq(items), nil
}

// parseReplace reads a Replace normalizer's or decoder's pattern and content.
func parseReplace(o rawObj, field string) (matcher, string, error) {
	p, err := parsePattern(o, field)
	if err != nil {
		return nil, "", err
	}
	var content string
	err = o.get(field, "content", &content)
	return p, content, err
}

func parseNormalizer(raw json.RawMessage, field string) (normalizer, error) {
	return parseComponent(raw, field, "normalizers", parseNormalizer,
		func(l []normalizer) normalizer { return seqNormalizer(l) }, normalizerOf)
}

// normalizerOf builds the normalizer of type typ (not Sequence) from its JSON object o.
func normalizerOf(o rawObj, field, typ string) (normalizer, error) {
	switch typ {
	case "NFC":
		return unicodeNormalizer{norm.NFC}, nil
	case "NFD":
		return unicodeNormalizer{norm.NFD}, nil
	case "NFKC":
		return unicodeNormalizer{norm.NFKC}, nil
	case "NFKD":
		return unicodeNormalizer{norm.NFKD}, nil
	case "Lowercase":
		return lowercaseNormalizer{}, nil
	case "StripAccents":
		return stripAccentsNormalizer{}, nil
	case "Strip":
		s := stripNormalizer{left: true, right: true}
		if err := o.fields(field, "strip_left", &s.left, "strip_right", &s.right); err != nil {
			return nil, err
		}
		return s, nil
	case "Replace":
		p, content, err := parseReplace(o, field)
		if err != nil {
			return nil, err
		}
		return replaceNormalizer{pat: p, content: content}, nil
	case "Prepend":
		var s string
		if err := o.get(field, "prepend", &s); err != nil {
			return nil, err
		}
		return prependNormalizer{s}, nil
	case "BertNormalizer":
		b := bertNormalizer{cleanText: true, chinese: true, lowercase: true}
		var strip *bool
		for k, v := range map[string]*bool{"clean_text": &b.cleanText, "handle_chinese_chars": &b.chinese, "lowercase": &b.lowercase} {
			if err := o.get(field, k, v); err != nil {
				return nil, err
			}
		}
		if err := o.get(field, "strip_accents", &strip); err != nil {
			return nil, err
		}
		b.stripAccents = b.lowercase
		if strip != nil {
			b.stripAccents = *strip
		}
		return b, nil
	case "Precompiled":
		var b64 string
		if err := o.get(field, "precompiled_charsmap", &b64); err != nil {
			return nil, err
		}
		cm, err := parseCharsmapBase64(b64)
		if err != nil {
			return nil, ferr(field+".precompiled_charsmap", "%v", err)
		}
		return precompiledNormalizer{cm}, nil
	case "ByteLevel":
		return byteLevelNormalizer{}, nil
	case "":
		return nil, ferr(field+".type", "missing normalizer type")
	}
	return nil, ferr(field+".type", "unsupported normalizer %q", typ)
}

// byteLevelNormalizer maps every byte to its byte-level character.
type byteLevelNormalizer struct{}

func (byteLevelNormalizer) normalize(p nstr) nstr { return byteLevelTransform(p) }

func parseBehavior(o rawObj, field string, def splitBehavior) (splitBehavior, error) {
	var s string
	if err := o.get(field, "behavior", &s); err != nil {
		return 0, err
	}
	switch s {
	case "":
		return def, nil
	case "Removed":
		return splitRemoved, nil
	case "Isolated":
		return splitIsolated, nil
	case "MergedWithPrevious":
		return splitMergedWithPrevious, nil
	case "MergedWithNext":
		return splitMergedWithNext, nil
	case "Contiguous":
		return splitContiguous, nil
	}
	return 0, ferr(field+".behavior", "unknown split behavior %q", s)
}

func parsePrependScheme(o rawObj, field string) (string, error) {
	scheme := "always"
	if o.has("add_prefix_space") {
		var b bool
		if err := o.get(field, "add_prefix_space", &b); err != nil {
			return "", err
		}
		if !b {
			scheme = "never"
		}
	}
	var s string
	if err := o.get(field, "prepend_scheme", &s); err != nil {
		return "", err
	}
	switch s {
	case "":
	case "always", "first", "never":
		scheme = s
	default:
		return "", ferr(field+".prepend_scheme", "expected always, first or never, got %q", s)
	}
	return scheme, nil
}

func parseReplacement(o rawObj, field string) (string, error) {
	rep := "▁"
	if err := o.get(field, "replacement", &rep); err != nil {
		return "", err
	}
	if utf8.RuneCountInString(rep) != 1 {
		return "", ferr(field+".replacement", "expected one character, got %q", rep)
	}
	return rep, nil
}

func parsePreTokenizer(raw json.RawMessage, field string) (preTokenizer, error) {
	return parseComponent(raw, field, "pretokenizers", parsePreTokenizer,
		func(l []preTokenizer) preTokenizer { return seqPreTokenizer(l) }, preTokenizerOf)
}

// preTokenizerOf builds the preTokenizer of type typ (not Sequence) from its JSON object o.
func preTokenizerOf(o rawObj, field, typ string) (preTokenizer, error) {
	switch typ {
	case "ByteLevel":
		b := byteLevelPreTokenizer{addPrefixSpace: true, useRegex: true}
		if err := o.fields(field, "add_prefix_space", &b.addPrefixSpace, "use_regex", &b.useRegex); err != nil {
			return nil, err
		}
		return b, nil
	case "Whitespace":
		return whitespacePreTokenizer{}, nil
	case "UnicodeScripts":
		return unicodeScriptsPreTokenizer{}, nil
	case "WhitespaceSplit":
		return runeSplitter{pred: isSpace, behavior: splitRemoved}, nil
	case "BertPreTokenizer":
		return bertPreTokenizer{}, nil
	case "Metaspace":
		rep, err := parseReplacement(o, field)
		if err != nil {
			return nil, err
		}
		scheme, err := parsePrependScheme(o, field)
		if err != nil {
			return nil, err
		}
		m := metaspacePreTokenizer{replacement: rep, prepend: scheme, split_: true}
		if err := o.get(field, "split", &m.split_); err != nil {
			return nil, err
		}
		return m, nil
	case "Split":
		p, err := parsePattern(o, field)
		if err != nil {
			return nil, err
		}
		beh, err := parseBehavior(o, field, splitRemoved)
		if err != nil {
			return nil, err
		}
		s := splitPreTokenizer{pat: p, behavior: beh}
		if err := o.get(field, "invert", &s.invert); err != nil {
			return nil, err
		}
		return s, nil
	case "Punctuation":
		beh, err := parseBehavior(o, field, splitIsolated)
		if err != nil {
			return nil, err
		}
		return runeSplitter{pred: isBertPunct, behavior: beh}, nil
	case "Digits":
		var individual bool
		if err := o.get(field, "individual_digits", &individual); err != nil {
			return nil, err
		}
		beh := splitContiguous
		if individual {
			beh = splitIsolated
		}
		return runeSplitter{pred: isN, behavior: beh}, nil
	case "CharDelimiterSplit":
		var d string
		if err := o.get(field, "delimiter", &d); err != nil {
			return nil, err
		}
		r, n := utf8.DecodeRuneInString(d)
		if n == 0 || n != len(d) {
			return nil, ferr(field+".delimiter", "expected one character, got %q", d)
		}
		return runeSplitter{pred: func(c rune) bool { return c == r }, behavior: splitRemoved}, nil
	case "":
		return nil, ferr(field+".type", "missing pre-tokenizer type")
	}
	return nil, ferr(field+".type", "unsupported pre-tokenizer %q", typ)
}

func parseProcessor(raw json.RawMessage, field string, t *Tokenizer) (postProcessor, error) {
	return parseComponent(raw, field, "processors", func(r json.RawMessage, f string) (postProcessor, error) { return parseProcessor(r, f, t) },
		func(l []postProcessor) postProcessor { return seqProcessor(l) }, func(o rawObj, field, typ string) (postProcessor, error) { return processorOf(o, field, typ, t) })
}

// processorOf builds the postProcessor of type typ (not Sequence) from its JSON object o.
func processorOf(o rawObj, field, typ string, t *Tokenizer) (postProcessor, error) {
	pairTok := func(key string) (string, int, error) {
		var v [2]json.RawMessage
		if err := o.get(field, key, &v); err != nil {
			return "", 0, err
		}
		var s string
		var id int
		if err := json.Unmarshal(v[0], &s); err != nil {
			return "", 0, ferr(field+"."+key, "expected [token, id]")
		}
		if err := json.Unmarshal(v[1], &id); err != nil {
			return "", 0, ferr(field+"."+key, "expected [token, id]")
		}
		return s, id, nil
	}
	switch typ {
	case "ByteLevel":
		b := byteLevelProcessor{trimOffsets: true, addPrefixSpace: true}
		if err := o.fields(field, "trim_offsets", &b.trimOffsets, "add_prefix_space", &b.addPrefixSpace); err != nil {
			return nil, err
		}
		return b, nil
	case "BertProcessing":
		sepT, sep, err := pairTok("sep")
		if err != nil {
			return nil, err
		}
		clsT, cls, err := pairTok("cls")
		if err != nil {
			return nil, err
		}
		return bertProcessor{clsSep{sepTok: sepT, sep: sep, clsTok: clsT, cls: cls}}, nil
	case "RobertaProcessing":
		sepT, sep, err := pairTok("sep")
		if err != nil {
			return nil, err
		}
		clsT, cls, err := pairTok("cls")
		if err != nil {
			return nil, err
		}
		r := robertaProcessor{clsSep: clsSep{sepTok: sepT, sep: sep, clsTok: clsT, cls: cls}, trimOffsets: true, addPrefixSpace: true}
		if err := o.fields(field, "trim_offsets", &r.trimOffsets, "add_prefix_space", &r.addPrefixSpace); err != nil {
			return nil, err
		}
		return r, nil
	case "TemplateProcessing":
		tp := templateProcessor{specials: map[string]specialTokenDef{}}
		var specials map[string]struct {
			ID     string   `json:"id"`
			IDs    []int    `json:"ids"`
			Tokens []string `json:"tokens"`
		}
		if err := o.get(field, "special_tokens", &specials); err != nil {
			return nil, err
		}
		for k, v := range specials {
			if len(v.IDs) != len(v.Tokens) {
				return nil, ferr(field+".special_tokens."+k, "ids and tokens differ in length")
			}
			tp.specials[k] = specialTokenDef{ids: v.IDs, tokens: v.Tokens}
		}
		for _, key := range []string{"single", "pair"} {
			var pieces []struct {
				Special *struct {
					ID     string `json:"id"`
					TypeID int    `json:"type_id"`
				} `json:"SpecialToken"`
				Sequence *struct {
					ID     string `json:"id"`
					TypeID int    `json:"type_id"`
				} `json:"Sequence"`
			}
			if err := o.get(field, key, &pieces); err != nil {
				return nil, err
			}
			var tpl []templatePiece
			for i, p := range pieces {
				f := fmt.Sprintf("%s.%s[%d]", field, key, i)
				switch {
				case p.Special != nil:
					if _, ok := tp.specials[p.Special.ID]; !ok {
						return nil, ferr(f, "special token %q is not in special_tokens", p.Special.ID)
					}
					tpl = append(tpl, templatePiece{special: true, id: p.Special.ID, typeID: p.Special.TypeID})
				case p.Sequence != nil:
					if p.Sequence.ID != "A" && p.Sequence.ID != "B" {
						return nil, ferr(f, "sequence id must be A or B, got %q", p.Sequence.ID)
					}
					tpl = append(tpl, templatePiece{id: p.Sequence.ID, typeID: p.Sequence.TypeID})
				default:
					return nil, ferr(f, "expected SpecialToken or Sequence")
				}
			}
			if key == "single" {
				tp.single = tpl
			} else {
				tp.pair = tpl
			}
		}
		return tp, nil
	case "":
		return nil, ferr(field+".type", "missing post-processor type")
	}
	return nil, ferr(field+".type", "unsupported post-processor %q", typ)
}

func parseDecoder(raw json.RawMessage, field string) (decoder, error) {
	return parseComponent(raw, field, "decoders", parseDecoder,
		func(l []decoder) decoder { return seqDecoder(l) }, decoderOf)
}

// decoderOf builds the decoder of type typ (not Sequence) from its JSON object o.
func decoderOf(o rawObj, field, typ string) (decoder, error) {
	switch typ {
	case "ByteLevel":
		return byteLevelDecoder{}, nil
	case "WordPiece":
		d := wordPieceDecoder{prefix: "##", cleanup: true}
		if err := o.fields(field, "prefix", &d.prefix, "cleanup", &d.cleanup); err != nil {
			return nil, err
		}
		return d, nil
	case "Metaspace":
		rep, err := parseReplacement(o, field)
		if err != nil {
			return nil, err
		}
		scheme, err := parsePrependScheme(o, field)
		if err != nil {
			return nil, err
		}
		r, _ := utf8.DecodeRuneInString(rep)
		return metaspaceDecoder{replacement: r, prepend: scheme}, nil
	case "ByteFallback":
		return byteFallbackDecoder{}, nil
	case "Fuse":
		return fuseDecoder{}, nil
	case "Replace":
		p, content, err := parseReplace(o, field)
		if err != nil {
			return nil, err
		}
		return replaceDecoder{pat: p, content: content}, nil
	case "Strip":
		var content string
		d := stripDecoder{}
		if err := o.get(field, "content", &content); err != nil {
			return nil, err
		}
		r, n := utf8.DecodeRuneInString(content)
		if n == 0 || n != len(content) {
			return nil, ferr(field+".content", "expected one character, got %q", content)
		}
		d.content = r
		if err := o.fields(field, "start", &d.start, "stop", &d.stop); err != nil {
			return nil, err
		}
		return d, nil
	case "BPEDecoder":
		d := bpeDecoder{suffix: "</w>"}
		if err := o.get(field, "suffix", &d.suffix); err != nil {
			return nil, err
		}
		return d, nil
	case "CTC":
		d := ctcDecoder{pad: "<pad>", delim: "|", cleanup: true}
		for k, v := range map[string]*string{"pad_token": &d.pad, "word_delimiter_token": &d.delim} {
			if err := o.get(field, k, v); err != nil {
				return nil, err
			}
		}
		if err := o.get(field, "cleanup", &d.cleanup); err != nil {
			return nil, err
		}
		return d, nil
	case "":
		return nil, ferr(field+".type", "missing decoder type")
	}
	return nil, ferr(field+".type", "unsupported decoder %q", typ)
}

func byteTokenTable(ids map[string]int) [256]int {
	var t [256]int
	for b := range t {
		id, ok := ids[fmt.Sprintf("<0x%02X>", b)]
		if !ok {
			id = -1
		}
		t[b] = id
	}
	return t
}

func parseModel(raw json.RawMessage, field string) (model, error) {
	if isNull(raw) {
		return nil, ferr(field, "missing model")
	}
	o, typ, err := decodeObj(raw, field)
	if err != nil {
		return nil, err
	}
	if typ == "" {
		switch {
		case o.has("merges"):
			typ = "BPE"
		case o.has("max_input_chars_per_word"):
			typ = "WordPiece"
		case o.has("unk_id"):
			typ = "Unigram"
		default:
			typ = "WordLevel"
		}
	}
	strVocab := func() (map[string]int, error) {
		var v map[string]int
		if err := o.get(field, "vocab", &v); err != nil {
			return nil, err
		}
		if v == nil {
			return nil, ferr(field+".vocab", "missing vocabulary")
		}
		for tok, id := range v {
			if id < 0 || id > 1<<26 {
				return nil, ferr(field+".vocab", "token %q has id %d out of range", tok, id)
			}
		}
		return v, nil
	}
	switch typ {
	case "BPE":
		ids, err := strVocab()
		if err != nil {
			return nil, err
		}
		m := &bpeModel{vocab: newVocab(ids)}
		var unk, prefix, suffix *string
		for k, v := range map[string]**string{"unk_token": &unk, "continuing_subword_prefix": &prefix, "end_of_word_suffix": &suffix} {
			if err := o.get(field, k, v); err != nil {
				return nil, err
			}
		}
		if unk != nil {
			m.unk, m.hasUnk = *unk, true
		}
		if prefix != nil {
			m.prefix = *prefix
		}
		if suffix != nil {
			m.suffix = *suffix
		}
		for k, v := range map[string]*bool{"fuse_unk": &m.fuseUnk, "byte_fallback": &m.byteFallback, "ignore_merges": &m.ignoreMerges} {
			if err := o.get(field, k, v); err != nil {
				return nil, err
			}
		}
		var dropout *float64
		if err := o.get(field, "dropout", &dropout); err != nil {
			return nil, err
		}
		if dropout != nil && *dropout > 0 {
			return nil, ferr(field+".dropout", "BPE dropout is not supported (it makes encoding random)")
		}
		m.byteTokens = byteTokenTable(ids)
		rawMerges, err := o.list(field, "merges")
		if err != nil {
			return nil, err
		}
		m.merges = make(map[uint64]mergeInfo, len(rawMerges))
		for rank, r := range rawMerges {
			f := fmt.Sprintf("%s.merges[%d]", field, rank)
			var a, b string
			var s string
			var arr []string
			if err := json.Unmarshal(r, &s); err == nil {
				var ok bool
				a, b, ok = strings.Cut(s, " ")
				if !ok || strings.Contains(b, " ") {
					return nil, ferr(f, "expected two tokens separated by one space, got %q", s)
				}
			} else if err := json.Unmarshal(r, &arr); err == nil && len(arr) == 2 {
				a, b = arr[0], arr[1]
			} else {
				return nil, ferr(f, "expected \"a b\" or [\"a\", \"b\"]")
			}
			ia, ok1 := ids[a]
			ib, ok2 := ids[b]
			if !ok1 || !ok2 {
				return nil, ferr(f, "merge %q + %q uses a token missing from the vocabulary", a, b)
			}
			nb := b
			if m.prefix != "" {
				nb = strings.TrimPrefix(b, m.prefix)
			}
			in, ok := ids[a+nb]
			if !ok {
				return nil, ferr(f, "merged token %q is missing from the vocabulary", a+nb)
			}
			if _, dup := m.merges[pairKey(ia, ib)]; !dup {
				m.merges[pairKey(ia, ib)] = mergeInfo{rank: rank, id: in}
			}
		}
		return m, nil
	case "WordPiece":
		ids, err := strVocab()
		if err != nil {
			return nil, err
		}
		m := &wordPieceModel{vocab: newVocab(ids), unk: "[UNK]", prefix: "##", maxChars: 100}
		if err := o.fields(field, "unk_token", &m.unk, "continuing_subword_prefix", &m.prefix, "max_input_chars_per_word", &m.maxChars); err != nil {
			return nil, err
		}
		return m, nil
	case "WordLevel":
		ids, err := strVocab()
		if err != nil {
			return nil, err
		}
		m := &wordLevelModel{vocab: newVocab(ids), unk: "<unk>"}
		if err := o.get(field, "unk_token", &m.unk); err != nil {
			return nil, err
		}
		return m, nil
	case "Unigram":
		var entries [][2]json.RawMessage
		if err := o.get(field, "vocab", &entries); err != nil {
			return nil, err
		}
		ids := make(map[string]int, len(entries))
		m := &unigramModel{unkID: -1, fuseUnk: true, scores: make([]float64, len(entries)), minScore: math.Inf(1)}
		for i, e := range entries {
			var tok string
			var sc float64
			if json.Unmarshal(e[0], &tok) != nil || json.Unmarshal(e[1], &sc) != nil {
				return nil, ferr(fmt.Sprintf("%s.vocab[%d]", field, i), "expected [piece, score]")
			}
			if _, dup := ids[tok]; !dup {
				ids[tok] = i
			}
			m.scores[i] = sc
			m.minScore = min(m.minScore, sc)
			m.maxLen = max(m.maxLen, len(tok))
		}
		m.vocab = newVocab(ids)
		var unk *int
		if err := o.get(field, "unk_id", &unk); err != nil {
			return nil, err
		}
		if unk != nil {
			if *unk < 0 || *unk >= len(entries) {
				return nil, ferr(field+".unk_id", "%d is outside the vocabulary of %d pieces", *unk, len(entries))
			}
			m.unkID = *unk
		}
		if err := o.get(field, "byte_fallback", &m.byteFallback); err != nil {
			return nil, err
		}
		m.byteTokens = byteTokenTable(ids)
		return m, nil
	}
	return nil, ferr(field+".type", "unsupported model %q", typ)
}
