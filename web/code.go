package web

import (
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/attnscope/attnscope/analysis/code"
)

type lexemeJSON struct {
	Start    int    `json:"start"` // code points into Text
	End      int    `json:"end"`
	Category string `json:"category"`
}

type codeJSON struct {
	Text     string `json:"text"`
	Language string `json:"language,omitempty"`
	// Mode is "received" (mean attention each token receives over all queries)
	// or "from" (the attention of token From).
	Mode       string       `json:"mode"`
	From       int          `json:"from"`
	Head       int          `json:"head"` // -1: mean of heads
	Lexemes    []lexemeJSON `json:"lexemes"`
	Chars      []float64    `json:"chars"`  // weight per code point of Text
	Tokens     []float64    `json:"tokens"` // weight per token
	CategoryOf string       `json:"category_note,omitempty"`
}

// apiCode answers the source-code view: token weights of layer l (mean of heads,
// or head ?head=H) spread over the characters of the text by the token offsets
// (analysis/code.CharWeightsFromOffsets, followup-attention's code heatmap), with
// the text's lexemes and syntax categories (analysis/code.Lex) when its language
// is known. ?from=Q: the attention of token Q; otherwise the attention each token
// receives, averaged over the queries that may see it.
func (s *Server) apiCode(w http.ResponseWriter, r *http.Request, sd *sampleData, l int) error {
	if _, err := sd.head(l, 0); err != nil {
		return err
	}
	info := sd.info
	if info.Text == "" || len(info.Offsets) == 0 {
		return notFound("sample %s has no text with token offsets; the source view needs them", sd.id)
	}
	out := codeJSON{Text: info.Text, Mode: "received", From: -1, Head: -1, Lexemes: []lexemeJSON{}}
	qv := r.URL.Query()
	heads := []int{}
	if v := qv.Get("head"); v != "" {
		h, err := ints([]string{v}, "head")
		if err != nil {
			return err
		}
		if h[0] >= sd.heads {
			return notFound("sample %s has no head %d (heads 0..%d)", sd.id, h[0], sd.heads-1)
		}
		heads, out.Head = append(heads, h[0]), h[0]
	} else {
		for h := range sd.heads {
			heads = append(heads, h)
		}
	}
	if v := qv.Get("from"); v != "" {
		f, err := ints([]string{v}, "from")
		if err != nil {
			return err
		}
		if f[0] >= sd.n {
			return notFound("sample %s has no token %d (0..%d)", sd.id, f[0], sd.n-1)
		}
		out.Mode, out.From = "from", f[0]
	}
	release, err := s.acquire(r)
	if err != nil {
		return err
	}
	defer release()
	n := min(sd.n, len(info.Offsets))
	out.Tokens = tokenWeights(sd, l, heads, out.From, n)
	nChars := utf8.RuneCountInString(info.Text)
	chars, err := code.CharWeightsFromOffsets(info.Offsets[:n], out.Tokens, nChars, code.Replication)
	if err != nil {
		return &httpError{http.StatusUnprocessableEntity, "sample " + sd.id + ": " + err.Error()}
	}
	out.Chars = chars
	if lang, err := code.CanonicalLanguage(info.Language); err == nil {
		out.Language = lang
		lex, err := code.Lex(r.Context(), lang, []byte(info.Text))
		if err == nil {
			out.Lexemes = runeLexemes(info.Text, lex)
		}
	} else {
		out.CategoryOf = "language unknown (" + strconv.Quote(info.Language) + "): syntax categories not shown"
	}
	return writeJSON(w, out)
}

// tokenWeights averages over heads the row of query from (from ≥ 0) or, for
// from < 0, each key's mean weight over the queries that may attend to it (all of
// them, or those at or after it when the matrix is lower triangular).
func tokenWeights(sd *sampleData, l int, heads []int, from, n int) []float64 {
	w := make([]float64, n)
	row := make([]float32, sd.n)
	causal := true
	for _, h := range heads {
		m, _ := sd.head(l, h)
		if from >= 0 {
			m.Row(from, 0, sd.n, row)
			for j := range n {
				w[j] += float64(row[j]) / float64(len(heads))
			}
			continue
		}
		for q := range sd.n {
			m.Row(q, 0, sd.n, row)
			for j := range n {
				w[j] += float64(row[j])
				if j > q && row[j] != 0 {
					causal = false
				}
			}
		}
	}
	if from < 0 {
		for j := range w {
			seen := sd.n
			if causal {
				seen = sd.n - j
			}
			w[j] /= float64(len(heads) * seen)
		}
	}
	return w
}

// runeLexemes converts lexemes' byte offsets to code-point offsets.
func runeLexemes(text string, lex []code.Lexeme) []lexemeJSON {
	idx := make([]int, len(text)+1)
	c := 0
	for i := range text {
		for j := i; j < len(text) && (j == i || !utf8.RuneStart(text[j])); j++ {
			idx[j] = c
		}
		c++
	}
	idx[len(text)] = c
	out := make([]lexemeJSON, 0, len(lex))
	for _, x := range lex {
		out = append(out, lexemeJSON{idx[x.Start], idx[x.End], string(x.Category)})
	}
	return out
}
