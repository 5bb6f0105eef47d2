package corpus

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/attnscope/attnscope/internal/atomicfile"
)

// FreqThreshold is Text_to_Python's FREQ_THRESHOLD: a training-set word enters the
// vocabulary when it occurs at least this often.
const FreqThreshold = 2

// Vocab maps tokens to ids: the four specials (PAD 0, SOS 1, EOS 2, UNK 3), then the
// words of the training side in collections.Counter.most_common order (count
// descending, ties in order of first occurrence).
type Vocab struct {
	Itos []string
	stoi map[string]int
}

// BuildVocab counts the tokens of every sentence (already tokenised) and keeps the
// words seen at least threshold times, as Vocabulary.build_vocabulary.
func BuildVocab(sentences [][]string, threshold int) *Vocab {
	count := map[string]int{}
	var order []string
	for _, s := range sentences {
		for _, w := range s {
			if count[w] == 0 {
				order = append(order, w)
			}
			count[w]++
		}
	}
	// most_common sorts by count with a stable sort over insertion order.
	slices.SortStableFunc(order, func(a, b string) int { return count[b] - count[a] })
	itos := append([]string(nil), Specials[:]...)
	for _, w := range order {
		if count[w] >= threshold {
			itos = append(itos, w)
		}
	}
	v, _ := NewVocab(itos) // a special spelled in the text is kept once by NewVocab
	return v
}

// NewVocab returns the vocabulary with the given id → token list, whose first four
// entries must be the specials. A repeated token keeps its first id (a later
// duplicate is dropped, so ids stay dense).
func NewVocab(itos []string) (*Vocab, error) {
	if len(itos) < len(Specials) || !slices.Equal(itos[:len(Specials)], Specials[:]) {
		return nil, fmt.Errorf("vocabulary: the first tokens must be %v", Specials)
	}
	v := &Vocab{stoi: make(map[string]int, len(itos))}
	for _, w := range itos {
		if _, dup := v.stoi[w]; dup {
			continue
		}
		v.stoi[w] = len(v.Itos)
		v.Itos = append(v.Itos, w)
	}
	return v, nil
}

// Len is the vocabulary size.
func (v *Vocab) Len() int { return len(v.Itos) }

// ID returns the id of w, UNK when it is not in the vocabulary.
func (v *Vocab) ID(w string) int {
	if id, ok := v.stoi[w]; ok {
		return id
	}
	return UNK
}

// Encode returns [SOS] + ids of the first maxLen tokens + [EOS] (maxLen ≤ 0: all).
func (v *Vocab) Encode(tokens []string, maxLen int) []int {
	if maxLen > 0 && len(tokens) > maxLen {
		tokens = tokens[:maxLen]
	}
	ids := make([]int, 0, len(tokens)+2)
	ids = append(ids, SOS)
	for _, w := range tokens {
		ids = append(ids, v.ID(w))
	}
	return append(ids, EOS)
}

// Decode returns the tokens of ids up to the first EOS, skipping PAD and SOS; an id
// outside the vocabulary becomes "<UNK>" (Vocabulary.decode).
func (v *Vocab) Decode(ids []int) []string {
	var out []string
	for _, id := range ids {
		switch {
		case id == EOS:
			return out
		case id == PAD || id == SOS:
			continue
		case id < 0 || id >= len(v.Itos):
			out = append(out, Specials[UNK])
		default:
			out = append(out, v.Itos[id])
		}
	}
	return out
}

// Token returns the string of one id ("<UNK>" when out of range), specials included.
func (v *Vocab) Token(id int) string {
	if id < 0 || id >= len(v.Itos) {
		return Specials[UNK]
	}
	return v.Itos[id]
}

// Save writes the vocabulary as a JSON list of tokens in id order.
func (v *Vocab) Save(path string) error {
	b, err := json.Marshal(v.Itos)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'))
}

// LoadVocab reads a vocabulary written by Save.
func LoadVocab(path string) (*Vocab, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read vocabulary: %w", err)
	}
	var itos []string
	if err := json.Unmarshal(b, &itos); err != nil {
		return nil, fmt.Errorf("read %s: a JSON list of token strings expected: %w", path, err)
	}
	v, err := NewVocab(itos)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(v.Itos) != len(itos) {
		return nil, errors.New("read " + path + ": a token appears twice")
	}
	return v, nil
}
