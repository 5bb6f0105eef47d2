package capture

import (
	"fmt"
	"unicode/utf8"

	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tokenizer"
)

// truncateInput cuts in.Text so that its encoding has at most budget tokens (special
// tokens included), keeping the end (side "left": the start is dropped) or the start
// (side "right"). The cut falls on a token boundary of the original encoding; the kept
// text is encoded again (a token at the cut may split differently), shortening further
// until it fits. It returns the input with the kept text and its Truncation, and its
// encoding.
func truncateInput(tk *tokenizer.Tokenizer, in Input, enc *tokenizer.Encoding, budget int, side string) (Input, *tokenizer.Encoding, error) {
	if side != "left" && side != "right" {
		return in, nil, fmt.Errorf("truncate: %q is not a side: left or right expected", side)
	}
	// The tokens that cover text (special tokens have an empty span).
	var content [][2]int
	for _, o := range enc.ByteOffsets {
		if o[1] > o[0] {
			content = append(content, o)
		}
	}
	special := len(enc.IDs) - len(content)
	keep := budget - special
	for range 16 {
		if keep <= 0 {
			return in, nil, fmt.Errorf("input %s: the model's context leaves no room for text (%d positions, %d special tokens)", describe(in), budget, special)
		}
		text := in.Text[:content[keep-1][1]]
		if side == "left" {
			text = in.Text[content[len(content)-keep][0]:]
		}
		e, err := tk.Encode(text, !in.Rendered)
		if err != nil {
			return in, nil, fmt.Errorf("tokenize input %s (truncated): %w", describe(in), err)
		}
		if len(e.IDs) <= budget {
			out := in
			out.Text = text
			out.Truncated = &store.Truncation{Side: side, OriginalTokens: len(enc.IDs),
				OriginalChars: utf8.RuneCountInString(in.Text), KeptChars: utf8.RuneCountInString(text)}
			return out, e, nil
		}
		keep -= len(e.IDs) - budget
	}
	return in, nil, fmt.Errorf("input %s: no cut of the text fits %d tokens", describe(in), budget)
}
