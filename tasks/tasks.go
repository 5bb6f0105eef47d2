// Package tasks implements the AttentionSpan algorithmic-reasoning benchmark
// (github.com/michalspiegel/AttentionSpan, spec seeds.md §2): six task
// generators (long addition, long multiplication, string reversal, successor,
// value assignment, flip-flop language) that produce token sequences, shifted
// next-token targets and reference-token attention labels.
//
// Random draws go through PyRandom, a port of CPython's random module, so a
// generator with a given seed yields exactly the samples of the Python original.
//
// Where the original's quirks change the labels, the intended behaviour is the
// default and Common.Original restores the original one (see Common).
package tasks

import (
	"fmt"
	"slices"
	"strings"
)

// DefaultIgnoreIndex marks targets and label cells that are not scored.
const DefaultIgnoreIndex = -100

// Tokenizer is what the generators need from a tokenizer: encoding of a text
// (with or without the tokenizer's special tokens) and the BOS/EOS ids.
// Generators encode the task text one character at a time, as the original.
type Tokenizer interface {
	Encode(text string, addSpecialTokens bool) []int
	BOS() int
	EOS() int
}

// Labels is a square matrix of reference-token labels over the input
// positions: 1 = reference token, 0 = non-reference, IgnoreIndex = not scored.
// Row r is the position whose next-token prediction is scored (a query), the
// column the key it should attend to.
type Labels struct {
	N     int
	Cells []int32 // row-major N×N
}

// NewLabels returns an N×N label matrix of zeros.
func NewLabels(n int) *Labels { return &Labels{N: n, Cells: make([]int32, n*n)} }

// At returns the label of cell (r, c).
func (l *Labels) At(r, c int) int32 { return l.Cells[r*l.N+c] }

// Set sets cell (r, c) if it lies inside the matrix; it reports whether it did.
func (l *Labels) Set(r, c int, v int32) bool {
	if r < 0 || c < 0 || r >= l.N || c >= l.N {
		return false
	}
	l.Cells[r*l.N+c] = v
	return true
}

// Ones lists the (row, column) cells labelled 1 in row-major order.
func (l *Labels) Ones() [][2]int {
	var out [][2]int
	for i, v := range l.Cells {
		if v == 1 {
			out = append(out, [2]int{i / l.N, i % l.N})
		}
	}
	return out
}

// Sample is one generated task instance.
type Sample struct {
	Text      string // instruction text + task string (or the rendered chat)
	InputIDs  []int  // tokens[:-1]
	TargetIDs []int  // tokens[1:] with the prompt positions set to the ignore index
	Labels    *Labels
	// InstructionLen (I), PromptLen (P) and GenPromptLen (G) as in spec §2.3:
	// the prompt characters start at position I, the answer at I+P+G.
	InstructionLen, PromptLen, GenPromptLen int
}

// ScoredPositions returns the positions whose target is not the ignore index.
func (s *Sample) ScoredPositions(ignore int) []int {
	var out []int
	for i, t := range s.TargetIDs {
		if t != ignore {
			out = append(out, i)
		}
	}
	return out
}

// Generator yields an endless stream of samples.
type Generator interface {
	// Name is the original's class name, e.g. "LongAdditionGenerator".
	Name() string
	// Next returns the next sample.
	Next() (*Sample, error)
}

// Common holds the constructor parameters every AttentionSpan generator shares
// (spec §2.3). The zero value plus a Seed and a Tokenizer gives the original's
// defaults, except the two negated booleans.
type Common struct {
	Seed      int64
	Tokenizer Tokenizer
	// Instruction replaces the task's DEFAULT_INSTRUCTION when non-nil.
	Instruction *string
	// FewShotPrompt (intro, outro) and FewShotSamples replace the defaults when non-nil.
	FewShotPrompt  *[2]string
	FewShotSamples []string
	UseInstruction bool
	UseFewShot     bool
	// IgnoreIndex for targets and labels; 0 means DefaultIgnoreIndex (-100).
	IgnoreIndex int
	// NoLabels turns attention labels off (generate_attn_labels=False).
	NoLabels bool
	// ChatTemplate, when it has 4 parts, is the tokenizer's chat template rendered
	// for [user: "{tokens}{tokens}", assistant: "{tokens}"] and split on "{tokens}"
	// (apply_chat_template=True); rendering Jinja templates is left to the caller.
	ChatTemplate []string
	// Original reproduces the original code's label-changing quirks (spec §2.4 ⚠):
	// addition, multiplication, reversal and flip-flop produce labels even when
	// NoLabels is set; multiplication masks prompt rows up to I+P−1 ignoring G;
	// flip-flop never examines the first command and concatenates its two
	// default few-shot samples (missing comma); flip-flop with use_flip=false fails.
	Original bool
}

func (c *Common) ignore() int {
	if c.IgnoreIndex == 0 {
		return DefaultIgnoreIndex
	}
	return c.IgnoreIndex
}

func (c *Common) validate(task string) error {
	if c.Tokenizer == nil {
		return fmt.Errorf("%s: no tokenizer", task)
	}
	if len(c.ChatTemplate) != 0 && len(c.ChatTemplate) != 4 {
		return fmt.Errorf("%s: chat template must split into 4 parts around {tokens}, got %d", task, len(c.ChatTemplate))
	}
	return nil
}

// taskText is the task-specific part of a sample before assembly.
type taskText struct {
	prompt, answer string
	noEOS          bool
}

// layout gives the label functions the sample geometry. The label functions
// count one position per task character (the original's character
// tokenizers); when the tokenizer splits a task character into several tokens
// (byte-level BPE, SentencePiece byte fallback), the geometry is that of the
// characters — I and G in tokens of the instruction and chat template, P in
// characters, ids one per character — and expand maps the character labels to
// the tokens.
type layout struct {
	I, P, G int
	ids     []int // input ids (tokens[:-1]), one per character
	// owner[t] is the position in character space of token t of the whole
	// sequence (nil: one token per character, no mapping).
	owner []int
}

// expand maps labels computed over character positions to the sample's tokens,
// through each token's character (its offsets: the generators encode the task
// text one character at a time, so every token lies inside one character). Key
// token c takes the label of its character's column: every token of a reference
// character is a reference token. Query row r predicts token r+1, so it takes
// the row of the character position that predicts token r+1's character: the
// last token of a character predicts the next character, the tokens before it
// predict the rest of their own character (as the row predicting its first
// token).
func (lay layout) expand(l *Labels) *Labels {
	if lay.owner == nil || l == nil {
		return l
	}
	n := len(lay.owner) - 1
	out := NewLabels(n)
	for r := range n {
		rc := lay.owner[r+1] - 1
		for c := range n {
			out.Cells[r*n+c] = l.At(rc, lay.owner[c])
		}
	}
	return out
}

// encodeChars encodes s one character at a time without special tokens.
func encodeChars(tok Tokenizer, s string) []int {
	ids, _ := encodeCharsOwned(tok, s)
	return ids
}

// encodeCharsOwned is encodeChars also returning, per character, its tokens'
// count.
func encodeCharsOwned(tok Tokenizer, s string) (ids, counts []int) {
	for _, ch := range s {
		t := tok.Encode(string(ch), false)
		ids = append(ids, t...)
		counts = append(counts, len(t))
	}
	return ids, counts
}

// charSpace returns, for a task text encoded per character (tokens ids, counts
// per character), one id per character — its token, or for a character split
// into several tokens a negative id of its own, −1 − code point, so that equal
// characters compare equal — and each token's character index.
func charSpace(s string, ids, counts []int) (chars, owner []int) {
	k := 0
	for i, ch := range []rune(s) {
		if counts[i] == 1 {
			chars = append(chars, ids[k])
		} else {
			chars = append(chars, -1-int(ch))
		}
		for range counts[i] {
			owner = append(owner, i)
		}
		k += counts[i]
	}
	return chars, owner
}

// assemble builds tokens, targets and the label geometry of spec §2.3 steps 1–4.
func (c *Common) assemble(tt taskText, defInstr string, defFewShot [2]string, defSamples []string) (*Sample, layout, error) {
	tok := c.Tokenizer
	var instrTok []int
	var instrText strings.Builder
	if c.UseInstruction {
		instr := defInstr
		if c.Instruction != nil {
			instr = *c.Instruction
		}
		instrTok = append(instrTok, tok.Encode(instr, false)...)
		instrText.WriteString(instr)
	}
	if c.UseFewShot {
		fp := defFewShot
		if c.FewShotPrompt != nil {
			fp = *c.FewShotPrompt
		}
		samples := defSamples
		if c.FewShotSamples != nil {
			samples = c.FewShotSamples
		}
		instrTok = append(instrTok, tok.Encode(fp[0], false)...)
		for _, s := range samples {
			instrTok = append(instrTok, encodeChars(tok, s)...)
			instrTok = append(instrTok, tok.Encode("\n", false)...)
		}
		instrTok = append(instrTok, tok.Encode(fp[1], false)...)
		instrText.WriteString(fp[0] + strings.Join(samples, "\n") + fp[1])
	}
	promptTok, promptCounts := encodeCharsOwned(tok, tt.prompt)
	answerTok, answerCounts := encodeCharsOwned(tok, tt.answer)
	P := len(promptTok)
	split := P != len(promptCounts) || len(answerTok) != len(answerCounts)
	if split && !c.NoLabels && tokErr(tok) == nil && (slices.Contains(promptCounts, 0) || slices.Contains(answerCounts, 0)) {
		// A character without a token has no position to label.
		return nil, layout{}, fmt.Errorf("the tokenizer encodes a character of %q as no token: the reference-token labels need a position for every task character; use a charset the tokenizer keeps, or generate_attn_labels: false", tt.prompt+tt.answer)
	}

	var tokens []int
	var text string
	var I, G int
	if len(c.ChatTemplate) == 4 {
		p := c.ChatTemplate
		tokens = append(tokens, tok.Encode(p[0], true)...)
		tokens = append(tokens, instrTok...)
		tokens = append(tokens, tok.Encode(p[1], false)...)
		I = len(tokens)
		tokens = append(tokens, promptTok...)
		gen := tok.Encode(p[2], false)
		G = len(gen)
		tokens = append(tokens, gen...)
		tokens = append(tokens, answerTok...)
		text = p[0] + instrText.String() + p[1] + tt.prompt + p[2] + tt.answer
		if !tt.noEOS {
			tokens = append(tokens, tok.Encode(p[3], false)...)
			text += p[3]
		}
	} else {
		tokens = append(tokens, tok.BOS())
		tokens = append(tokens, instrTok...)
		tokens = append(tokens, promptTok...)
		tokens = append(tokens, answerTok...)
		if !tt.noEOS {
			tokens = append(tokens, tok.EOS())
		}
		text = instrText.String() + tt.prompt + tt.answer
		I = len(instrTok) + 1
	}
	target := append([]int(nil), tokens...)
	for i := 0; i < I+P+G && i < len(target); i++ {
		target[i] = c.ignore()
	}
	s := &Sample{
		Text:           text,
		InputIDs:       tokens[:len(tokens)-1],
		TargetIDs:      target[1:],
		InstructionLen: I,
		PromptLen:      P,
		GenPromptLen:   G,
	}
	lay := layout{I: I, P: P, G: G, ids: s.InputIDs}
	if split && tokErr(tok) == nil {
		lay = charLayout(tokens, I, G, tt, promptTok, promptCounts, answerTok, answerCounts)
	}
	return s, lay, tokErr(tok)
}

// charLayout is the character-space layout of tokens = prefix (I tokens) +
// prompt + chat generation prompt (G tokens) + answer + end, whose prompt and
// answer characters were encoded into possibly several tokens each.
func charLayout(tokens []int, I, G int, tt taskText, promptTok, promptCounts, answerTok, answerCounts []int) layout {
	pc, po := charSpace(tt.prompt, promptTok, promptCounts)
	ac, ao := charSpace(tt.answer, answerTok, answerCounts)
	var chars, owner []int
	add := func(ids []int) { // tokens kept one per position
		for _, id := range ids {
			owner = append(owner, len(chars))
			chars = append(chars, id)
		}
	}
	addChars := func(cs, own []int) {
		base := len(chars)
		for _, o := range own {
			owner = append(owner, base+o)
		}
		chars = append(chars, cs...)
	}
	P, A := len(promptTok), len(answerTok)
	add(tokens[:I])
	addChars(pc, po)
	add(tokens[I+P : I+P+G])
	addChars(ac, ao)
	add(tokens[I+P+G+A:])
	return layout{I: I, P: len(pc), G: G, ids: chars[:len(chars)-1], owner: owner}
}

// maskedLabels returns the label matrix with rows < rowEnd and columns < colEnd
// set to the ignore index (spec §2.3 step 5).
func (c *Common) maskedLabels(n, rowEnd, colEnd int) *Labels {
	l := NewLabels(n)
	ig := int32(c.ignore())
	for r := 0; r < n; r++ {
		for col := 0; col < n; col++ {
			if r < rowEnd || col < colEnd {
				l.Cells[r*n+col] = ig
			}
		}
	}
	return l
}

// Range is an inclusive integer range (lo, hi), as the original's tuples.
type Range struct{ Lo, Hi int }

func (r Range) String() string { return fmt.Sprintf("(%d,%d)", r.Lo, r.Hi) }

func (r Range) check(task, name string, min, max int) error {
	if r.Lo > r.Hi {
		return fmt.Errorf("%s: %s %v is empty: the lower bound is above the upper bound", task, name, r)
	}
	if r.Lo < min {
		return fmt.Errorf("%s: %s %v must start at %d or more", task, name, r, min)
	}
	if max > 0 && r.Hi > max {
		return fmt.Errorf("%s: %s %v must end at %d or less", task, name, r, max)
	}
	return nil
}

func (r Range) draw(rng *PyRandom) int { return int(rng.RandInt(int64(r.Lo), int64(r.Hi))) }
