package diagnose

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/tokenizer"
)

// Example is one model input: token ids with their segment ids and, for
// classification tasks, a label (a class index, or a score for regression).
type Example struct {
	IDs     []int
	TypeIDs []int // nil: all zero
	Label   float64
}

func checkExample(n *Net, ex Example) error {
	v := n.Cfg.VocabSize
	if n.Cfg.MaxPositions > 0 && len(ex.IDs) > n.Cfg.MaxPositions {
		return fmt.Errorf("example has %d tokens, more than the model's %d positions (config.json max_position_embeddings)", len(ex.IDs), n.Cfg.MaxPositions)
	}
	for i, id := range ex.IDs {
		if id < 0 || id >= v {
			return fmt.Errorf("token %d at position %d is outside the vocabulary of %d (config.json vocab_size)", id, i, v)
		}
	}
	if ex.TypeIDs != nil && len(ex.TypeIDs) != len(ex.IDs) {
		return fmt.Errorf("example has %d token type ids for %d tokens", len(ex.TypeIDs), len(ex.IDs))
	}
	for _, t := range ex.TypeIDs {
		if t < 0 || t >= max(n.Cfg.TypeVocabSize, 1) {
			return fmt.Errorf("token type id %d is outside type_vocab_size %d", t, n.Cfg.TypeVocabSize)
		}
	}
	return nil
}

// TokenMap remaps token ids before they reach the model (BERT-non-text's
// assignment of non-text symbols to vocabulary ids): either a shift
// t ↦ (t + Shift) mod V or a lookup table t ↦ Table[t].
type TokenMap struct {
	Shift int
	Table []int // nil: the shift
}

// Apply maps ids in place (V = vocabulary size).
func (m TokenMap) Apply(ids []int, v int) {
	for i, t := range ids {
		if m.Table != nil {
			ids[i] = m.Table[t]
		} else {
			ids[i] = ((t+m.Shift)%v + v) % v
		}
	}
}

// String describes the map as outputs record it.
func (m TokenMap) String() string {
	if m.Table != nil {
		return fmt.Sprintf("table of %d ids", len(m.Table))
	}
	return fmt.Sprintf("shift %d: (t + %d) mod V", m.Shift, m.Shift)
}

// RandomTable is BERT-non-text's gen_table.py with a seeded generator: the
// ids reserved+1 … V−1 in a random order fill positions 0 … V−reserved−1,
// and the reserved ids 0 … reserved−1 (BERT's [PAD], [unused*] and special
// tokens below 1000) follow in order at the end. The original shuffles with
// Python's unseeded random.shuffle, so its tables cannot be regenerated; this
// one is a Fisher–Yates shuffle driven by Go's PCG seeded with seed, the same
// table on every machine. It is saved with the run (WriteTable).
func RandomTable(v, reserved int, seed uint64) ([]int, error) {
	if reserved < 0 || reserved >= v {
		return nil, fmt.Errorf("random table: %d reserved ids leave none of a vocabulary of %d to shuffle", reserved, v)
	}
	rest := make([]int, 0, v)
	for id := reserved; id < v; id++ {
		rest = append(rest, id)
	}
	rng := rand.New(rand.NewPCG(seed, 0xda3e39cb94b95bdb))
	rng.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	for id := range reserved {
		rest = append(rest, id)
	}
	return rest, nil
}

// WriteTable saves a table as a NumPy int64 vector (atomically).
func WriteTable(path string, table []int) error {
	return atomicfile.WriteWith(path, func(w io.Writer) error {
		return checkpoint.WriteNpy(w, []int{len(table)}, table)
	})
}

// ReadTable reads a table saved by WriteTable (a 1-d integer .npy, or a JSON
// list) and checks that it is a permutation of 0 … v−1.
func ReadTable(path string, v int) ([]int, error) {
	var table []int
	if strings.HasSuffix(path, ".npy") {
		a, err := checkpoint.ReadNpyFile(path)
		if err != nil {
			return nil, err
		}
		switch {
		case len(a.Shape) != 1:
			return nil, fmt.Errorf("token table %s: shape %v, expected a vector of %d ids", path, a.Shape, v)
		case a.I64 != nil:
			for _, x := range a.I64 {
				table = append(table, int(x))
			}
		case a.I32 != nil:
			for _, x := range a.I32 {
				table = append(table, int(x))
			}
		default:
			return nil, fmt.Errorf("token table %s: dtype %v, expected integers", path, a.DType)
		}
	} else {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if table, err = parseJSONInts(b); err != nil {
			return nil, fmt.Errorf("token table %s: %w", path, err)
		}
	}
	return table, CheckTable(path, table, v)
}

// CheckTable reports whether table is a permutation of 0 … v−1.
func CheckTable(path string, table []int, v int) error {
	if len(table) != v {
		return fmt.Errorf("token table %s has %d entries, expected the model's vocabulary size %d (config.json vocab_size)", path, len(table), v)
	}
	seen := make([]bool, v)
	for i, x := range table {
		if x < 0 || x >= v {
			return fmt.Errorf("token table %s: entry %d is %d, outside the vocabulary 0..%d", path, i, x, v-1)
		}
		if seen[x] {
			return fmt.Errorf("token table %s: id %d appears twice (entry %d), expected a permutation", path, x, i)
		}
		seen[x] = true
	}
	return nil
}

func parseJSONInts(b []byte) ([]int, error) {
	s := strings.TrimSpace(string(b))
	if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
		return nil, errors.New("expected a JSON list of integers")
	}
	s = strings.TrimSpace(s[1 : len(s)-1])
	if s == "" {
		return nil, nil
	}
	var out []int
	for i, f := range strings.Split(s, ",") {
		x, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("entry %d: %q is not an integer", i, strings.TrimSpace(f))
		}
		out = append(out, x)
	}
	return out, nil
}

// GLUE task column layouts (the GLUE distribution's train/dev TSV files,
// header row first), as transformers' glue processors read them.
type glueTask struct {
	labels     int      // 1: regression
	textCols   []string // one or two sentence columns, by header name
	labelCol   string
	labelNames []string // class labels in index order (classification)
}

var glueTasks = map[string]glueTask{
	"mnli":  {3, []string{"sentence1", "sentence2"}, "gold_label", []string{"contradiction", "entailment", "neutral"}},
	"sst-2": {2, []string{"sentence"}, "label", []string{"0", "1"}},
	"sts-b": {1, []string{"sentence1", "sentence2"}, "score", nil},
}

// GLUELabels is the number of outputs of task's head (cola 2, mnli 3, sst-2 2,
// sts-b 1, ... as BERT-non-text's gradient_confusion.py sets num_labels).
func GLUELabels(task string) (int, error) {
	t, ok := glueTasks[strings.ToLower(task)]
	if !ok {
		return 0, fmt.Errorf("GLUE task %q is not supported (expected MNLI, SST-2 or STS-B)", task)
	}
	return t.labels, nil
}

// TextPair is one text (or sentence pair) with its label.
type TextPair struct {
	A, B  string
	Label float64
}

// ReadGLUE reads a GLUE TSV file of task (MNLI, SST-2, STS-B): the header
// names the columns; MNLI's gold_label is one of contradiction, entailment,
// neutral (transformers' label order), SST-2's label 0/1, STS-B's score a number.
func ReadGLUE(path, task string) ([]TextPair, error) {
	gt, ok := glueTasks[strings.ToLower(task)]
	if !ok {
		return nil, fmt.Errorf("GLUE task %q is not supported (expected MNLI, SST-2 or STS-B)", task)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseGLUE(f, path, gt)
}

func parseGLUE(r io.Reader, path string, gt glueTask) ([]TextPair, error) {
	cr := csv.NewReader(r)
	cr.Comma, cr.LazyQuotes, cr.FieldsPerRecord = '\t', true, -1
	cr.ReuseRecord = false
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read %s: no header row: %w", path, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimSpace(h)] = i
	}
	need := append(append([]string(nil), gt.textCols...), gt.labelCol)
	idx := make([]int, len(need))
	for i, n := range need {
		c, ok := col[n]
		if !ok {
			return nil, fmt.Errorf("read %s: header has no column %q (expected columns %s)", path, n, strings.Join(need, ", "))
		}
		idx[i] = c
	}
	var out []TextPair
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: line %d: %w", path, line, err)
		}
		for i, c := range idx {
			if c >= len(rec) {
				return nil, fmt.Errorf("read %s: line %d has %d fields, column %q is field %d", path, line, len(rec), need[i], c+1)
			}
		}
		p := TextPair{A: rec[idx[0]]}
		if len(gt.textCols) == 2 {
			p.B = rec[idx[1]]
		}
		lab := strings.TrimSpace(rec[idx[len(idx)-1]])
		if gt.labels == 1 {
			if p.Label, err = strconv.ParseFloat(lab, 64); err != nil {
				return nil, fmt.Errorf("read %s: line %d, column %q: %q is not a number", path, line, gt.labelCol, lab)
			}
		} else {
			k := -1
			for i, n := range gt.labelNames {
				if n == lab {
					k = i
				}
			}
			if k < 0 {
				return nil, fmt.Errorf("read %s: line %d, column %q: %q is not a label (expected one of %s)", path, line, gt.labelCol, lab, strings.Join(gt.labelNames, ", "))
			}
			p.Label = float64(k)
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("read %s: no examples after the header", path)
	}
	return out, nil
}

// ReadLines reads a text file with one input per line (empty lines skipped).
func ReadLines(path string) ([]TextPair, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []TextPair
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		if s := strings.TrimRight(sc.Text(), "\r"); strings.TrimSpace(s) != "" {
			out = append(out, TextPair{A: s})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("read %s: no non-empty lines", path)
	}
	return out, nil
}

// Encode tokenizes texts (pairs as [CLS] A [SEP] B [SEP] with segment ids),
// truncates each to maxLen tokens (BERT-non-text: max_seq_length 128) and
// applies the token map.
func Encode(tok *tokenizer.Tokenizer, texts []TextPair, maxLen, vocab int, m TokenMap) ([]Example, error) {
	out := make([]Example, 0, len(texts))
	for i, t := range texts {
		var enc *tokenizer.Encoding
		var err error
		if t.B != "" {
			enc, err = tok.EncodePair(t.A, t.B, true)
		} else {
			enc, err = tok.Encode(t.A, true)
		}
		if err != nil {
			return nil, fmt.Errorf("input %d: %w", i+1, err)
		}
		ids := append([]int(nil), enc.IDs...)
		types := append([]int(nil), enc.TypeIDs...)
		if maxLen > 0 && len(ids) > maxLen {
			ids, types = ids[:maxLen], types[:min(len(types), maxLen)]
		}
		if len(ids) == 0 {
			return nil, fmt.Errorf("input %d: no tokens", i+1)
		}
		for _, id := range ids {
			if id >= vocab {
				return nil, fmt.Errorf("input %d: the tokenizer gave id %d, outside the model's vocabulary of %d", i+1, id, vocab)
			}
		}
		if len(types) != len(ids) {
			types = nil
		}
		m.Apply(ids, vocab)
		out = append(out, Example{IDs: ids, TypeIDs: types, Label: t.Label})
	}
	return out, nil
}
