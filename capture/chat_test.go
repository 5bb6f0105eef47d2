package capture

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tokenizer"
)

// chatModel copies the tiny-llama reference model into a folder whose
// tokenizer_config.json carries Mistral-7B-Instruct-v0.1's chat template.
func chatModel(t *testing.T) string {
	t.Helper()
	src := refdata.Path(t, "models", "tiny-llama")
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := os.ReadFile(filepath.Join("..", "tokenizer", "chat", "testdata", "templates", "mistral", "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCaptureChat renders a conversation through the model's chat template and checks
// that the stored sample is the rendered text tokenized without added special tokens
// (one <s>, the template's, as apply_chat_template(tokenize=True) gives), and that a
// conversation the template refuses is one error naming the file and field, with
// nothing written.
func TestCaptureChat(t *testing.T) {
	dir := chatModel(t)
	tmp := t.TempDir()
	conv := filepath.Join(tmp, "hello.json")
	os.WriteFile(conv, []byte(`{"messages": [{"role": "user", "content": "def add(a, b):"}, {"role": "assistant", "content": "return a + b"}, {"role": "user", "content": "and sub?"}]}`), 0o644)
	in, err := ChatInput(dir, conv, false)
	if err != nil {
		t.Fatal(err)
	}
	want := "<s>[INST] def add(a, b): [/INST]return a + b</s> [INST] and sub? [/INST]"
	if in.Text != want || in.ID != "hello" || !in.Rendered {
		t.Fatalf("input %+v, want text %q", in, want)
	}
	out := filepath.Join(tmp, "run")
	if _, err := Run(context.Background(), out, []Input{in}, Options{ModelDir: dir}); err != nil {
		t.Fatal(err)
	}
	run, err := store.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	s, err := run.Sample("hello")
	if err != nil {
		t.Fatal(err)
	}
	tk, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := tk.Encode(want, false)
	if err != nil {
		t.Fatal(err)
	}
	if s.Text != want || !reflect.DeepEqual(s.IDs, enc.IDs) || !reflect.DeepEqual(s.Tokens, enc.Tokens) {
		t.Errorf("sample text %q ids %v, want %v", s.Text, s.IDs, enc.IDs)
	}
	bos := 0
	for _, tok := range s.Tokens {
		if tok == "<s>" {
			bos++
		}
	}
	if bos != 1 || s.Tokens[0] != "<s>" {
		t.Errorf("want exactly one leading <s>, got tokens %v", s.Tokens)
	}
	withSpecial, _ := tk.Encode(want, true)
	if len(withSpecial.IDs) != len(enc.IDs)+1 {
		t.Errorf("the tokenizer's post-processor should add a second <s> (%d vs %d tokens): the test would not tell the modes apart", len(withSpecial.IDs), len(enc.IDs))
	}

	// The generation prompt of this template is empty; a system turn is refused.
	sys := filepath.Join(tmp, "sys.json")
	os.WriteFile(sys, []byte(`[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]`), 0o644)
	_, err = ChatInput(dir, sys, true)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "tokenizer_config.json")+": field chat_template: the chat template refused the conversation: Conversation roles must alternate") {
		t.Errorf("refused conversation: %v", err)
	}
	// A model without a chat template.
	_, err = ChatInput(refdata.Path(t, "models", "tiny-llama"), conv, false)
	if err == nil || !strings.Contains(err.Error(), "field chat_template is missing") {
		t.Errorf("no template: %v", err)
	}
}
