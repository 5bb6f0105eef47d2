package tasks

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/tokenizer"
)

// Special tokens of the character-level tokenizer.
const (
	PadToken = "<pad>"
	BOSToken = "<bos>"
	EOSToken = "<eos>"
	UnkToken = "<unk>"
)

// CharTokenizer maps every character to one token, for models trained from
// scratch on the tasks. Ids 0–3 are <pad>, <bos>, <eos>, <unk>; then the
// characters in the order given. Unknown characters map to <unk>.
type CharTokenizer struct {
	vocab []string
	ids   map[string]int
}

// DefaultChars is the character set of the default character tokenizer:
// printable ASCII (space to tilde), which covers every task's alphabet.
func DefaultChars() string {
	b := make([]byte, 0, 95)
	for c := byte(' '); c <= '~'; c++ {
		b = append(b, c)
	}
	return string(b)
}

// NewCharTokenizer returns a tokenizer over the given characters (duplicates ignored).
func NewCharTokenizer(chars string) *CharTokenizer {
	t := &CharTokenizer{ids: map[string]int{}}
	for _, s := range []string{PadToken, BOSToken, EOSToken, UnkToken} {
		t.add(s)
	}
	for _, r := range chars {
		t.add(string(r))
	}
	return t
}

func (t *CharTokenizer) add(s string) {
	if _, ok := t.ids[s]; !ok {
		t.ids[s] = len(t.vocab)
		t.vocab = append(t.vocab, s)
	}
}

// Encode returns one id per character, preceded by <bos> when addSpecialTokens
// is set (as tokenizer.json's post-processor does).
func (t *CharTokenizer) Encode(text string, addSpecialTokens bool) []int {
	out := make([]int, 0, len(text)+1)
	if addSpecialTokens {
		out = append(out, t.BOS())
	}
	for _, r := range text {
		id, ok := t.ids[string(r)]
		if !ok {
			id = t.ids[UnkToken]
		}
		out = append(out, id)
	}
	return out
}

// Decode maps ids back to text; special tokens are skipped.
func (t *CharTokenizer) Decode(ids []int) string {
	var b []byte
	for _, id := range ids {
		if id >= 4 && id < len(t.vocab) {
			b = append(b, t.vocab[id]...)
		}
	}
	return string(b)
}

func (t *CharTokenizer) BOS() int       { return t.ids[BOSToken] }
func (t *CharTokenizer) EOS() int       { return t.ids[EOSToken] }
func (t *CharTokenizer) Pad() int       { return t.ids[PadToken] }
func (t *CharTokenizer) VocabSize() int { return len(t.vocab) }

// Token returns the string of an id.
func (t *CharTokenizer) Token(id int) string {
	if id < 0 || id >= len(t.vocab) {
		return UnkToken
	}
	return t.vocab[id]
}

// TokenizerJSON renders the tokenizer as a Hugging Face tokenizer.json that
// tokenizes identically: a BPE model over single characters with no merges and
// no pre-tokenizer (so each character is one token), the four special tokens
// as added tokens, a post-processor that prepends <bos> when special tokens are
// asked for, and a Fuse decoder.
func (t *CharTokenizer) TokenizerJSON() ([]byte, error) {
	var specials []tokenizer.AddedToken
	for i := 0; i < 4; i++ {
		specials = append(specials, tokenizer.AddedToken{ID: i, Content: t.vocab[i], Special: true})
	}
	vocab := make(map[string]int, len(t.vocab))
	for i, s := range t.vocab {
		vocab[s] = i
	}
	doc := map[string]any{
		"version":       "1.0",
		"truncation":    nil,
		"padding":       nil,
		"added_tokens":  specials,
		"normalizer":    nil,
		"pre_tokenizer": nil,
		"post_processor": map[string]any{
			"type":   "TemplateProcessing",
			"single": []any{map[string]any{"SpecialToken": map[string]any{"id": BOSToken, "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"pair": []any{map[string]any{"SpecialToken": map[string]any{"id": BOSToken, "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
				map[string]any{"Sequence": map[string]any{"id": "B", "type_id": 1}}},
			"special_tokens": map[string]any{BOSToken: map[string]any{"id": BOSToken, "ids": []int{t.BOS()}, "tokens": []string{BOSToken}}},
		},
		"decoder": map[string]any{"type": "Fuse"},
		"model": map[string]any{
			"type": "BPE", "dropout": nil, "unk_token": UnkToken,
			"continuing_subword_prefix": nil, "end_of_word_suffix": nil,
			"fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
			"vocab": vocab, "merges": []string{},
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// WriteFiles writes tokenizer.json and tokenizer_config.json into dir.
func (t *CharTokenizer) WriteFiles(dir string) error {
	js, err := t.TokenizerJSON()
	if err != nil {
		return fmt.Errorf("render tokenizer.json: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "tokenizer.json"), js); err != nil {
		return err
	}
	cfg, _ := json.MarshalIndent(map[string]any{
		"tokenizer_class": "PreTrainedTokenizerFast",
		"bos_token":       BOSToken, "eos_token": EOSToken, "pad_token": PadToken, "unk_token": UnkToken,
		"model_max_length": 1024,
	}, "", "  ")
	return atomicfile.WriteFile(filepath.Join(dir, "tokenizer_config.json"), cfg)
}

// LoadCharTokenizer reads a tokenizer.json written by WriteFiles back.
func LoadCharTokenizer(path string) (*CharTokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tokenizer: %w", err)
	}
	var doc struct {
		Model struct {
			Type  string         `json:"type"`
			Vocab map[string]int `json:"vocab"`
		} `json:"model"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if doc.Model.Type != "BPE" || len(doc.Model.Vocab) < 4 {
		return nil, fmt.Errorf("read %s: model: expected a character-level BPE vocabulary", path)
	}
	vocab := make([]string, len(doc.Model.Vocab))
	for s, id := range doc.Model.Vocab {
		if id < 0 || id >= len(vocab) || vocab[id] != "" {
			return nil, fmt.Errorf("read %s: model.vocab: ids must be 0..%d without gaps", path, len(vocab)-1)
		}
		vocab[id] = s
	}
	for i, s := range []string{PadToken, BOSToken, EOSToken, UnkToken} {
		if vocab[i] != s {
			return nil, fmt.Errorf("read %s: model.vocab: id %d must be %s", path, i, s)
		}
	}
	t := &CharTokenizer{ids: map[string]int{}}
	for _, s := range vocab {
		t.add(s)
	}
	return t, nil
}
