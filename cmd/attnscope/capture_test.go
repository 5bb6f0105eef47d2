package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/store"
)

func TestCaptureCommand(t *testing.T) {
	modelDir := refdata.Path(t, "models", "tiny-gpt2")
	tmp := t.TempDir()
	prompts := filepath.Join(tmp, "prompts")
	os.MkdirAll(prompts, 0o755)
	os.WriteFile(filepath.Join(prompts, "add.py"), []byte("def add(a, b):\n    return a + b\n# Answer: 3\nignored()\n"), 0o644)
	os.WriteFile(filepath.Join(prompts, "mul.py"), []byte("def mul(a, b):\n    return a * b\n"), 0o644)
	out := filepath.Join(tmp, "run")
	out64 := filepath.Join(tmp, "run64")
	long := filepath.Join(tmp, "long.txt")
	os.WriteFile(long, []byte(strings.Repeat("x = 1 + 2\n", 400)), 0o644)
	bad := filepath.Join(tmp, "bad.txt")
	os.WriteFile(bad, []byte{0xff, 0xfe, 'a'}, 0o644)
	chatFile := filepath.Join(tmp, "chat.json")
	os.WriteFile(chatFile, []byte(`[{"role": "user", "content": "hi"}]`), 0o644)

	tests := []struct {
		name string
		args []string
		want int
	}{
		{"no input", []string{"capture", "--model", modelDir, "--out", out}, exitUsage},
		{"two inputs", []string{"capture", "--model", modelDir, "--text", "a", "--prompts", prompts, "--out", out}, exitUsage},
		{"no out", []string{"capture", "--model", modelDir, "--text", "a"}, exitUsage},
		{"sampling without generate", []string{"capture", "--model", modelDir, "--text", "a", "--temperature", "0.2", "--out", out}, exitUsage},
		{"too long", []string{"capture", "--model", modelDir, "--file", long, "--out", out}, exitError},
		{"not utf-8", []string{"capture", "--model", modelDir, "--file", bad, "--out", out}, exitError},
		{"missing model", []string{"capture", "--model", filepath.Join(tmp, "nope"), "--text", "a", "--out", out}, exitError},
		{"generation prompt without chat", []string{"capture", "--model", modelDir, "--text", "a", "--add-generation-prompt", "--out", out}, exitUsage},
		{"chat and text", []string{"capture", "--model", modelDir, "--text", "a", "--chat", chatFile, "--out", out}, exitUsage},
		{"chat without template", []string{"capture", "--model", modelDir, "--chat", chatFile, "--out", out}, exitError},
		{"prompts", []string{"capture", "--model", modelDir, "--prompts", prompts, "--stop-line", "Answer:", "--generate", "3",
			"--temperature", "0.5", "--top-k", "20", "--seed", "7", "--tries", "2", "--out", out}, exitOK},
		{"rerun", []string{"capture", "--model", modelDir, "--prompts", prompts, "--stop-line", "Answer:", "--generate", "3",
			"--temperature", "0.5", "--top-k", "20", "--seed", "7", "--tries", "2", "--out", out}, exitOK},
		{"other settings", []string{"capture", "--model", modelDir, "--prompts", prompts, "--out", out}, exitError},
		{"bad attention precision", []string{"capture", "--model", modelDir, "--text", "a", "--attention-precision", "float16", "--out", out64}, exitUsage},
		{"float64 attention", []string{"capture", "--model", modelDir, "--text", "a", "--attention-precision", "float64", "--out", out64}, exitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(tt.args); got != tt.want {
				t.Errorf("run(%q) = %d, want %d", strings.Join(tt.args, " "), got, tt.want)
			}
		})
	}
	r, err := store.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := r.Samples()
	if strings.Join(ids, ",") != "add.py_0,add.py_1,mul.py_0,mul.py_1" {
		t.Errorf("samples %v", ids)
	}
	s, err := r.Sample("add.py_1")
	if err != nil {
		t.Fatal(err)
	}
	if s.PromptText != "def add(a, b):\n    return a + b\n# Answer: 3\n" || s.Language != "python" || s.Seed == nil || *s.Seed != 8 {
		t.Errorf("sample: prompt %q, language %q, seed %v", s.PromptText, s.Language, s.Seed)
	}
	g := r.Meta.Generation
	if g == nil || !g.DoSample || g.Temperature != 0.5 || g.TopK != 20 || g.Tries != 2 || g.Seed != 7 {
		t.Errorf("generation settings %+v", g)
	}
	if len(r.Meta.Inputs) != 2 || !strings.HasSuffix(r.Meta.Inputs[0], "add.py") {
		t.Errorf("inputs %v", r.Meta.Inputs)
	}
	if len(r.Meta.Command) < 2 || r.Meta.Command[0] != "attnscope" {
		t.Errorf("command %v", r.Meta.Command)
	}
	r64, err := store.Open(out64)
	if err != nil {
		t.Fatal(err)
	}
	if r.Meta.AttentionPrecision != "float32" || r64.Meta.AttentionPrecision != "float64" {
		t.Errorf("run.json attention_precision %q (default) and %q (float64), want float32 and float64", r.Meta.AttentionPrecision, r64.Meta.AttentionPrecision)
	}
}

// TestCaptureChatCommand captures a conversation through a chat template given to
// the tiny-gpt2 reference model, with the generation prompt.
func TestCaptureChatCommand(t *testing.T) {
	src := refdata.Path(t, "models", "tiny-gpt2")
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(`{"eos_token": "<|endoftext|>", "chat_template": [
	  {"name": "default", "template": "{% for m in messages %}{{ m.role | upper }}: {{ m.content | trim }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"}]}`), 0o644)
	conv := filepath.Join(t.TempDir(), "q1.json")
	os.WriteFile(conv, []byte(`[{"role": "system", "content": "Be brief. "}, {"role": "user", "content": "2+2?"}]`), 0o644)
	out := filepath.Join(t.TempDir(), "run")
	if got := run([]string{"capture", "--model", dir, "--chat", conv, "--add-generation-prompt", "--out", out}); got != exitOK {
		t.Fatalf("capture --chat exited %d", got)
	}
	r, err := store.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Sample("q1")
	if err != nil {
		t.Fatal(err)
	}
	want := "SYSTEM: Be brief.<|endoftext|>USER: 2+2?<|endoftext|>ASSISTANT:"
	if s.Text != want || s.Tokens[len(s.Tokens)-1] != ":" {
		t.Errorf("sample text %q tokens %v, want %q", s.Text, s.Tokens, want)
	}
	// Generation continues the rendered prompt.
	gen := filepath.Join(t.TempDir(), "gen")
	if got := run([]string{"capture", "--model", dir, "--chat", conv, "--add-generation-prompt", "--generate", "3", "--out", gen}); got != exitOK {
		t.Fatalf("capture --chat --generate exited %d", got)
	}
	r, err = store.Open(gen)
	if err != nil {
		t.Fatal(err)
	}
	g, err := r.Sample("q1")
	if err != nil {
		t.Fatal(err)
	}
	if g.PromptText != want || g.PromptLen != len(s.IDs) || len(g.IDs) <= len(s.IDs) {
		t.Errorf("generation: prompt %q (%d tokens, want %d), %d tokens in all", g.PromptText, g.PromptLen, len(s.IDs), len(g.IDs))
	}
}
