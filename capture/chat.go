package capture

import (
	"path/filepath"
	"strings"

	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tokenizer/chat"
)

// ChatInput reads a conversation (a JSON list of {"role", "content"} messages, or an
// object with one under "messages") and renders it through the chat template of the
// model folder's tokenizer_config.json, with the generation prompt when
// addGenerationPrompt is set. The input's id is the file name without ".json"; its
// text keeps the template's special tokens, so Run tokenizes it without adding the
// tokenizer's own (as apply_chat_template(tokenize=True) does).
func ChatInput(modelDir, path string, addGenerationPrompt bool) (Input, error) {
	msgs, err := chat.ReadMessages(path)
	if err != nil {
		return Input{}, err
	}
	tmpl, err := chat.Load(modelDir, "")
	if err != nil {
		return Input{}, err
	}
	text, err := tmpl.Render(msgs, chat.Options{AddGenerationPrompt: addGenerationPrompt})
	if err != nil {
		return Input{}, err
	}
	name := strings.TrimSuffix(filepath.Base(path), ".json")
	return Input{ID: store.SampleID(name), Text: text, Source: path, Rendered: true}, nil
}
