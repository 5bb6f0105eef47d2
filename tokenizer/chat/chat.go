// Package chat renders the chat template of a Hugging Face tokenizer_config.json
// (its "chat_template" field: a Jinja string, or a list of named templates) into the
// prompt text a model was trained on, with the variables transformers'
// PreTrainedTokenizerBase.apply_chat_template passes: messages, add_generation_prompt,
// tools and documents (none), the named special tokens (bos_token, eos_token, ...,
// strings or AddedToken objects), raise_exception and strftime_now.
//
// Templates are rendered by github.com/ardanlabs/jinja, a Go Jinja implementation
// written for LLM chat templates; the tests compare its output byte for byte with
// @huggingface/jinja, the JavaScript implementation used by transformers.js.
package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ardanlabs/jinja"
)

// Message is one turn of a conversation in the OpenAI / Hugging Face messages form.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Template is a compiled chat template with the special tokens of its config.
type Template struct {
	file    string // where the template came from, for error messages
	field   string // the field holding it, for error messages
	tmpl    *jinja.Template
	special map[string]string // bos_token, eos_token, ... and additional_special_tokens
	extra   []string          // additional_special_tokens
}

// Options are the render-time variables that are not part of the conversation.
type Options struct {
	// AddGenerationPrompt appends the header that starts the assistant's turn.
	AddGenerationPrompt bool
	// Now is the time strftime_now formats; the zero value means 26 Jul 2024 00:00 UTC
	// (Llama 3's own default date), so that renders are reproducible.
	Now time.Time
}

// DefaultNow is the time strftime_now returns unless Options.Now is set.
var DefaultNow = time.Date(2024, time.July, 26, 0, 0, 0, 0, time.UTC)

// specialKeys are the special-token attributes transformers passes to templates
// (SpecialTokensMixin.SPECIAL_TOKENS_ATTRIBUTES, less the list).
var specialKeys = []string{"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}

// Load reads the chat template of a tokenizer_config.json file, or of a folder that
// holds one (falling back to the folder's chat_template.jinja, where newer
// transformers versions save it). name selects one of a list of named templates
// ("" means "default").
func Load(path, name string) (*Template, error) {
	file := path
	if st, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	} else if st.IsDir() {
		file = filepath.Join(path, "tokenizer_config.json")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("%s: not a JSON object: %v", file, err)
	}
	field := "chat_template"
	src, err := pickTemplate(cfg["chat_template"], name)
	if err != nil {
		return nil, fmt.Errorf("%s: field %s: %v", file, field, err)
	}
	if src == "" {
		j := filepath.Join(filepath.Dir(file), "chat_template.jinja")
		if b, err := os.ReadFile(j); err == nil && name == "" {
			src, file, field = string(b), j, "(file)"
		} else {
			return nil, fmt.Errorf("%s: field chat_template is missing: the tokenizer has no chat template (give it one, or a chat_template.jinja beside it)", file)
		}
	}
	special, extra, err := specialTokens(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	return compile(src, file, field, special, extra)
}

// Parse compiles a template given as text; file names it in error messages and
// special holds the special tokens (bos_token, eos_token, ...).
func Parse(src, file string, special map[string]string) (*Template, error) {
	return compile(src, file, "chat_template", special, nil)
}

func compile(src, file, field string, special map[string]string, extra []string) (*Template, error) {
	t, err := jinja.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("%s: field %s: the template uses Jinja this renderer does not support: %v", file, field, err)
	}
	return &Template{file: file, field: field, tmpl: t, special: special, extra: extra}, nil
}

// pickTemplate returns the template text of a chat_template field: a string, or a
// list of {"name", "template"} objects from which name ("" = "default") is chosen,
// as transformers does when no tools are given.
func pickTemplate(raw json.RawMessage, name string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if name != "" && name != "default" {
			return "", fmt.Errorf("holds a single template, not one named %q", name)
		}
		return s, nil
	}
	var list []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", fmt.Errorf("expected a string or a list of {\"name\", \"template\"} objects")
	}
	want := name
	if want == "" {
		want = "default"
	}
	var names []string
	for _, t := range list {
		if t.Name == want {
			return t.Template, nil
		}
		names = append(names, t.Name)
	}
	sort.Strings(names)
	return "", fmt.Errorf("has no template named %q (it has %s)", want, strings.Join(names, ", "))
}

// specialTokens reads the named special tokens (strings or AddedToken objects with a
// "content" field) and additional_special_tokens.
func specialTokens(cfg map[string]json.RawMessage) (map[string]string, []string, error) {
	out := map[string]string{}
	for _, k := range specialKeys {
		r, ok := cfg[k]
		if !ok || string(r) == "null" {
			continue
		}
		s, err := tokenText(r)
		if err != nil {
			return nil, nil, fmt.Errorf("field %s: %v", k, err)
		}
		out[k] = s
	}
	var extra []string
	if r, ok := cfg["additional_special_tokens"]; ok && string(r) != "null" {
		var items []json.RawMessage
		if err := json.Unmarshal(r, &items); err != nil {
			return nil, nil, fmt.Errorf("field additional_special_tokens: expected a list")
		}
		for i, it := range items {
			s, err := tokenText(it)
			if err != nil {
				return nil, nil, fmt.Errorf("field additional_special_tokens[%d]: %v", i, err)
			}
			extra = append(extra, s)
		}
	}
	return out, extra, nil
}

func tokenText(r json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(r, &s); err == nil {
		return s, nil
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(r, &obj); err != nil || obj.Content == nil {
		return "", fmt.Errorf("expected a string or an object with \"content\"")
	}
	return *obj.Content, nil
}

// Special returns the special tokens passed to the template.
func (t *Template) Special() map[string]string { return t.special }

// RaiseError is the error of a template that called raise_exception.
type RaiseError struct {
	File, Field, Message string
}

func (e *RaiseError) Error() string {
	return fmt.Sprintf("%s: field %s: the chat template refused the conversation: %s", e.File, e.Field, e.Message)
}

// Render renders messages through the template.
func (t *Template) Render(messages []Message, opt Options) (string, error) {
	now := opt.Now
	if now.IsZero() {
		now = DefaultNow
	}
	var raised *RaiseError
	msgs := make([]jinja.Value, len(messages))
	for i, m := range messages {
		d := jinja.NewDict()
		d.AsDict().Set("role", jinja.NewString(m.Role))
		d.AsDict().Set("content", jinja.NewString(m.Content))
		msgs[i] = d
	}
	vars := map[string]jinja.Value{
		"messages":              jinja.NewList(msgs),
		"add_generation_prompt": jinja.NewBool(opt.AddGenerationPrompt),
		"tools":                 jinja.None(),
		"documents":             jinja.None(),
		"raise_exception": jinja.NewCallable("raise_exception", func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
			msg := ""
			if len(args) > 0 && args[0].IsString() {
				msg = args[0].AsString()
			} else if len(args) > 0 {
				msg = args[0].String()
			}
			raised = &RaiseError{File: t.file, Field: t.field, Message: msg}
			return jinja.Undefined(), raised
		}),
		"strftime_now": jinja.NewCallable("strftime_now", func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
			if len(args) != 1 || !args[0].IsString() {
				return jinja.Undefined(), errors.New("strftime_now expects one format string")
			}
			s, err := Strftime(args[0].AsString(), now)
			if err != nil {
				return jinja.Undefined(), err
			}
			return jinja.NewString(s), nil
		}),
	}
	for k, v := range t.special {
		vars[k] = jinja.NewString(v)
	}
	if t.extra != nil {
		items := make([]jinja.Value, len(t.extra))
		for i, s := range t.extra {
			items[i] = jinja.NewString(s)
		}
		vars["additional_special_tokens"] = jinja.NewList(items)
	}
	out, err := t.tmpl.RenderValues(vars)
	if raised != nil {
		return "", raised
	}
	if err != nil {
		return "", fmt.Errorf("%s: field %s: rendering the chat template failed (a Jinja feature this renderer lacks, or an error in the template): %v", t.file, t.field, err)
	}
	return out, nil
}

// ReadMessages reads a conversation: a JSON list of {"role", "content"} objects, or an
// object with such a list under "messages".
func ReadMessages(path string) ([]Message, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	return ParseMessages(data, path)
}

// ParseMessages parses the contents of a conversation file (see ReadMessages); file
// names it in error messages.
func ParseMessages(data []byte, file string) ([]Message, error) {
	trimmed := strings.TrimSpace(string(data))
	var raw []json.RawMessage
	if strings.HasPrefix(trimmed, "{") {
		var obj struct {
			Messages []json.RawMessage `json:"messages"`
		}
		if err := json.Unmarshal(data, &obj); err != nil {
			return nil, fmt.Errorf("%s: expected a JSON list of messages or an object with \"messages\": %v", file, err)
		}
		if obj.Messages == nil {
			return nil, fmt.Errorf("%s: field messages is missing: expected a list of {\"role\", \"content\"} objects", file)
		}
		raw = obj.Messages
	} else if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: expected a JSON list of {\"role\", \"content\"} objects: %v", file, err)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("%s: field messages is empty: expected at least one message", file)
	}
	out := make([]Message, len(raw))
	for i, r := range raw {
		var m struct {
			Role    *string `json:"role"`
			Content *string `json:"content"`
		}
		if err := json.Unmarshal(r, &m); err != nil || m.Role == nil || m.Content == nil {
			return nil, fmt.Errorf("%s: field messages[%d]: expected an object with string \"role\" and \"content\"", file, i)
		}
		out[i] = Message{Role: *m.Role, Content: *m.Content}
	}
	return out, nil
}
