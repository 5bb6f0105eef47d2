package tasks

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// Default charsets. The original uses Python sets, whose iteration order (and so
// the samples) depends on PYTHONHASHSEED; this port uses the literal string order
// of the original source, so samples are reproducible but differ from a given
// Python run of string reversal or value assignment with the default charsets.
const (
	ReversalCharset   = "QWERTZUIOPASDFGHJKLYXCVBNMqwertzuiopasdfghjklyxcvbnm1234567890"
	AssignmentCharset = "qwertzuiopasdfghjklyxcvbnmQWERTZUIOPASDFGHJKLYXCVBNM1234567890"
)

var (
	defaultFewShotPrompt = [2]string{"\nHere are some examples:\n", "\nUse them to solve the following task:\n"}
	plainFewShotPrompt   = [2]string{"Here are some examples:\n", "Use them to solve the following task:\n"}
)

func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

func ljust(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return s + strings.Repeat("0", n-len(s))
}

func pow10(d int) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d)), nil) }

// drawOperand draws randint(10^(d-1), 10^d): the original's upper bound is
// inclusive, so an operand may have d+1 digits (kept: it does not change labels).
func drawOperand(rng *PyRandom, d int) *big.Int {
	return rng.BigRandInt(pow10(d-1), pow10(d))
}

// ---------------------------------------------------------------------------

const additionInstruction = `
You are an expert in solving arithmetic tasks. You will be tasked with computing the sum of input numbers.
The number are all represented with their least significant digit first.
Sum these number using the standard addition algorithm. When predicting each digit of the result, always sum the corresponding digits of each number and remember the carry.
Do not generate any words. You can only generate number and nothing else.
`

var additionFewShot = []string{"1+1=2", "1240+4335+3440=8916", "999+999=8991"}

// LongAddition is LongAdditionGenerator: K = max(randint(NumOfNums), 2)
// operands of randint(Length) digits, written least-significant digit first and
// right-padded with zeros to M = max digits + 1, e.g. 15+75 → "510+570=090".
// Reference for output digit i: the i-th digit of every operand.
type LongAddition struct {
	Common
	Length       Range // digits per operand, default (1,20)
	NumOfNums    Range // operands, default (2,3)
	PadWithZeros bool  // default true
	rng          *PyRandom
}

// checkDigitTask checks the parameters the arithmetic generators share: the common
// ones, operand lengths of at least one digit, and zero padding when labels are
// generated (the label positions assume padded operands).
func checkDigitTask(task string, c Common, length Range, padWithZeros bool) error {
	if err := c.validate(task); err != nil {
		return err
	}
	if err := length.check(task, "length", 1, 0); err != nil {
		return err
	}
	if !padWithZeros && !c.NoLabels {
		return fmt.Errorf("%s: attention labels need pad_with_zeros=true (operand positions assume padded operands); set generate_attn_labels=false", task)
	}
	return nil
}

// NewLongAddition returns a long-addition generator.
func NewLongAddition(c Common, length, numOfNums Range, padWithZeros bool) (*LongAddition, error) {
	const task = "LongAdditionGenerator"
	if err := checkDigitTask(task, c, length, padWithZeros); err != nil {
		return nil, err
	}
	if err := numOfNums.check(task, "num_of_nums", 0, 0); err != nil {
		return nil, err
	}
	return &LongAddition{Common: c, Length: length, NumOfNums: numOfNums, PadWithZeros: padWithZeros, rng: NewPyRandom(c.Seed)}, nil
}

func (g *LongAddition) Name() string { return "LongAdditionGenerator" }

func (g *LongAddition) Next() (*Sample, error) {
	k := max(g.NumOfNums.draw(g.rng), 2)
	nums := make([]*big.Int, k)
	sum := new(big.Int)
	m := 0
	for i := range nums {
		d := g.Length.draw(g.rng)
		nums[i] = drawOperand(g.rng, d)
		sum.Add(sum, nums[i])
		m = max(m, len(nums[i].String()))
	}
	m++
	strs := make([]string, k)
	for i, n := range nums {
		strs[i] = reverse(n.String())
	}
	sumStr := reverse(sum.String())
	if g.PadWithZeros {
		sumStr = ljust(sumStr, m)
		for i := range strs {
			strs[i] = ljust(strs[i], m)
		}
	}
	s, lay, err := g.assemble(taskText{prompt: strings.Join(strs, "+") + "=", answer: sumStr}, additionInstruction, defaultFewShotPrompt, additionFewShot)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.Name(), err)
	}
	if g.NoLabels && !g.Original {
		return s, nil
	}
	I, P, G := lay.I, lay.P, lay.G
	l := g.maskedLabels(len(lay.ids), I+P+G-1, I)
	for i := 0; i < m; i++ {
		for j := 0; j < k; j++ {
			l.Set(I+P+G-1+i, I+j*(m+1)+i, 1)
		}
	}
	s.Labels = lay.expand(l)
	return s, nil
}

// ---------------------------------------------------------------------------

const multiplicationInstruction = `
You are an expert in solving arithmetic tasks. You will be tasked with multiplying two input numbers. Input number are always reversed and padded with zeros from the right.
Multiply these numbers using the standard multiplication algorithm.
Start from the first digit of the second number and multiply this digit with every digit of the second number (starting from left). Remember the carry.
Do not generate any words. You can only generate the digits, symbol + and symbol =.
`

var multiplicationFewShot = []string{"10*10=10+00=10", "9900*9900=1980+0198+0000+0000=1089"}

// LongMultiplication is LongMultiplicationGenerator: two operands (swapped so
// num1 ≥ num2), M = 2·len(num1), the intermediate products num1·d_k·10^k for the
// digits of num2, all reversed and zero-padded to M, the product list padded to M
// entries: "3400*5100=5120+0340+0000+0000=5460" for 43×15. Reference for digit j
// of intermediate product i: digit i of num2 and digit j of num1.
// GenerateCarry is accepted and unused, as in the original (a TODO there).
type LongMultiplication struct {
	Common
	Length        Range // default (1,20)
	PadWithZeros  bool  // default true
	GenerateCarry bool  // default true; unused
	rng           *PyRandom
}

// NewLongMultiplication returns a long-multiplication generator.
func NewLongMultiplication(c Common, length Range, padWithZeros, generateCarry bool) (*LongMultiplication, error) {
	const task = "LongMultiplicationGenerator"
	if err := checkDigitTask(task, c, length, padWithZeros); err != nil {
		return nil, err
	}
	return &LongMultiplication{Common: c, Length: length, PadWithZeros: padWithZeros, GenerateCarry: generateCarry, rng: NewPyRandom(c.Seed)}, nil
}

func (g *LongMultiplication) Name() string { return "LongMultiplicationGenerator" }

func (g *LongMultiplication) Next() (*Sample, error) {
	l1 := g.Length.draw(g.rng)
	l2 := g.Length.draw(g.rng)
	n1 := drawOperand(g.rng, l1)
	n2 := drawOperand(g.rng, l2)
	if n1.Cmp(n2) < 0 {
		n1, n2 = n2, n1
		l1, l2 = l2, l1
	}
	m := 2 * l1
	product := new(big.Int).Mul(n1, n2)
	var inter []string
	d2 := reverse(n2.String())
	for idx := 0; idx < len(d2); idx++ {
		v := new(big.Int).Mul(n1, big.NewInt(int64(d2[idx]-'0')))
		v.Mul(v, pow10(idx))
		inter = append(inter, reverse(v.String()))
	}
	s1, s2, sp := reverse(n1.String()), d2, reverse(product.String())
	if g.PadWithZeros {
		s1, s2, sp = ljust(s1, m), ljust(s2, m), ljust(sp, m)
		for i := range inter {
			inter[i] = ljust(inter[i], m)
		}
		for len(inter) < m {
			inter = append(inter, strings.Repeat("0", m))
		}
	}
	prompt := s1 + "*" + s2 + "="
	answer := strings.Join(inter, "+") + "=" + sp
	s, lay, err := g.assemble(taskText{prompt: prompt, answer: answer}, multiplicationInstruction, defaultFewShotPrompt, multiplicationFewShot)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.Name(), err)
	}
	if g.NoLabels && !g.Original {
		return s, nil
	}
	I, P, G := lay.I, lay.P, lay.G
	rowEnd := I + P + G - 1
	if g.Original {
		rowEnd = I + P - 1
	}
	l := g.maskedLabels(len(lay.ids), rowEnd, I)
	for i := 0; i < m; i++ {
		for j := 0; j < m; j++ {
			r := I + G + P + i*(m+1) + j - 1
			l.Set(r, I+m+1+i, 1)
			l.Set(r, I+j, 1)
		}
	}
	s.Labels = lay.expand(l)
	return s, nil
}

// ---------------------------------------------------------------------------

const reversalInstruction = `
You are an expert in solving tasks requiring manipulation of symbols. 
Given an arbitrary input string of symbols, your task will be to produce an exact reversed copy of these symbols.
Do not generate any words. You can only generate the symbols of the reversed string of symbols and nothing more.
`

var reversalFewShot = []string{"123456789=987654321", "abhdsifhidasf=fsadihfisdhba", "1=1", "9j7g2k0b8h=h8b0k2g7j9"}

// StringReversal is StringReversalGenerator: randint(Length) characters drawn
// with replacement from Charset, then "s=reverse(s)". Reference for output
// character i: the mirrored input character.
type StringReversal struct {
	Common
	Charset []string // default: ReversalCharset, one character each
	Length  Range    // default (1,100)
	rng     *PyRandom
}

// NewStringReversal returns a string-reversal generator.
func NewStringReversal(c Common, charset []string, length Range) (*StringReversal, error) {
	const task = "StringReversalGenerator"
	if err := c.validate(task); err != nil {
		return nil, err
	}
	if err := length.check(task, "length", 1, 0); err != nil {
		return nil, err
	}
	if len(charset) == 0 {
		return nil, fmt.Errorf("%s: charset is empty", task)
	}
	return &StringReversal{Common: c, Charset: charset, Length: length, rng: NewPyRandom(c.Seed)}, nil
}

func (g *StringReversal) Name() string { return "StringReversalGenerator" }

func (g *StringReversal) Next() (*Sample, error) {
	n := g.Length.draw(g.rng)
	var sb strings.Builder
	for _, i := range g.rng.Choices(len(g.Charset), n) {
		sb.WriteString(g.Charset[i])
	}
	str := sb.String()
	rev := []rune(str)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	s, lay, err := g.assemble(taskText{prompt: str + "=", answer: string(rev)}, reversalInstruction, defaultFewShotPrompt, reversalFewShot)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.Name(), err)
	}
	if g.NoLabels && !g.Original {
		return s, nil
	}
	I, P, G := lay.I, lay.P, lay.G
	l := g.maskedLabels(len(lay.ids), I+P+G-1, I+1)
	start := I + P + G - 1
	for i := 0; i < P-1; i++ {
		l.Set(start+i, start-G-i-1, 1)
	}
	s.Labels = lay.expand(l)
	return s, nil
}

// ---------------------------------------------------------------------------

const successorInstruction = `
You are a great mathematician. You will be tasked with generating a series of numbers. The series will be an increasing series with constant difference 1. 
You will be given the start of the sequence (the first number) and your task will be to continue generating the next elements indefinitely.
Do not generate any words. You can only generate digits and numbers from the series.

`

var successorFewShot = []string{"0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17", "234 235 236 237 238 239 240", "2 3 4 5 6 7 8 9 10 11 12 13", "50 51 52 53 54"}

// Successor is SuccessorGenerator: "s s+1 … s+n−1 " (a space after each, no
// EOS) with s = randint(StartNumberRange), n = randint(Length); the prompt is the
// first number and its space. Reference: the previous number and the current
// partial number.
type Successor struct {
	Common
	StartNumberRange Range // default (1,100)
	Length           Range // default (1,100): count of numbers
	rng              *PyRandom
}

// NewSuccessor returns a successor generator.
func NewSuccessor(c Common, start, length Range) (*Successor, error) {
	const task = "SuccessorGenerator"
	if err := c.validate(task); err != nil {
		return nil, err
	}
	if err := start.check(task, "start_number_range", 0, 0); err != nil {
		return nil, err
	}
	if err := length.check(task, "length", 1, 0); err != nil {
		return nil, err
	}
	return &Successor{Common: c, StartNumberRange: start, Length: length, rng: NewPyRandom(c.Seed)}, nil
}

func (g *Successor) Name() string { return "SuccessorGenerator" }

func (g *Successor) Next() (*Sample, error) {
	start := g.StartNumberRange.draw(g.rng)
	n := g.Length.draw(g.rng)
	var sb strings.Builder
	for i := 0; i < n; i++ {
		sb.WriteString(strconv.Itoa(start+i) + " ")
	}
	text := sb.String()
	p := len(strconv.Itoa(start)) + 1
	s, lay, err := g.assemble(taskText{prompt: text[:p], answer: text[p:], noEOS: true}, successorInstruction, plainFewShotPrompt, successorFewShot)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.Name(), err)
	}
	if g.NoLabels { // the original honours the flag here
		return s, nil
	}
	I, P, G := lay.I, lay.P, lay.G
	size := len(lay.ids)
	l := g.maskedLabels(size, I+P+G-1, I)
	space := g.Tokenizer.Encode(" ", false)
	if len(space) == 0 {
		return nil, fmt.Errorf("SuccessorGenerator: the tokenizer encodes a space to no token")
	}
	first := I + P + G - 1
	last, cur := I-1, I-1
	for r := first; r < size-1; r++ {
		sep := r == first || lay.ids[r] == space[0]
		if sep {
			last = cur
		}
		for c := last + 1; c <= r; c++ {
			l.Set(r, c, 1)
		}
		if last <= I {
			for c := I + P; c < I+P+G; c++ {
				l.Set(r, c, 0)
			}
		}
		if sep {
			cur = r
		}
	}
	s.Labels = lay.expand(l)
	return s, nil
}

// ---------------------------------------------------------------------------

const assignmentInstruction = `
You are a great problem solver excellent in tasks requiring manipulation of symbols. You will be tasked with encoding a sequence of characters given a set of encodings. 
An encoding is a tuple of characters, e.g. A1, where A is the character to be encoded, and 1 is its encoding. For example, given some string "A", its encoding is a sequence "1". 
Given a set of these encodings and an input string, encode this string.
Do not generate any words. You can only generate characters from the set of encodings.
`

var assignmentFewShot = []string{"H3K8U1D5G9F1 HKKHDFG=3883519", "ABCDEFGHIJKL ACEGIK=BDFHJL"}

// ValueAssignment is ValueAssignmentGenerator: k = randint(EncodingLength)
// distinct "from" and "to" characters, a (not necessarily injective) mapping
// from→to, an input of randint(Length) from-characters, text
// "pairs input=encoded", e.g. "A8G8 AAA=888". Reference for output character
// i: the aligned input symbol and its key–value pair.
type ValueAssignment struct {
	Common
	CharsetFrom, CharsetTo []string // default: AssignmentCharset
	Length                 Range    // input length, default (1,100)
	EncodingLength         Range    // number of keys, default (1,100)
	rng                    *PyRandom
}

// NewValueAssignment returns a value-assignment generator.
func NewValueAssignment(c Common, from, to []string, length, encodingLength Range) (*ValueAssignment, error) {
	const task = "ValueAssignmentGenerator"
	if err := c.validate(task); err != nil {
		return nil, err
	}
	if err := length.check(task, "length", 1, 0); err != nil {
		return nil, err
	}
	maxKeys := min(len(from), len(to))
	if err := encodingLength.check(task, "encoding_length", 1, maxKeys); err != nil {
		return nil, fmt.Errorf("%w (charset_from has %d characters, charset_to %d)", err, len(from), len(to))
	}
	return &ValueAssignment{Common: c, CharsetFrom: from, CharsetTo: to, Length: length, EncodingLength: encodingLength, rng: NewPyRandom(c.Seed)}, nil
}

func (g *ValueAssignment) Name() string { return "ValueAssignmentGenerator" }

func (g *ValueAssignment) Next() (*Sample, error) {
	k := g.EncodingLength.draw(g.rng)
	fromSub := pick(g.CharsetFrom, g.rng.Sample(len(g.CharsetFrom), k))
	toSub := pick(g.CharsetTo, g.rng.Sample(len(g.CharsetTo), k))
	keys := pick(fromSub, g.rng.Sample(len(fromSub), k))
	mapping := make(map[string]string, k)
	var pairs strings.Builder
	for _, key := range keys {
		mapping[key] = toSub[g.rng.Choice(len(toSub))]
	}
	for _, key := range keys { // dict insertion order = sampled key order
		pairs.WriteString(key + mapping[key])
	}
	n := g.Length.draw(g.rng)
	var in, enc strings.Builder
	for _, i := range g.rng.Choices(len(fromSub), n) {
		in.WriteString(fromSub[i])
		enc.WriteString(mapping[fromSub[i]])
	}
	A := len([]rune(pairs.String()))
	L := n
	s, lay, err := g.assemble(taskText{prompt: pairs.String() + " " + in.String() + "=", answer: enc.String()}, assignmentInstruction, plainFewShotPrompt, assignmentFewShot)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.Name(), err)
	}
	if g.NoLabels { // the original honours the flag here
		return s, nil
	}
	I, P, G := lay.I, lay.P, lay.G
	ids := lay.ids
	l := g.maskedLabels(len(ids), I+P+G-1, I)
	for r := I + P + G - 1; r < I+P+G+L-1; r++ {
		src := r - L - G
		l.Set(r, src, 1)
		for j := I; j < I+A; j += 2 {
			if ids[j] == ids[src] {
				l.Set(r, j, 1)
				l.Set(r, j+1, 1)
			}
		}
	}
	s.Labels = lay.expand(l)
	return s, nil
}

func pick(set []string, idx []int) []string {
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = set[j]
	}
	return out
}

// ---------------------------------------------------------------------------

const flipFlopInstruction = `
You are an expert in solving tasks requiring manipulation of symbols. Your task will be to evaluate a string representing a register.
The string is composed of commands to the register: write, read, ignore, flip. Each is represented by a single character (w, r, i, f)
Do not generate any words. You can only generate the symbols of the reversed string of symbols and nothing more.
`

var (
	flipFlopFewShot         = []string{"w11i11f10r10f10r11", "i11i11i11i11i11i11r10"}
	flipFlopFewShotOriginal = []string{"w11i11f10r10f10r11i11i11i11i11i11i11r10"}
)

// FlipFlop is FlipFlopGenerator: R = randint(NumRegisters) one-bit registers,
// randint(Length)−1 commands "<w|i|f><register><value>" and a final read
// "r<register><value>" whose value is the answer. Reference: the read's
// register digit, the last write to that register and the flips after it.
type FlipFlop struct {
	Common
	Length       Range // commands including the final read, default (1,100)
	UseFlip      bool  // default true
	NumRegisters Range // default (1,10)
	rng          *PyRandom
}

// NewFlipFlop returns a flip-flop language generator.
func NewFlipFlop(c Common, length Range, useFlip bool, numRegisters Range) (*FlipFlop, error) {
	const task = "FlipFlopGenerator"
	if err := c.validate(task); err != nil {
		return nil, err
	}
	if err := length.check(task, "length", 1, 0); err != nil {
		return nil, err
	}
	if err := numRegisters.check(task, "num_registers", 1, 10); err != nil {
		return nil, err
	}
	if !useFlip && c.Original {
		return nil, fmt.Errorf("%s: use_flip=false fails in the original code (UnboundLocalError); drop the original option to generate write/ignore-only samples", task)
	}
	return &FlipFlop{Common: c, Length: length, UseFlip: useFlip, NumRegisters: numRegisters, rng: NewPyRandom(c.Seed)}, nil
}

func (g *FlipFlop) Name() string { return "FlipFlopGenerator" }

func (g *FlipFlop) Next() (*Sample, error) {
	R := g.NumRegisters.draw(g.rng)
	regs := make([]byte, R)
	for i := range regs {
		regs[i] = '0'
	}
	cmds := []byte("wif")
	if !g.UseFlip {
		cmds = []byte("wi")
	}
	steps := g.Length.draw(g.rng) - 1
	var sb strings.Builder
	for ; steps > 0; steps-- {
		cmd := cmds[g.rng.Choice(len(cmds))]
		reg := int(g.rng.RandInt(0, int64(R-1)))
		val := "01"[g.rng.Choice(2)]
		sb.WriteByte(cmd)
		sb.WriteByte(byte('0' + reg))
		sb.WriteByte(val)
		switch cmd {
		case 'w':
			regs[reg] = val
		case 'f':
			if regs[reg] == '1' {
				regs[reg] = '0'
			} else {
				regs[reg] = '1'
			}
		}
	}
	read := int(g.rng.RandInt(0, int64(R-1)))
	sb.WriteByte('r')
	sb.WriteByte(byte('0' + read))
	sb.WriteByte(regs[read])
	text := sb.String()
	fewShot := flipFlopFewShot
	if g.Original {
		fewShot = flipFlopFewShotOriginal
	}
	s, lay, err := g.assemble(taskText{prompt: text[:len(text)-1], answer: text[len(text)-1:]}, flipFlopInstruction, defaultFewShotPrompt, fewShot)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.Name(), err)
	}
	if g.NoLabels && !g.Original {
		return s, nil
	}
	I, P, G := lay.I, lay.P, lay.G
	ids := lay.ids
	l := g.maskedLabels(len(ids), I+P+G-1, I)
	r0 := I + P + G - 1
	l.Set(r0, I+P-1, 1)
	regTok := ids[I+P-1]
	w := g.Tokenizer.Encode("w", false)
	f := g.Tokenizer.Encode("f", false)
	if len(w) == 0 || len(f) == 0 {
		return nil, fmt.Errorf("FlipFlopGenerator: the tokenizer encodes \"w\" or \"f\" to no token")
	}
	stop := I // intended: examine every command, the first one at position I included
	if g.Original {
		stop = I + 3 // original: range(I+P-2, I+2, -3) never reaches position I
	}
	for i := I + P - 2; i >= stop; i -= 3 {
		if ids[i] == w[0] && ids[i+1] == regTok {
			for c := i; c < i+3; c++ {
				l.Set(r0, c, 1)
			}
			break
		} else if ids[i] == f[0] && ids[i+1] == regTok {
			l.Set(r0, i, 1)
			l.Set(r0, i+1, 1)
		}
	}
	s.Labels = lay.expand(l)
	return s, nil
}
