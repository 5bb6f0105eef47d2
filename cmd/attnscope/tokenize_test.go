package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
)

// runCapture runs the CLI with args and returns exit code, stdout and stderr.
func runCapture(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.Execute()
	code := exitOK
	if err != nil {
		errb.WriteString(err.Error())
		code = exitError
		var ue *usageError
		if ok := asUsage(err, &ue); ok {
			code = exitUsage
		}
	}
	return code, out.String(), errb.String()
}

func asUsage(err error, target **usageError) bool {
	for e := err; e != nil; {
		if u, ok := e.(*usageError); ok {
			*target = u
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

// TestTokenizeJSONMatchesGolden: --json output equals the HF golden encodings.
func TestTokenizeJSONMatchesGolden(t *testing.T) {
	dir := refdata.Path(t, "tokenizers", "gpt2-bpe")
	var g struct {
		Cases []struct {
			Text    string   `json:"text"`
			Special bool     `json:"add_special_tokens"`
			IDs     []int    `json:"ids"`
			Tokens  []string `json:"tokens"`
			Offsets [][2]int `json:"offsets"`
		} `json:"cases"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "golden-encodings.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	args := []string{"tokenize", "--tokenizer", dir, "--json", "--"}
	var want []int
	for i, c := range g.Cases {
		if c.Special && c.Text != "" {
			args = append(args, c.Text)
			want = append(want, i)
		}
	}
	code, out, stderr := runCapture(t, args...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d output lines for %d inputs", len(lines), len(want))
	}
	for k, line := range lines {
		var got struct {
			IDs     []int    `json:"ids"`
			Tokens  []string `json:"tokens"`
			Offsets [][2]int `json:"offsets"`
		}
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d: %v", k, err)
		}
		c := g.Cases[want[k]]
		if !reflect.DeepEqual(got.IDs, c.IDs) || !reflect.DeepEqual(got.Tokens, c.Tokens) || !reflect.DeepEqual(got.Offsets, c.Offsets) {
			t.Errorf("input %q: got %v %q %v", c.Text, got.IDs, got.Tokens, got.Offsets)
		}
	}
}

func TestTokenizeTextAndFile(t *testing.T) {
	dir := refdata.Path(t, "tokenizers", "bert-wordpiece")
	f := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(f, []byte("x = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCapture(t, "tokenize", "--tokenizer", dir, "--file", f, "--", "café")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"# argument 1:", `"[CLS]"`, `[3,4)  "é"`, "# " + f + ": 5 tokens", `"x"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// --no-special drops [CLS] and [SEP].
	_, out, _ = runCapture(t, "tokenize", "--tokenizer", dir, "--no-special", "--json", "x")
	if strings.Contains(out, "[CLS]") {
		t.Errorf("--no-special output has [CLS]: %s", out)
	}
}

func TestTokenizeErrors(t *testing.T) {
	dir := refdata.Path(t, "tokenizers", "gpt2-bpe")
	tmp := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	badUTF8 := write("bad.txt", "ok \xff")
	malformed := write("malformed.json", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}`)
	unsupported := write("unsupported.json", `{"model": {"type": "WordLevel", "vocab": {"a": 0}, "unk_token": "a"}, "pre_tokenizer": {"type": "FixedLength", "length": 5}}`)
	notJSON := write("notjson.json", `{"model": `)
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"missing tokenizer flag", []string{"tokenize", "x"}, exitUsage, []string{"--tokenizer"}},
		{"no input", []string{"tokenize", "--tokenizer", dir}, exitUsage, []string{"TEXT"}},
		{"missing file", []string{"tokenize", "--tokenizer", filepath.Join(tmp, "nope"), "x"}, exitError, []string{"nope", "no such file"}},
		{"malformed merges", []string{"tokenize", "--tokenizer", malformed, "x"}, exitError, []string{malformed, `"model.merges[0]"`, "missing from the vocabulary"}},
		{"unsupported component", []string{"tokenize", "--tokenizer", unsupported, "x"}, exitError, []string{unsupported, `"pre_tokenizer.type"`, "FixedLength"}},
		{"not JSON", []string{"tokenize", "--tokenizer", notJSON, "x"}, exitError, []string{notJSON, "not valid JSON"}},
		{"invalid UTF-8", []string{"tokenize", "--tokenizer", dir, "--file", badUTF8}, exitError, []string{badUTF8, "not valid UTF-8", "offset 3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runCapture(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if out != "" && tt.code != exitOK {
				t.Errorf("printed output on error: %q", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("error %q lacks %q", stderr, w)
				}
			}
			if strings.Contains(stderr, "goroutine") || strings.Contains(stderr, "panic") {
				t.Errorf("stack trace in error: %s", stderr)
			}
		})
	}
}
