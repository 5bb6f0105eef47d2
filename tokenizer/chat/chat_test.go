package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attnscope/attnscope/internal/refdata"
)

// oracleDir returns tools/oracles with @huggingface/jinja installed, skipping the test
// (or failing it under CI, where .ci/run installs it) when node or the package is
// missing.
func oracleDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(refdata.RepoRoot(), "tools", "oracles")
	missing := ""
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node is not on PATH"
	} else if _, err := os.Stat(filepath.Join(dir, "node_modules", "@huggingface", "jinja", "package.json")); err != nil {
		missing = "tools/oracles/node_modules/@huggingface/jinja is absent (run `npm ci` in tools/oracles)"
	}
	if missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("@huggingface/jinja oracle unavailable under CI: %s", missing)
		}
		t.Skipf("@huggingface/jinja oracle unavailable: %s", missing)
	}
	return dir
}

type conversation struct {
	Name     string    `json:"name"`
	Messages []Message `json:"messages"`
}

type oracleRow struct {
	Name                string  `json:"name"`
	AddGenerationPrompt bool    `json:"add_generation_prompt"`
	Text                *string `json:"text"`
	Error               *string `json:"error"`
}

// TestTemplatesMatchHFJinja renders the published chat templates of Llama 3,
// Llama 3.2, Qwen2, Mistral, Gemma and Phi-3 (and a list of named templates with
// AddedToken special tokens) for every conversation of testdata/conversations.json,
// with and without the generation prompt, and compares the text byte for byte with
// @huggingface/jinja; where the template raises, both must raise the same message.
func TestTemplatesMatchHFJinja(t *testing.T) {
	oracles := oracleDir(t)
	configs, err := filepath.Glob(filepath.Join("testdata", "templates", "*", "tokenizer_config.json"))
	if err != nil || len(configs) < 7 {
		t.Fatalf("expected the 7 test templates, found %d (%v)", len(configs), err)
	}
	abs := make([]string, len(configs))
	for i, c := range configs {
		abs[i], _ = filepath.Abs(c)
	}
	convFile, _ := filepath.Abs(filepath.Join("testdata", "conversations.json"))
	var convs []conversation
	data, err := os.ReadFile(convFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &convs); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "oracle.json")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{"chat-template.js", convFile, out}, abs...)...)
	cmd.Dir = oracles
	cmd.Env = append(os.Environ(), "TZ=UTC")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node chat-template.js: %v\n%s", err, stderr.String())
	}
	var want map[string][]oracleRow
	if b, err := os.ReadFile(out); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	texts, raises := 0, 0
	for i, cfg := range configs {
		tmpl, err := Load(cfg, "")
		if err != nil {
			t.Fatal(err)
		}
		rows := want[abs[i]]
		if len(rows) != 2*len(convs) {
			t.Fatalf("%s: oracle gave %d renders, want %d", cfg, len(rows), 2*len(convs))
		}
		for _, row := range rows {
			var msgs []Message
			for _, c := range convs {
				if c.Name == row.Name {
					msgs = c.Messages
				}
			}
			got, err := tmpl.Render(msgs, Options{AddGenerationPrompt: row.AddGenerationPrompt})
			where := cfg + " / " + row.Name
			if row.AddGenerationPrompt {
				where += " / add_generation_prompt"
			}
			switch {
			case row.Error != nil:
				var re *RaiseError
				if !errors.As(err, &re) {
					t.Errorf("%s: @huggingface/jinja raised %q, Go gave %q, %v", where, *row.Error, got, err)
				} else if re.Message != *row.Error {
					t.Errorf("%s: raised %q, @huggingface/jinja raised %q", where, re.Message, *row.Error)
				} else {
					raises++
				}
			case err != nil:
				t.Errorf("%s: %v (@huggingface/jinja rendered %q)", where, err, *row.Text)
			case got != *row.Text:
				t.Errorf("%s:\n got %q\nwant %q", where, got, *row.Text)
			default:
				texts++
			}
		}
	}
	t.Logf("%d renders identical to @huggingface/jinja, %d raises with the same message", texts, raises)
	if texts < 50 || raises < 8 {
		t.Errorf("too few comparisons: %d texts, %d raises", texts, raises)
	}
}

func TestLlama32DateFromOption(t *testing.T) {
	tmpl, err := Load(filepath.Join("testdata", "templates", "llama3.2"), "")
	if err != nil {
		t.Fatal(err)
	}
	msgs := []Message{{Role: "user", Content: "hi"}}
	got, err := tmpl.Render(msgs, Options{Now: time.Date(2025, time.March, 4, 10, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "Today Date: 04 Mar 2025\n") {
		t.Errorf("date option not used: %q", got)
	}
	got, err = tmpl.Render(msgs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "Today Date: 26 Jul 2024\n") || !strings.HasPrefix(got, "<|begin_of_text|>") {
		t.Errorf("default date or bos_token wrong: %q", got)
	}
}

func writeConfig(t *testing.T, cfg string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokenizer_config.json")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestErrors(t *testing.T) {
	named := filepath.Join("testdata", "templates", "named", "tokenizer_config.json")
	if _, err := Load(named, "rag"); err == nil || !strings.Contains(err.Error(), `no template named "rag" (it has default, tool_use)`) {
		t.Errorf("unknown named template: %v", err)
	}
	tool, err := Load(named, "tool_use")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tool.Render([]Message{{Role: "user", Content: "x"}}, Options{})
	var re *RaiseError
	if !errors.As(err, &re) || re.Message != "tool use is not tested" || !strings.Contains(err.Error(), named+": field chat_template: the chat template refused the conversation: tool use is not tested") {
		t.Errorf("raise_exception: %v", err)
	}
	cases := []struct{ cfg, want string }{
		{`{"bos_token": "<s>"}`, "field chat_template is missing"},
		{`{"chat_template": 3}`, "field chat_template: expected a string or a list"},
		{`{"chat_template": "{{ x }}", "bos_token": 5}`, "field bos_token: expected a string or an object"},
		{`{"chat_template": "{% for m in messages %}{{ m.content }}"}`, "field chat_template: the template uses Jinja this renderer does not support"},
		{`{"chat_template": "{% frobnicate %}"}`, "field chat_template: the template uses Jinja this renderer does not support"},
		{`[1]`, "not a JSON object"},
	}
	for _, c := range cases {
		p := writeConfig(t, c.cfg)
		_, err := Load(p, "")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), p+":") {
			t.Errorf("%s: got %v, want %q naming the file", c.cfg, err, c.want)
		}
	}
	// A feature that fails only when rendered (an unknown filter) is one error naming
	// the file and field.
	p := writeConfig(t, `{"chat_template": "{{ messages | frobnicate }}"}`)
	tmpl, err := Load(p, "")
	if err == nil {
		_, err = tmpl.Render([]Message{{Role: "user", Content: "x"}}, Options{})
	}
	if err == nil || !strings.HasPrefix(err.Error(), p+": field chat_template: ") {
		t.Errorf("unknown filter: %v", err)
	}
}

func TestStrftime(t *testing.T) {
	tm := time.Date(2024, time.February, 5, 13, 7, 9, 0, time.UTC)
	got, err := Strftime("%a %A %d %e %b %B %m %y %Y %H %I %M %S %p %j %%", tm)
	if err != nil {
		t.Fatal(err)
	}
	// Python: time.strftime(fmt, (2024, 2, 5, 13, 7, 9, 0, 36, 0))
	want := "Mon Monday 05  5 Feb February 02 24 2024 13 01 07 09 PM 036 %"
	if got != want {
		t.Errorf("got %q want %q", got, want)
	}
	if _, err := Strftime("%Q", tm); err == nil {
		t.Error("unknown directive accepted")
	}
}

func TestParseMessages(t *testing.T) {
	for _, in := range []string{
		`[{"role": "user", "content": "hi"}]`,
		`{"messages": [{"role": "user", "content": "hi"}], "model": "x"}`,
	} {
		m, err := ParseMessages([]byte(in), "c.json")
		if err != nil || len(m) != 1 || m[0] != (Message{"user", "hi"}) {
			t.Errorf("%s: %v %v", in, m, err)
		}
	}
	for in, want := range map[string]string{
		`[]`:                           "field messages is empty",
		`{"model": "x"}`:               "field messages is missing",
		`[{"role": "user"}]`:           "field messages[0]: expected an object",
		`[{"role": 1, "content": ""}]`: "field messages[0]",
		`nope`:                         "expected a JSON list",
	} {
		if _, err := ParseMessages([]byte(in), "c.json"); err == nil || !strings.HasPrefix(err.Error(), "c.json: ") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", in, err, want)
		}
	}
}

func FuzzParseMessages(f *testing.F) {
	f.Add([]byte(`[{"role": "user", "content": "hi"}]`))
	f.Add([]byte(`{"messages": [{"role": "system", "content": ""}]}`))
	f.Add([]byte(`{"messages": null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMessages(data, "f.json")
		if err == nil && len(m) == 0 {
			t.Fatal("no error and no messages")
		}
		if err != nil && !strings.HasPrefix(err.Error(), "f.json: ") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

func FuzzRender(f *testing.F) {
	f.Add("{{ bos_token }}{% for m in messages %}{{ m.role }}{% endfor %}", "hi")
	f.Add("{{ raise_exception('no') }}", "x")
	f.Add("{% if %}", "")
	f.Fuzz(func(t *testing.T, src, content string) {
		tmpl, err := Parse(src, "f.json", map[string]string{"bos_token": "<s>"})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.json: field chat_template: ") {
				t.Fatalf("compile error does not name file and field: %v", err)
			}
			return
		}
		_, err = tmpl.Render([]Message{{Role: "user", Content: content}}, Options{})
		if err != nil && !strings.HasPrefix(err.Error(), "f.json: field chat_template: ") {
			t.Fatalf("render error does not name file and field: %v", err)
		}
	})
}
