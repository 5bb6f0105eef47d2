package tasks

import (
	"fmt"
	"strings"

	"github.com/attnscope/attnscope/tokenizer"
	"github.com/attnscope/attnscope/tokenizer/chat"
)

// HFTokenizer adapts a tokenizer.json (package tokenizer) to the generators:
// pretrained models' tokenizers, whose single characters may map to several
// tokens or share a token with a neighbour only when encoded together (the
// generators encode the task text one character at a time, as the original).
// Encoding errors are kept and reported by the generator's Next.
type HFTokenizer struct {
	tok      *tokenizer.Tokenizer
	bos, eos int
	err      error
	chat     []string // the chat template split on {tokens} (UseChatTemplate)
}

// NewHFTokenizer wraps t; bos and eos are the ids the generators put around a
// sample (for GPT-2 both are <|endoftext|>). A negative id is looked up from
// tokenizer_config.json's bos_token / eos_token.
func NewHFTokenizer(t *tokenizer.Tokenizer, bos, eos int) (*HFTokenizer, error) {
	for _, x := range []struct {
		id   *int
		role string
	}{{&bos, "bos_token"}, {&eos, "eos_token"}} {
		if *x.id >= 0 {
			continue
		}
		_, id, ok := t.SpecialToken(x.role)
		if !ok {
			return nil, fmt.Errorf("tokenizer %s: no %s in tokenizer_config.json; give its id", t.Path(), x.role)
		}
		*x.id = id
	}
	return &HFTokenizer{tok: t, bos: bos, eos: eos}, nil
}

// Encode encodes text; on an error it returns no ids and remembers the error.
func (h *HFTokenizer) Encode(text string, addSpecialTokens bool) []int {
	enc, err := h.tok.Encode(text, addSpecialTokens)
	if err != nil {
		if h.err == nil {
			h.err = fmt.Errorf("tokenize %q: %w", text, err)
		}
		return nil
	}
	return enc.IDs
}

func (h *HFTokenizer) BOS() int { return h.bos }
func (h *HFTokenizer) EOS() int { return h.eos }

// Err returns the first encoding error.
func (h *HFTokenizer) Err() error { return h.err }

// tokErr reports a tokenizer's remembered encoding error, if it keeps one.
func tokErr(t Tokenizer) error {
	if e, ok := t.(interface{ Err() error }); ok {
		return e.Err()
	}
	return nil
}

// UseChatTemplate renders the chat template of dir's tokenizer_config.json for the
// conversation [user: "{tokens}{tokens}", assistant: "{tokens}"] and splits it on
// "{tokens}", as AttentionSpan's generators do with apply_chat_template=True; the
// generators then use the four parts (see Common.ChatTemplate).
func (h *HFTokenizer) UseChatTemplate(dir string) error {
	tmpl, err := chat.Load(dir, "")
	if err != nil {
		return err
	}
	text, err := tmpl.Render([]chat.Message{{Role: "user", Content: "{tokens}{tokens}"}, {Role: "assistant", Content: "{tokens}"}}, chat.Options{})
	if err != nil {
		return err
	}
	parts := strings.Split(text, "{tokens}")
	if len(parts) != 4 {
		return fmt.Errorf("%s: field chat_template: the rendered conversation [user: \"{tokens}{tokens}\", assistant: \"{tokens}\"] splits into %d parts on {tokens}, not 4 (the template changes message contents)", dir, len(parts))
	}
	h.chat = parts
	return nil
}

// ChatParts returns the chat template split on {tokens} (nil without UseChatTemplate).
func (h *HFTokenizer) ChatParts() []string { return h.chat }
