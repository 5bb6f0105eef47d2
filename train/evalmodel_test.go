package train

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/evaluate"
	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/tasks"
	"github.com/attnscope/attnscope/tokenizer"
)

// hfChatModel copies the tiny-llama reference model into a folder whose
// tokenizer_config.json carries Mistral-7B-Instruct-v0.1's chat template.
func hfChatModel(t *testing.T) string {
	t.Helper()
	src := refdata.Path(t, "models", "tiny-llama")
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	cfg, err := os.ReadFile(filepath.Join("..", "tokenizer", "chat", "testdata", "templates", "mistral", "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), cfg, 0o644)
	return dir
}

const hfEvalConfig = `name: hf-addition
model:
  load_from_checkpoint: true
  checkpoint_filepath: unused
training: null
evaluation:
  batch_size: 2
  visualize: false
  name: hf_addition
  dataset1:
    num_samples: 3
    generator: LongAdditionGenerator
    generator_parameters:
      seed: 42
      length: ${as_tuple:1,2}
      num_of_nums: ${as_tuple:2,2}
      apply_chat_template: true
  dataset2:
    num_samples: 2
    generator: LongAdditionGenerator
    generator_parameters:
      seed: 42
      length: ${as_tuple:3,3}
      num_of_nums: ${as_tuple:2,2}
`

// TestEvaluateModelChatTemplate evaluates a Hugging Face causal LM (tiny-llama) with
// its own tokenizer and chat template: the samples are assembled from the rendered
// template's parts, and the forwarder's predictions and attention equal a direct
// forward pass of the unpadded sample.
func TestEvaluateModelChatTemplate(t *testing.T) {
	dir := hfChatModel(t)
	e, err := ParseExperiment("hf.yaml", []byte(hfEvalConfig), nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := EvaluateModel(context.Background(), e, dir, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ID == nil || rep.OOD == nil || len(rep.ID.Samples) != 3 || len(rep.OOD.Samples) != 2 {
		t.Fatalf("report %+v", rep)
	}
	s0 := rep.ID.Samples[0]
	// Mistral's template around [user: "{tokens}{tokens}", assistant: "{tokens}"].
	if !strings.HasPrefix(s0.Text, "<s>[INST] ") || !strings.Contains(s0.Text, " [/INST]") || !strings.HasSuffix(s0.Text, "</s> ") {
		t.Errorf("sample text %q does not follow the chat template", s0.Text)
	}
	if len(s0.RefShare) == 0 {
		t.Errorf("no reference-attention shares for sample 0")
	}

	// The forwarder on a right-padded sequence equals a forward pass of the sample.
	hf, _ := tokenizer.Load(dir)
	tok, _ := tasks.NewHFTokenizer(hf, -1, -1)
	if err := tok.UseChatTemplate(dir); err != nil {
		t.Fatal(err)
	}
	if got := tok.ChatParts(); !slices.Equal(got, []string{"<s>[INST] ", "", " [/INST]", "</s> "}) {
		t.Errorf("chat parts %q", got)
	}
	samples, err := Samples(e.Evaluation.Dataset1, tok, true)
	if err != nil {
		t.Fatal(err)
	}
	// tiny-llama's SentencePiece encodes each task character alone as one token
	// ("1" → "▁1"), the original's assumption: the prompt's token count is its
	// character count, so the label geometry holds.
	for _, s := range samples {
		prompt := s.Text[strings.Index(s.Text, "[INST] ")+len("[INST] ") : strings.Index(s.Text, " [/INST]")]
		if s.PromptLen != len(prompt) {
			t.Errorf("sample %q: %d prompt tokens for %d characters", s.Text, s.PromptLen, len(prompt))
		}
	}
	m, err := model.Load(dir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	f := evaluate.ModelForwarder{Model: m}
	ids := samples[0].InputIDs
	padded := append(slices.Clone(ids), 0, 0, 0)
	p1, a1, err := f.Forward(context.Background(), [][]int{ids, padded}, true)
	if err != nil {
		t.Fatal(err)
	}
	n, tl := len(padded), len(ids)
	if !slices.Equal(p1[0], p1[1][:tl]) {
		t.Errorf("predictions differ with padding: %v vs %v", p1[0], p1[1][:tl])
	}
	for l := range a1[0] {
		for h := range a1[0][l] {
			for r := 0; r < tl; r++ {
				sum := 0.0
				for c := 0; c < tl; c++ {
					x, y := a1[0][l][h][r*tl+c], a1[1][l][h][r*n+c]
					if d := float64(x - y); d > 1e-5 || d < -1e-5 {
						t.Fatalf("layer %d head %d [%d,%d]: %g unpadded, %g padded", l, h, r, c, x, y)
					}
					sum += float64(x)
				}
				if sum < 0.9999 || sum > 1.0001 {
					t.Fatalf("layer %d head %d row %d sums to %g", l, h, r, sum)
				}
			}
		}
	}
}

const hfSplitConfig = `name: hf-reversal
model:
  load_from_checkpoint: true
  checkpoint_filepath: unused
training: null
evaluation:
  batch_size: 2
  visualize: false
  name: hf_reversal
  dataset1:
    num_samples: 3
    generator: StringReversalGenerator
    generator_parameters:
      seed: 42
      charset: ["☃", "é", "a"]
      length: ${as_tuple:2,3}
  dataset2:
    num_samples: 2
    generator: StringReversalGenerator
    generator_parameters:
      seed: 42
      charset: ["☃", "é", "a"]
      length: ${as_tuple:4,4}
`

// TestEvaluateModelSplitCharacters evaluates a Hugging Face causal LM whose
// byte-level BPE tokenizer (tiny-gpt2's, ../shared/reference) splits ☃ into
// three tokens and é into two: the reference-token labels are mapped from the
// task's characters to the tokens (TestHFTokenizerSplitCharacter checks the
// mapping), every sample is scored on all its answer tokens, and each scored
// row's share of attention on reference tokens lies in [0, 1].
func TestEvaluateModelSplitCharacters(t *testing.T) {
	dir := refdata.Path(t, "models", "tiny-gpt2")
	e, err := ParseExperiment("hf.yaml", []byte(hfSplitConfig), nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := EvaluateModel(context.Background(), e, dir, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ID == nil || rep.OOD == nil || len(rep.ID.Samples) != 3 || len(rep.OOD.Samples) != 2 {
		t.Fatalf("report %+v", rep)
	}
	split := false
	for _, s := range append(rep.ID.Samples, rep.OOD.Samples...) {
		n := (len([]rune(s.Text)) - 1) / 2
		answer := string([]rune(s.Text)[n+1:])
		tokens := len([]byte(answer)) // one token per byte here: ☃ 3, é 2, a 1
		split = split || strings.ContainsAny(answer, "☃é")
		// Scored: every answer token and the EOS.
		if len(s.Piecewise) != tokens+1 || len(s.RefShare) == 0 {
			t.Fatalf("sample %q: %d scored positions for %d answer tokens + EOS, %d reference shares", s.Text, len(s.Piecewise), tokens, len(s.RefShare))
		}
		for _, v := range s.RefShare {
			if v < 0 || v > 1 {
				t.Fatalf("sample %q: reference share %g", s.Text, v)
			}
		}
	}
	if !split {
		t.Fatal("no sample has a split character in its answer")
	}
}
