package followup

import (
	"strings"

	"github.com/attnscope/attnscope/tasks"
)

// GibberishArgs are the kwargs of the complete_gibberish strategy, the parameters of
// followup-attention's produce_gibberish_file (attwizard/script/experiment_creation.py)
// with its defaults, plus the seed (the original did not seed this strategy).
type GibberishArgs struct {
	Seed              *int64   `yaml:"seed"`
	MaxLines          *int     `yaml:"max_lines"`
	MaxCharPerLine    *int     `yaml:"max_char_per_line"`
	MaxTokenLength    *int     `yaml:"max_token_length"`
	SpaceProbability  *float64 `yaml:"space_probability"`
	AllowedCharacters *string  `yaml:"allowed_characters"`
}

var gibberishKeys = []string{"seed", "max_lines", "max_char_per_line", "max_token_length", "space_probability", "allowed_characters"}

// defaults fills the original's defaults.
func (g *GibberishArgs) defaults() {
	def := func(p **int, v int) {
		if *p == nil {
			*p = &v
		}
	}
	def(&g.MaxLines, 15)
	def(&g.MaxCharPerLine, 80)
	def(&g.MaxTokenLength, 15)
	if g.SpaceProbability == nil {
		v := 0.33
		g.SpaceProbability = &v
	}
	if g.AllowedCharacters == nil {
		v := "abcdefghijklmnopqrstuvwxyz.,[]():;'\"!?-_=+/\\*&%$#@<>|~"
		g.AllowedCharacters = &v
	}
}

// gibberish is produce_gibberish_file: 1 + ⌊u·(max_lines−1)⌋ lines, each filled up to a
// budget of 1 + ⌊u·(max_char_per_line−1)⌋ characters with random tokens of
// ⌊u·max_token_length⌋ allowed characters, each preceded by a space with probability
// space_probability, the last one cut to the budget; every line ends with a newline.
func gibberish(rng *tasks.PyRandom, g *GibberishArgs) string {
	chars := []rune(*g.AllowedCharacters)
	var b strings.Builder
	nLines := 1 + int(rng.Random()*float64(*g.MaxLines-1))
	for i := 0; i < nLines; i++ {
		budget := 1 + int(rng.Random()*float64(*g.MaxCharPerLine-1))
		for budget > 0 {
			n := int(rng.Random() * float64(*g.MaxTokenLength))
			tok := make([]rune, 0, n+1)
			for k := 0; k < n; k++ {
				tok = append(tok, chars[rng.Choice(len(chars))])
			}
			if rng.Random() < *g.SpaceProbability {
				tok = append([]rune{' '}, tok...)
			}
			if budget-len(tok) < 0 {
				tok = tok[:budget]
			}
			budget -= len(tok)
			b.WriteString(string(tok))
		}
		b.WriteByte('\n')
	}
	return b.String()
}
