package tokenizer

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// token is a model output: id, string and byte offsets into the piece it came from.
type token struct {
	id    int
	value string
	off   [2]int
}

// model turns one pre-tokenized piece into tokens.
type model interface {
	tokenize(s string) ([]token, error)
	tokenToID(tok string) (int, bool)
	idToToken(id int) (string, bool)
	vocabSize() int
}

// vocab is a token <-> id table shared by the models.
type vocab struct {
	ids  map[string]int
	toks []string // by id; "" where no token has that id
}

func newVocab(m map[string]int) vocab {
	maxID := -1
	for _, id := range m {
		if id > maxID {
			maxID = id
		}
	}
	toks := make([]string, maxID+1)
	for t, id := range m {
		toks[id] = t
	}
	return vocab{ids: m, toks: toks}
}

func (v vocab) tokenToID(t string) (int, bool) { id, ok := v.ids[t]; return id, ok }
func (v vocab) idToToken(id int) (string, bool) {
	if id < 0 || id >= len(v.toks) {
		return "", false
	}
	t := v.toks[id]
	if t == "" {
		if got, ok := v.ids[""]; !ok || got != id {
			return "", false
		}
	}
	return t, true
}
func (v vocab) vocabSize() int { return len(v.ids) }

// ---- BPE ----

// pairKey packs the ids of a merge pair into one map key.
func pairKey(a, b int) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

type mergeInfo struct{ rank, id int }

// bpeModel is HF's BPE model (merges applied by rank, lowest first, leftmost among ties).
type bpeModel struct {
	vocab
	merges       map[uint64]mergeInfo
	unk          string
	hasUnk       bool
	prefix       string // continuing_subword_prefix
	suffix       string // end_of_word_suffix
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
	byteTokens   [256]int     // ids of <0xXX>, -1 if absent
	cache        sync.Map     // string -> []token (immutable once stored)
	cacheSize    atomic.Int64 // entries stored, bounded by bpeCacheMaxWords
}

// Words of at most bpeCacheMaxLen bytes are cached, up to bpeCacheMaxWords of them.
const (
	bpeCacheMaxLen   = 64
	bpeCacheMaxWords = 1 << 17
)

type symbol struct {
	id     int
	start  int
	length int
}

func (m *bpeModel) tokenize(s string) ([]token, error) {
	if s == "" {
		return nil, nil
	}
	cacheable := len(s) <= bpeCacheMaxLen
	if cacheable {
		if v, ok := m.cache.Load(s); ok {
			return v.([]token), nil
		}
	}
	if m.ignoreMerges {
		if id, ok := m.ids[s]; ok {
			return []token{{id: id, value: s, off: [2]int{0, len(s)}}}, nil
		}
	}
	syms, err := m.initialSymbols(s)
	if err != nil {
		return nil, err
	}
	syms = m.mergeAll(syms)
	toks := make([]token, len(syms))
	for i, sy := range syms {
		toks[i] = token{id: sy.id, value: m.toks[sy.id], off: [2]int{sy.start, sy.start + sy.length}}
	}
	if cacheable && m.cacheSize.Load() < bpeCacheMaxWords {
		if _, loaded := m.cache.LoadOrStore(s, toks); !loaded {
			m.cacheSize.Add(1)
		}
	}
	return toks, nil
}

func (m *bpeModel) initialSymbols(w string) ([]symbol, error) {
	syms := make([]symbol, 0, len(w))
	unkID, unkStart, unkLen := -1, 0, 0
	flushUnk := func() {
		if unkID >= 0 {
			syms = append(syms, symbol{unkID, unkStart, unkLen})
			unkID = -1
		}
	}
	for i := 0; i < len(w); {
		_, n := utf8.DecodeRuneInString(w[i:])
		str := w[i : i+n]
		if (m.prefix != "" && i > 0) || (m.suffix != "" && i+n == len(w)) {
			if i > 0 {
				str = m.prefix + str
			}
			if i+n == len(w) {
				str += m.suffix
			}
		}
		if id, ok := m.ids[str]; ok {
			flushUnk()
			syms = append(syms, symbol{id, i, n})
			i += n
			continue
		}
		if m.byteFallback {
			all := true
			for k := 0; k < len(str); k++ {
				if m.byteTokens[str[k]] < 0 {
					all = false
					break
				}
			}
			if all {
				// HF adds one byte token per byte of the (prefixed) string, each of length 1.
				pos := i
				for k := 0; k < len(str); k++ {
					syms = append(syms, symbol{m.byteTokens[str[k]], pos, 1})
					pos++
				}
				i += n
				continue
			}
		}
		if m.hasUnk {
			id, ok := m.ids[m.unk]
			if !ok {
				return nil, fmt.Errorf("unk_token %q is not in the vocabulary", m.unk)
			}
			switch {
			case unkID >= 0 && m.fuseUnk:
				unkLen += n
			case unkID >= 0:
				flushUnk()
				unkID, unkStart, unkLen = id, i, n
			default:
				unkID, unkStart, unkLen = id, i, n
			}
		}
		i += n
	}
	flushUnk()
	return syms, nil
}

// mergeAll applies the merges, lowest rank first and leftmost among equal ranks, as
// HF's Word::merge_all. Short words use a direct scan; long ones (a whole file for
// tokenizers without a pre-tokenizer) a priority queue over a linked list, O(n log n).
func (m *bpeModel) mergeAll(syms []symbol) []symbol {
	if len(syms) > 24 {
		return m.mergeHeap(syms)
	}
	for len(syms) > 1 {
		best, bestRank, bestID := -1, math.MaxInt, 0
		for i := 0; i+1 < len(syms); i++ {
			if mi, ok := m.merges[pairKey(syms[i].id, syms[i+1].id)]; ok && mi.rank < bestRank {
				best, bestRank, bestID = i, mi.rank, mi.id
			}
		}
		if best < 0 {
			break
		}
		syms[best] = symbol{bestID, syms[best].start, syms[best].length + syms[best+1].length}
		syms = append(syms[:best+1], syms[best+2:]...)
	}
	return syms
}

type mergeItem struct{ rank, pos, id int }

// mergeQueue is a binary min-heap ordered by (rank, pos).
type mergeQueue []mergeItem

func (q mergeQueue) less(i, j int) bool {
	return q[i].rank < q[j].rank || q[i].rank == q[j].rank && q[i].pos < q[j].pos
}

func (q *mergeQueue) push(x mergeItem) {
	*q = append(*q, x)
	h := *q
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (q *mergeQueue) pop() mergeItem {
	h := *q
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	for i := 0; ; {
		l, r, s := 2*i+1, 2*i+2, i
		if l < n && h.less(l, s) {
			s = l
		}
		if r < n && h.less(r, s) {
			s = r
		}
		if s == i {
			break
		}
		h[i], h[s] = h[s], h[i]
		i = s
	}
	*q = h
	return top
}

func (m *bpeModel) mergeHeap(syms []symbol) []symbol {
	n := len(syms)
	prev := make([]int, n)
	next := make([]int, n)
	for i := range syms {
		prev[i], next[i] = i-1, i+1
	}
	next[n-1] = -1
	q := make(mergeQueue, 0, n)
	for i := 0; i+1 < n; i++ {
		if mi, ok := m.merges[pairKey(syms[i].id, syms[i+1].id)]; ok {
			q.push(mergeItem{mi.rank, i, mi.id})
		}
	}
	for len(q) > 0 {
		top := q.pop()
		cur := &syms[top.pos]
		if cur.length == 0 || next[top.pos] < 0 {
			continue
		}
		np := next[top.pos]
		right := syms[np]
		if mi, ok := m.merges[pairKey(cur.id, right.id)]; !ok || mi.id != top.id {
			continue // stale entry
		}
		cur.id, cur.length = top.id, cur.length+right.length
		syms[np].length = 0
		next[top.pos] = next[np]
		if nn := next[np]; nn >= 0 {
			prev[nn] = top.pos
		}
		if p := prev[top.pos]; p >= 0 {
			if mi, ok := m.merges[pairKey(syms[p].id, cur.id)]; ok {
				q.push(mergeItem{mi.rank, p, mi.id})
			}
		}
		if nx := next[top.pos]; nx >= 0 {
			if mi, ok := m.merges[pairKey(cur.id, syms[nx].id)]; ok {
				q.push(mergeItem{mi.rank, top.pos, mi.id})
			}
		}
	}
	out := syms[:0]
	for _, s := range syms {
		if s.length != 0 {
			out = append(out, s)
		}
	}
	return out
}

// ---- WordPiece ----

type wordPieceModel struct {
	vocab
	unk      string
	prefix   string
	maxChars int
}

func (m *wordPieceModel) tokenize(s string) ([]token, error) {
	if s == "" {
		return nil, nil
	}
	unk := func() ([]token, error) {
		id, ok := m.ids[m.unk]
		if !ok {
			return nil, fmt.Errorf("unk_token %q is not in the vocabulary", m.unk)
		}
		return []token{{id: id, value: m.unk, off: [2]int{0, len(s)}}}, nil
	}
	if utf8.RuneCountInString(s) > m.maxChars {
		return unk()
	}
	var toks []token
	for start := 0; start < len(s); {
		end := len(s)
		found := false
		for start < end {
			sub := s[start:end]
			if start > 0 {
				sub = m.prefix + sub
			}
			if id, ok := m.ids[sub]; ok {
				toks = append(toks, token{id: id, value: sub, off: [2]int{start, end}})
				found = true
				break
			}
			_, n := utf8.DecodeLastRuneInString(s[start:end])
			end -= n
		}
		if !found {
			return unk()
		}
		start = end
	}
	return toks, nil
}

// ---- WordLevel ----

type wordLevelModel struct {
	vocab
	unk string
}

func (m *wordLevelModel) tokenize(s string) ([]token, error) {
	if id, ok := m.ids[s]; ok {
		return []token{{id: id, value: s, off: [2]int{0, len(s)}}}, nil
	}
	id, ok := m.ids[m.unk]
	if !ok {
		return nil, fmt.Errorf("word %q is not in the vocabulary and unk_token %q is missing", s, m.unk)
	}
	return []token{{id: id, value: m.unk, off: [2]int{0, len(s)}}}, nil
}

// ---- Unigram ----

// unigramModel is HF's Unigram: Viterbi over piece scores (SentencePiece's
// encode_optimized), unknown characters scored min_score - 10 and fused.
type unigramModel struct {
	vocab
	scores       []float64
	unkID        int // -1 if none
	byteFallback bool
	fuseUnk      bool
	minScore     float64
	maxLen       int // longest piece in bytes
	byteTokens   [256]int
}

func (m *unigramModel) tokenize(s string) ([]token, error) {
	if s == "" {
		return nil, nil
	}
	type node struct {
		id     int
		score  float64
		start  int
		filled bool
	}
	n := len(s)
	best := make([]node, n+1)
	best[0].filled = true
	unkScore := m.minScore - 10
	for i := 0; i < n; {
		_, mb := utf8.DecodeRuneInString(s[i:])
		base := best[i].score
		single := false
		lim := n
		if i+m.maxLen < lim {
			lim = i + m.maxLen
		}
		for j := i + 1; j <= lim; j++ {
			id, ok := m.ids[s[i:j]]
			if !ok {
				continue
			}
			c := base + m.scores[id]
			if t := &best[j]; !t.filled || c > t.score {
				*t = node{id: id, score: c, start: i, filled: true}
			}
			if j-i == mb {
				single = true
			}
		}
		if !single {
			if m.unkID < 0 {
				return nil, fmt.Errorf("unigram model has no unk_id for %q", s[i:i+mb])
			}
			c := base + unkScore
			if t := &best[i+mb]; !t.filled || c > t.score {
				*t = node{id: m.unkID, score: c, start: i, filled: true}
			}
		}
		i += mb
	}
	// Walk back, fusing consecutive unknowns.
	var rev [][3]int // start, end, id
	for end := n; end > 0; {
		nd := best[end]
		if m.fuseUnk && nd.id == m.unkID && len(rev) > 0 && rev[len(rev)-1][2] == m.unkID && m.unkID >= 0 {
			rev[len(rev)-1][0] = nd.start
		} else {
			rev = append(rev, [3]int{nd.start, end, nd.id})
		}
		end = nd.start
	}
	toks := make([]token, 0, len(rev))
	for k := len(rev) - 1; k >= 0; k-- {
		a, b := rev[k][0], rev[k][1]
		piece := s[a:b]
		if id, ok := m.ids[piece]; ok {
			toks = append(toks, token{id: id, value: piece, off: [2]int{a, b}})
			continue
		}
		if m.byteFallback {
			all := true
			for q := a; q < b; q++ {
				if m.byteTokens[s[q]] < 0 {
					all = false
				}
			}
			if all {
				for q := a; q < b; q++ {
					id := m.byteTokens[s[q]]
					toks = append(toks, token{id: id, value: m.toks[id], off: [2]int{a, b}}) // HF: every byte token spans the piece
				}
				continue
			}
		}
		if m.unkID < 0 {
			return nil, fmt.Errorf("unigram model has no unk_id for %q", piece)
		}
		toks = append(toks, token{id: m.unkID, value: piece, off: [2]int{a, b}}) // HF keeps the text as the token
	}
	return toks, nil
}
