package tasks

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// fakeTok is the oracle tokenizer of spec §7.2: encode(s) = [ord(c)+10 for c in s],
// BOS = 1, EOS = 2.
type fakeTok struct{}

func (fakeTok) Encode(s string, _ bool) []int {
	var out []int
	for _, r := range s {
		out = append(out, int(r)+10)
	}
	return out
}
func (fakeTok) BOS() int { return 1 }
func (fakeTok) EOS() int { return 2 }

func oracleCommon() Common { return Common{Seed: 0, Tokenizer: fakeTok{}} }

func next(t *testing.T, g Generator) *Sample {
	t.Helper()
	s, err := g.Next()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func cells(pairs ...int) [][2]int {
	var out [][2]int
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, [2]int{pairs[i], pairs[i+1]})
	}
	return out
}

// built returns a function that fails the test if a generator could not be built:
// g := built(t)(NewLongAddition(...)).
func built(t *testing.T) func(Generator, error) Generator {
	return func(g Generator, err error) Generator {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
}

// sample draws the next sample of g and checks its structure.
func sample(t *testing.T, g Generator) *Sample {
	t.Helper()
	s := next(t, g)
	checkStructure(t, s)
	return s
}

// wantOnes fails unless the reference cells of s (label 1) are want; what names the case.
func wantOnes(t *testing.T, s *Sample, want [][2]int, what string) {
	t.Helper()
	if got := s.Labels.Ones(); !slices.Equal(got, want) {
		t.Fatalf("%s: %q: label ones %v, want %v", what, s.Text, got, want)
	}
}

// checkStructure checks the invariants every sample obeys: shifted targets,
// the masked prompt, label rows before the answer ignored.
func checkStructure(t *testing.T, s *Sample) {
	t.Helper()
	if len(s.InputIDs) != len(s.TargetIDs) {
		t.Fatalf("input %d ids, target %d", len(s.InputIDs), len(s.TargetIDs))
	}
	for i := 1; i < len(s.InputIDs); i++ {
		if tg := s.TargetIDs[i-1]; tg != DefaultIgnoreIndex && tg != s.InputIDs[i] {
			t.Fatalf("target %d = %d is not the next input %d", i-1, tg, s.InputIDs[i])
		}
	}
	if s.Labels != nil && s.Labels.N != len(s.InputIDs) {
		t.Fatalf("labels are %d wide for %d inputs", s.Labels.N, len(s.InputIDs))
	}
}

// Oracle 18.
func TestLongAdditionOracle(t *testing.T) {
	g := built(t)(NewLongAddition(oracleCommon(), Range{1, 3}, Range{2, 2}, true))
	s := sample(t, g)
	if s.Text != "510+570=090" {
		t.Fatalf("text %q, want 510+570=090", s.Text)
	}
	if len(s.InputIDs) != 12 {
		t.Fatalf("len(input_ids) = %d, want 12", len(s.InputIDs))
	}
	if got := s.ScoredPositions(DefaultIgnoreIndex); !slices.Equal(got, []int{8, 9, 10, 11}) {
		t.Fatalf("valid targets at %v, want 8..11", got)
	}
	wantOnes(t, s, cells(8, 1, 8, 5, 9, 2, 9, 6, 10, 3, 10, 7), "long addition")
	// Row and column masks: rows < I+P+G-1 = 8 and column 0 are ignored.
	for r := 0; r < 12; r++ {
		for c := 0; c < 12; c++ {
			v := s.Labels.At(r, c)
			if (r < 8 || c < 1) && v != DefaultIgnoreIndex {
				t.Fatalf("label (%d,%d) = %d, want -100", r, c, v)
			}
		}
	}
	if s2 := next(t, g); s2.Text != "840+550=301" {
		t.Fatalf("second text %q, want 840+550=301", s2.Text)
	}
}

// Oracle 19.
func TestLongMultiplicationOracle(t *testing.T) {
	g := built(t)(NewLongMultiplication(oracleCommon(), Range{1, 2}, true, true))
	s := sample(t, g)
	if s.Text != "3400*5100=5120+0340+0000+0000=5460" {
		t.Fatalf("text %q", s.Text)
	}
	want := cells(10, 1, 10, 6, 11, 2, 11, 6, 12, 3, 12, 6, 13, 4, 13, 6, 15, 1, 15, 7)
	if got := s.Labels.Ones(); !slices.Equal(got[:len(want)], want) {
		t.Fatalf("first label ones %v, want %v", got[:len(want)], want)
	}
	// M = 4 products × 4 digits, two references each.
	if n := len(s.Labels.Ones()); n != 32 {
		t.Fatalf("%d label ones, want 32", n)
	}
}

// Oracle 20: labels do not depend on the charset order.
func TestStringReversalOracle(t *testing.T) {
	g := built(t)(NewStringReversal(oracleCommon(), strings.Split(ReversalCharset, ""), Range{3, 4}))
	for range 10 {
		s := next(t, g)
		checkStructure(t, s)
		n := (len(s.Text) - 1) / 2
		if reverse(s.Text[:n]) != s.Text[n+1:] || s.Text[n] != '=' {
			t.Fatalf("text %q is not s=reverse(s)", s.Text)
		}
		var want [][2]int
		for i := range n {
			want = append(want, [2]int{1 + n + i, n - i})
		}
		slices.SortFunc(want, func(a, b [2]int) int { return a[0] - b[0] })
		wantOnes(t, s, want, "string reversal")
		if n == 4 && !slices.Equal(want, cells(5, 4, 6, 3, 7, 2, 8, 1)) {
			t.Fatalf("4-char labels %v", want)
		}
		// Column I (the first input char) is masked except where labelled.
		// Columns < I+1 are masked for reversal (the first input char too), the
		// EOS row has no reference.
		last := s.Labels.N - 1
		if s.Labels.At(last, 1) != DefaultIgnoreIndex || s.Labels.At(last, 2) != 0 {
			t.Fatalf("reversal column mask: (%d,1)=%d (%d,2)=%d", last, s.Labels.At(last, 1), last, s.Labels.At(last, 2))
		}
	}
}

// Oracle 21.
func TestSuccessorOracle(t *testing.T) {
	g := built(t)(NewSuccessor(oracleCommon(), Range{8, 12}, Range{3, 3}))
	s := sample(t, g)
	if s.Text != "11 12 13 " {
		t.Fatalf("text %q", s.Text)
	}
	rows := map[int][2]int{3: {1, 3}, 4: {1, 4}, 5: {1, 5}, 6: {4, 6}, 7: {4, 7}}
	var want [][2]int
	for r := 3; r <= 7; r++ {
		for c := rows[r][0]; c <= rows[r][1]; c++ {
			want = append(want, [2]int{r, c})
		}
	}
	wantOnes(t, s, want, "successor")
	if s2 := next(t, g); s2.Text != "8 9 10 " {
		t.Fatalf("second text %q", s2.Text)
	}
}

// Oracle 22, original scan and the intended one.
func TestFlipFlopOracle(t *testing.T) {
	for _, tc := range []struct {
		original bool
		first    [][2]int
	}{
		{true, cells(11, 11)},
		{false, cells(11, 1, 11, 2, 11, 3, 11, 11)}, // the first command w11 is examined
	} {
		c := oracleCommon()
		c.Original = tc.original
		g := built(t)(NewFlipFlop(c, Range{4, 4}, true, Range{2, 2}))
		s := sample(t, g)
		if s.Text != "w11i11i00r11" {
			t.Fatalf("text %q", s.Text)
		}
		wantOnes(t, s, tc.first, fmt.Sprintf("flip-flop original=%v", tc.original))
		s = next(t, g)
		if s.Text != "f10i00f11r00" {
			t.Fatalf("second text %q", s.Text)
		}
		wantOnes(t, s, cells(11, 11), "flip-flop second sample")
	}
}

// Oracle 23.
func TestValueAssignmentOracle(t *testing.T) {
	g := built(t)(NewValueAssignment(oracleCommon(), strings.Split("ABCDEFGH", ""), strings.Split("12345678", ""), Range{3, 3}, Range{2, 2}))
	s := sample(t, g)
	if s.Text != "A8G8 AAA=888" {
		t.Fatalf("text %q", s.Text)
	}
	wantOnes(t, s, cells(9, 1, 9, 2, 9, 6, 10, 1, 10, 2, 10, 7, 11, 1, 11, 2, 11, 8), "value assignment")
}

func TestNoLabelsQuirk(t *testing.T) {
	c := oracleCommon()
	c.NoLabels = true
	g, _ := NewLongAddition(c, Range{1, 3}, Range{2, 2}, true)
	if s := next(t, g); s.Labels != nil {
		t.Fatal("labels produced with generate_attn_labels=false")
	}
	c.Original = true // the original tests the method, not the flag
	g, _ = NewLongAddition(c, Range{1, 3}, Range{2, 2}, true)
	if s := next(t, g); s.Labels == nil {
		t.Fatal("original behaviour should still produce labels")
	}
}

func TestInstructionAndFewShot(t *testing.T) {
	c := oracleCommon()
	c.UseInstruction = true
	c.UseFewShot = true
	instr := "Add."
	c.Instruction = &instr
	g := built(t)(NewLongAddition(c, Range{1, 3}, Range{2, 2}, true))
	s := sample(t, g)
	fewShot := defaultFewShotPrompt[0] + strings.Join(additionFewShot, "\n") + defaultFewShotPrompt[1]
	if want := instr + fewShot + "510+570=090"; s.Text != want {
		t.Fatalf("text %q, want %q", s.Text, want)
	}
	// Tokens: BOS, instruction, intro, samples each followed by "\n", outro.
	nInstr := len(instr) + len(defaultFewShotPrompt[0]) + len(defaultFewShotPrompt[1])
	for _, fs := range additionFewShot {
		nInstr += len(fs) + 1
	}
	if s.InstructionLen != nInstr+1 {
		t.Fatalf("I = %d, want %d", s.InstructionLen, nInstr+1)
	}
	I := s.InstructionLen
	want := cells(I+7, I, I+7, I+4, I+8, I+1, I+8, I+5, I+9, I+2, I+9, I+6)
	wantOnes(t, s, want, "instruction and few-shot")
}

func TestChatTemplate(t *testing.T) {
	c := oracleCommon()
	c.ChatTemplate = []string{"<u>", "</u><a>", "#", "</a>"}
	g := built(t)(NewLongAddition(c, Range{1, 3}, Range{2, 2}, true))
	s := sample(t, g)
	if s.Text != "<u></u><a>510+570=#090</a>" {
		t.Fatalf("text %q", s.Text)
	}
	if s.InstructionLen != 10 || s.GenPromptLen != 1 || s.PromptLen != 8 {
		t.Fatalf("I,P,G = %d,%d,%d", s.InstructionLen, s.PromptLen, s.GenPromptLen)
	}
	// The first answer row is I+P+G-1 = 18 and looks at digit 0 of both operands.
	if s.Labels.At(18, 10) != 1 || s.Labels.At(18, 14) != 1 || s.Labels.At(17, 10) != DefaultIgnoreIndex {
		t.Fatal("chat-template labels misplaced")
	}
}

func TestGeneratorErrors(t *testing.T) {
	c := oracleCommon()
	if _, err := NewLongAddition(c, Range{4, 1}, Range{2, 2}, true); err == nil || !strings.Contains(err.Error(), "length") {
		t.Fatalf("empty range: %v", err)
	}
	if _, err := NewLongAddition(c, Range{0, 3}, Range{2, 2}, true); err == nil {
		t.Fatal("zero-digit operands accepted")
	}
	if _, err := NewFlipFlop(c, Range{1, 5}, true, Range{1, 11}); err == nil {
		t.Fatal("11 registers accepted")
	}
	if _, err := NewValueAssignment(c, []string{"A", "B"}, []string{"1", "2"}, Range{1, 2}, Range{1, 3}); err == nil {
		t.Fatal("more keys than characters accepted")
	}
	o := c
	o.Original = true
	if _, err := NewFlipFlop(o, Range{1, 5}, false, Range{1, 2}); err == nil {
		t.Fatal("original use_flip=false should fail")
	}
	g := built(t)(NewFlipFlop(c, Range{5, 9}, false, Range{1, 3}))
	for range 20 {
		if s := next(t, g); strings.ContainsRune(s.Text, 'f') {
			t.Fatalf("use_flip=false produced a flip: %q", s.Text)
		}
	}
}

func TestAllGeneratorsStructure(t *testing.T) {
	c := oracleCommon()
	gens := []Generator{}
	add := func(g Generator, err error) {
		if err != nil {
			t.Fatal(err)
		}
		gens = append(gens, g)
	}
	add(NewLongAddition(c, Range{1, 20}, Range{2, 3}, true))
	add(NewLongMultiplication(c, Range{1, 5}, true, true))
	add(NewStringReversal(c, strings.Split(ReversalCharset, ""), Range{1, 30}))
	add(NewSuccessor(c, Range{1, 100}, Range{2, 10}))
	add(NewValueAssignment(c, strings.Split(AssignmentCharset, ""), strings.Split(AssignmentCharset, ""), Range{1, 20}, Range{1, 20}))
	add(NewFlipFlop(c, Range{1, 30}, true, Range{1, 10}))
	for _, g := range gens {
		for range 50 {
			s := sample(t, g)
			if len(s.Labels.Ones()) == 0 {
				t.Fatalf("%s: %q has no reference cell", g.Name(), s.Text)
			}
			// Every scored row of an answer has at least one reference, except successor/
			// value assignment whose EOS/padding rows have none.
			for _, one := range s.Labels.Ones() {
				if one[0] < s.InstructionLen+s.PromptLen+s.GenPromptLen-1 {
					t.Fatalf("%s: reference in a prompt row %v", g.Name(), one)
				}
			}
		}
	}
}
