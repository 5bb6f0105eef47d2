package compare

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/attnscope/attnscope/analysis/code"
	"github.com/attnscope/attnscope/store"
)

// Meta is what the comparator knows of one item (a human session or a machine
// sample), read from the run folder's sample.json.
type Meta struct {
	// Stem is the sample id (the file stem of its derived outputs).
	Stem string
	// Source is the base name of the source file the item is about; the pairing key.
	Source string
	// Text is the text the tokens cover (the original's raw_text / text_prompt).
	Text string
	// Tokens are the model's tokens as its vocabulary spells them (tokens_prompt),
	// Offsets their character spans in Text.
	Tokens  []string
	Offsets [][2]int
	// UserName and TaskNumber identify a human session (sample.json extra fields
	// user_name and task_number); empty for machine samples.
	UserName, TaskNumber string
	// Try is the machine sample's try index.
	Try int
}

// MetaFromSample builds Meta from a stored sample. The pairing key is the base name
// of the sample's Source, or its id when it has none.
func MetaFromSample(s *store.Sample) *Meta {
	m := &Meta{Stem: s.ID, Text: s.PromptText, Tokens: s.Tokens, Offsets: s.Offsets, Try: s.Try}
	if m.Text == "" {
		m.Text = s.Text
	}
	if s.PromptLen > 0 && s.PromptLen < len(m.Tokens) {
		m.Tokens = m.Tokens[:s.PromptLen]
		if len(m.Offsets) > s.PromptLen {
			m.Offsets = m.Offsets[:s.PromptLen]
		}
	}
	m.Source = filepath.Base(s.Source)
	if s.Source == "" {
		m.Source = ""
	}
	if v, ok := s.Extra["source_code"].(string); ok && v != "" {
		m.Source = filepath.Base(v)
	}
	m.UserName = extraString(s.Extra, "user_name")
	m.TaskNumber = extraString(s.Extra, "task_number")
	return m
}

func extraString(extra map[string]any, key string) string {
	switch v := extra[key].(type) {
	case string:
		return v
	case float64:
		return fmt.Sprint(v)
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// pairs reports whether machine item m belongs to the source file of human item h:
// the same source base name, or, for a machine sample without a source, a stem that
// starts with the human's source name (the original's rule).
func pairs(h, m *Meta) bool {
	if h.Source == "" {
		return false
	}
	if m.Source != "" {
		return m.Source == h.Source
	}
	return strings.HasPrefix(m.Stem, store.SampleID(h.Source))
}

// promptTokens returns the tokens with special characters replaced (byte-level BPE
// Ġ and Ċ by default) and without a leading "<|endoftext|>".
func (m *Meta) promptTokens(mapping map[string]string) []string {
	toks := m.Tokens
	if len(toks) > 0 && toks[0] == "<|endoftext|>" {
		toks = toks[1:]
	}
	return code.ReplaceSpecialChars(toks, mapping)
}

// tokenLines returns the 0-based line of every token: from the offsets when the
// sample has them, else by placing the (special-character-replaced) tokens in Text.
func (m *Meta) tokenLines() ([]int, error) {
	if len(m.Offsets) == len(m.Tokens) && len(m.Offsets) > 0 {
		return code.LinesFromOffsets(m.Text, m.Offsets)
	}
	lines, err := code.TokenLines(m.Text, code.ReplaceSpecialChars(m.Tokens, code.ByteLevelChars()))
	if err != nil {
		return nil, fmt.Errorf("sample %s: %w", m.Stem, err)
	}
	return lines, nil
}
