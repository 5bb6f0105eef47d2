package compare

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/attnscope/attnscope/analysis/code"
)

// Pair is what transformations work on: copies of the human and machine arrays and
// both items' metadata.
type Pair struct {
	Human, Machine         *Array
	HumanMeta, MachineMeta *Meta
	bases                  *baseCache

	// Dir is the folder relative paths of keyword arguments are resolved against
	// (the config file's folder).
	Dir string
}

// Transformation is one step of a comparison's transformation chain.
type Transformation struct {
	Name   string
	Doc    string
	Kwargs map[string]any // accepted keyword arguments with their defaults
	Run    func(p *Pair, kw Kwargs) error
}

var byteLevel = map[string]any{"Ġ": " ", "Ċ": "\n"}

// Transformations returns the transformations by name (followup-attention's
// comparator transformations, plus both_to_char_level and both_to_lines for two
// models with different tokenizers).
func Transformations() map[string]*Transformation {
	ts := []*Transformation{
		{Name: "convert_vect_to_probabilities", Doc: "divide each vector by its sum", Run: toProbabilities},
		{Name: "convert_to_char_level", Doc: "machine token vector to characters of its text (map_to_char_level); both cut after the human text's last \"Answer\"",
			Kwargs: map[string]any{"mapping_from_token_to_char": "replication", "special_char_mapping": byteLevel, "drop_first_token": false, "use_offsets": false},
			Run:    toCharLevel},
		{Name: "truncate_human_visible_tokens", Doc: "machine vector cut to the human's length", Run: truncateToHuman},
		{Name: "drop_first_model_token", Doc: "machine vector [1:], matrix [1:,1:] (a BOS token)", Run: dropFirstModelToken},
		{Name: "norm_by_token_length_human", Doc: "both cut to the prompt tokens; human weight divided by its token's length", Run: normByTokenLength},
		{Name: "at_least_one_letter", Doc: "both cut to the prompt tokens, then only tokens with an ASCII letter kept", Run: atLeastOneLetter},
		{Name: "keep_only_tokens_seen_by_model", Doc: "both matrices cut to the prompt tokens [:n,:n]", Run: keepTokensSeen},
		{Name: "normalize_both_matrices_by_line", Doc: "each row divided by its sum (zero sums left as they are)", Run: normalizeRows},
		{Name: "keep_lower_triangle", Doc: "lower triangle (diagonal included) of both square matrices", Run: lowerTriangle},
		{Name: "keep_only_last_layer_machine", Doc: "machine (L,N,N) to its last layer", Run: lastLayer},
		{Name: "remove_specific_tokens", Doc: "rows and columns of the listed machine prompt tokens removed from both",
			Kwargs: map[string]any{"tokens_to_remove": []string{}}, Run: removeTokens},
		{Name: "override_machine_with_lower_triangular_of_ones", Doc: "machine replaced by a lower triangle of ones (a baseline)", Run: onesBaseline},
		{Name: "convert_to_token_to_lines", Doc: "both cut to T×T prompt tokens, columns summed per line → T × lines",
			Kwargs: map[string]any{"special_char_mapping": byteLevel}, Run: tokenToLines},
		{Name: "keep_only_lines_seen_by_model", Doc: "both cut to the prompt's tokens and lines (original_off_by_one drops the last line as the original)",
			Kwargs: map[string]any{"original_off_by_one": false}, Run: keepLinesSeen},
		{Name: "remove_base_human_behavior", Doc: "rows normalised, then a base reading behaviour by distance subtracted or divided out",
			Kwargs: map[string]any{"mode": "divide", "min_base_value": 0.01, "path_csv_normalization_prob_human": "",
				"path_csv_normalization_prob_machine": "", "col_name_probability": "prob_to_go_to_target_mean",
				"col_name_distance": "distance_current_to_target", "pad_length": 3000,
				"modelling_based_on_abs_position": false, "machine_base_all_ones": false},
			Run: removeBaseBehavior},
		{Name: "both_to_char_level", Doc: "each side's token vector to characters through its own offsets (different tokenizers), cut to the shorter",
			Kwargs: map[string]any{"mapping_from_token_to_char": "equal_share"}, Run: bothToChars},
		{Name: "both_to_lines", Doc: "each side's tokens to lines through its own offsets (sums), vectors to lines and matrices to lines × lines, cut to the fewer lines",
			Run: bothToLines},
	}
	m := make(map[string]*Transformation, len(ts))
	for _, t := range ts {
		m[t.Name] = t
	}
	return m
}

func needVectors(p *Pair, name string) error {
	if !p.Human.isVector() || !p.Machine.isVector() {
		return fmt.Errorf("%s works on vectors; human has shape %v, machine %v", name, p.Human.Shape, p.Machine.Shape)
	}
	return nil
}

func needMatrices(p *Pair, name string, square bool) error {
	if !p.Human.isMatrix() || !p.Machine.isMatrix() {
		return fmt.Errorf("%s works on matrices; human has shape %v, machine %v", name, p.Human.Shape, p.Machine.Shape)
	}
	if square && (p.Human.Shape[0] != p.Human.Shape[1] || p.Machine.Shape[0] != p.Machine.Shape[1]) {
		return fmt.Errorf("%s works on square matrices; human has shape %v, machine %v", name, p.Human.Shape, p.Machine.Shape)
	}
	return nil
}

func toProbabilities(p *Pair, _ Kwargs) error {
	if err := needVectors(p, "convert_vect_to_probabilities"); err != nil {
		return err
	}
	for _, a := range []*Array{p.Human, p.Machine} {
		s := sum(a.Data)
		for i := range a.Data {
			a.Data[i] /= s
		}
	}
	return nil
}

func mapping(kw Kwargs, key string) map[string]string {
	out := map[string]string{}
	m, _ := kw[key].(map[string]any)
	for k, v := range m {
		s := fmt.Sprint(v)
		// YAML's '\n' (single-quoted) is a backslash and an n: the original turns it into a newline.
		s = strings.ReplaceAll(s, `\n`, "\n")
		out[k] = s
	}
	return out
}

func toCharLevel(p *Pair, kw Kwargs) error {
	if err := needVectors(p, "convert_to_char_level"); err != nil {
		return err
	}
	dist, err := code.ParseDistribution(kw.string("mapping_from_token_to_char"))
	if err != nil {
		return err
	}
	mm := p.MachineMeta
	toks, offs, w := mm.Tokens, mm.Offsets, p.Machine.Data
	if kw.bool("drop_first_token") && len(toks) > 0 {
		toks, w = toks[1:], w[1:]
		if len(offs) > 0 {
			offs = offs[1:]
		}
	}
	if len(w) < len(toks) {
		return fmt.Errorf("convert_to_char_level: machine vector has %d values for %d prompt tokens", len(w), len(toks))
	}
	w = w[:len(toks)]
	var chars []float64
	if kw.bool("use_offsets") {
		chars, err = code.CharWeightsFromOffsets(offs, w, len([]rune(mm.Text)), dist)
	} else {
		chars, err = code.MapToCharLevel(toks, w, mm.Text, dist, mapping(kw, "special_char_mapping"))
	}
	if err != nil {
		return fmt.Errorf("convert_to_char_level: %w", err)
	}
	p.Machine = Vector(chars)
	// Both cut after the last "Answer" of the human's text (the question's end).
	text := []rune(p.HumanMeta.Text)
	pos := len(text)
	if i := strings.LastIndex(p.HumanMeta.Text, "Answer"); i >= 0 {
		pos = len([]rune(p.HumanMeta.Text[:i])) + len("Answer")
	}
	p.Human = Vector(p.Human.Data[:min(pos, len(p.Human.Data))])
	p.Machine = Vector(p.Machine.Data[:min(pos, len(p.Machine.Data))])
	return nil
}

func truncateToHuman(p *Pair, _ Kwargs) error {
	if err := needVectors(p, "truncate_human_visible_tokens"); err != nil {
		return err
	}
	p.Machine = Vector(p.Machine.Data[:min(len(p.Human.Data), len(p.Machine.Data))])
	return nil
}

func dropFirstModelToken(p *Pair, _ Kwargs) error {
	m := p.Machine
	switch {
	case m.isVector() && len(m.Data) > 0:
		p.Machine = Vector(m.Data[1:])
	case m.isMatrix() && m.Shape[0] > 0 && m.Shape[1] > 0:
		out := &Array{Shape: []int{m.Shape[0] - 1, m.Shape[1] - 1}}
		for i := 1; i < m.Shape[0]; i++ {
			out.Data = append(out.Data, m.Row(i)[1:]...)
		}
		p.Machine = out
	default:
		return fmt.Errorf("drop_first_model_token: machine has shape %v, a non-empty vector or matrix expected", m.Shape)
	}
	return nil
}

// visibleTokens cuts both vectors to the machine's prompt tokens (without a leading
// <|endoftext|>) as far as the human vector goes, and returns those tokens.
func visibleTokens(p *Pair, name string) ([]string, error) {
	if err := needVectors(p, name); err != nil {
		return nil, err
	}
	toks := p.MachineMeta.promptTokens(code.ByteLevelChars())
	n := min(len(toks), len(p.Human.Data), len(p.Machine.Data))
	toks = toks[:n]
	p.Human, p.Machine = Vector(p.Human.Data[:n]), Vector(p.Machine.Data[:n])
	return toks, nil
}

func normByTokenLength(p *Pair, _ Kwargs) error {
	toks, err := visibleTokens(p, "norm_by_token_length_human")
	if err != nil {
		return err
	}
	for i, t := range toks {
		if n := len([]rune(t)); n > 0 {
			p.Human.Data[i] /= float64(n)
		}
	}
	return nil
}

func atLeastOneLetter(p *Pair, _ Kwargs) error {
	toks, err := visibleTokens(p, "at_least_one_letter")
	if err != nil {
		return err
	}
	var h, m []float64
	for i, t := range toks {
		if strings.ContainsFunc(t, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }) {
			h, m = append(h, p.Human.Data[i]), append(m, p.Machine.Data[i])
		}
	}
	p.Human, p.Machine = Vector(h), Vector(m)
	return nil
}

func keepTokensSeen(p *Pair, _ Kwargs) error {
	if err := needMatrices(p, "keep_only_tokens_seen_by_model", false); err != nil {
		return err
	}
	n := len(p.MachineMeta.promptTokens(nil))
	cut := func(a *Array) *Array { return a.Cut(min(n, a.Shape[0]), min(n, a.Shape[1])) }
	p.Human, p.Machine = cut(p.Human), cut(p.Machine)
	return nil
}

func normalizeRows(p *Pair, _ Kwargs) error {
	if err := needMatrices(p, "normalize_both_matrices_by_line", false); err != nil {
		return err
	}
	for _, a := range []*Array{p.Human, p.Machine} {
		for i := 0; i < a.Shape[0]; i++ {
			r := a.Row(i)
			s := sum(r)
			if s == 0 || math.IsNaN(s) {
				s = 1
			}
			for j := range r {
				r[j] /= s
				if math.IsNaN(r[j]) {
					r[j] = 0
				}
			}
		}
	}
	return nil
}

func lowerTriangle(p *Pair, _ Kwargs) error {
	if err := needMatrices(p, "keep_lower_triangle", true); err != nil {
		return err
	}
	if p.Human.Shape[0] != p.Machine.Shape[0] {
		return fmt.Errorf("keep_lower_triangle: human has shape %v, machine %v; equal shapes expected", p.Human.Shape, p.Machine.Shape)
	}
	for _, a := range []*Array{p.Human, p.Machine} {
		for i := 0; i < a.Shape[0]; i++ {
			clear(a.Row(i)[i+1:])
		}
	}
	return nil
}

func lastLayer(p *Pair, _ Kwargs) error {
	m := p.Machine
	if m.Rank() != 3 {
		return fmt.Errorf("keep_only_last_layer_machine: machine has shape %v, (layers, N, N) expected", m.Shape)
	}
	n := m.Shape[1] * m.Shape[2]
	p.Machine = &Array{Shape: []int{m.Shape[1], m.Shape[2]}, Data: slices.Clone(m.Data[len(m.Data)-n:])}
	return nil
}

func removeTokens(p *Pair, kw Kwargs) error {
	if err := needMatrices(p, "remove_specific_tokens", true); err != nil {
		return err
	}
	remove, _ := kw["tokens_to_remove"].([]string)
	raw := p.MachineMeta.Tokens
	repl := code.ReplaceSpecialChars(raw, code.ByteLevelChars())
	var keep []int
	for i := 0; i < p.Machine.Shape[0]; i++ {
		if i < len(raw) && (slices.Contains(remove, raw[i]) || slices.Contains(remove, repl[i])) {
			continue
		}
		keep = append(keep, i)
	}
	sel := func(a *Array) (*Array, error) {
		if a.Shape[0] != p.Machine.Shape[0] {
			return nil, fmt.Errorf("remove_specific_tokens: human has shape %v, machine %v; equal shapes expected", p.Human.Shape, p.Machine.Shape)
		}
		out := &Array{Shape: []int{len(keep), len(keep)}}
		for _, i := range keep {
			for _, j := range keep {
				out.Data = append(out.Data, a.Data[i*a.Shape[1]+j])
			}
		}
		return out, nil
	}
	var err error
	if p.Human, err = sel(p.Human); err != nil {
		return err
	}
	p.Machine, _ = sel(p.Machine)
	return nil
}

func onesBaseline(p *Pair, _ Kwargs) error {
	m := p.Machine
	if !m.isMatrix() {
		return fmt.Errorf("override_machine_with_lower_triangular_of_ones: machine has shape %v, a matrix expected", m.Shape)
	}
	for i := 0; i < m.Shape[0]; i++ {
		r := m.Row(i)
		for j := range r {
			r[j] = 0
			if j <= i {
				r[j] = 1
			}
		}
	}
	return nil
}

// promptLines returns the 0-based line of each prompt token of the machine's
// metadata (without a leading <|endoftext|>).
func promptLines(m *Meta) ([]int, error) {
	lines, err := m.tokenLines()
	if err != nil {
		return nil, err
	}
	if len(m.Tokens) > 0 && m.Tokens[0] == "<|endoftext|>" {
		lines = lines[1:]
	}
	return lines, nil
}

func tokenToLines(p *Pair, _ Kwargs) error {
	if err := needMatrices(p, "convert_to_token_to_lines", false); err != nil {
		return err
	}
	lines, err := promptLines(p.MachineMeta)
	if err != nil {
		return fmt.Errorf("convert_to_token_to_lines: %w", err)
	}
	t := len(lines)
	conv := func(a *Array, who string) (*Array, error) {
		if a.Shape[0] < t || a.Shape[1] < t {
			return nil, fmt.Errorf("convert_to_token_to_lines: %s matrix %v is smaller than the %d prompt tokens", who, a.Shape, t)
		}
		m, err := code.AggregateToLines(a.Cut(t, t).Rows(), 1, lines, code.Sum)
		if err != nil {
			return nil, err
		}
		return Matrix(m), nil
	}
	if p.Human, err = conv(p.Human, "human"); err != nil {
		return err
	}
	p.Machine, err = conv(p.Machine, "machine")
	return err
}

func keepLinesSeen(p *Pair, kw Kwargs) error {
	if err := needMatrices(p, "keep_only_lines_seen_by_model", false); err != nil {
		return err
	}
	lines, err := promptLines(p.MachineMeta)
	if err != nil {
		return fmt.Errorf("keep_only_lines_seen_by_model: %w", err)
	}
	maxLine := slices.Max(append([]int{0}, lines...))
	for _, a := range []**Array{&p.Human, &p.Machine} {
		m, err := code.KeepOnlyLinesSeenByModel((*a).Rows(), min(len(lines), (*a).Shape[0]), maxLine, kw.bool("original_off_by_one"))
		if err != nil {
			return fmt.Errorf("keep_only_lines_seen_by_model: %w", err)
		}
		*a = Matrix(m)
	}
	return nil
}

func bothToChars(p *Pair, kw Kwargs) error {
	if err := needVectors(p, "both_to_char_level"); err != nil {
		return err
	}
	dist, err := code.ParseDistribution(kw.string("mapping_from_token_to_char"))
	if err != nil {
		return err
	}
	conv := func(a *Array, m *Meta) (*Array, error) {
		if len(m.Offsets) == 0 || len(a.Data) < len(m.Offsets) {
			return nil, fmt.Errorf("both_to_char_level: sample %s has %d offsets for %d values (character spans of every token needed)", m.Stem, len(m.Offsets), len(a.Data))
		}
		c, err := code.CharWeightsFromOffsets(m.Offsets, a.Data[:len(m.Offsets)], len([]rune(m.Text)), dist)
		return Vector(c), err
	}
	if p.Human, err = conv(p.Human, p.HumanMeta); err != nil {
		return err
	}
	if p.Machine, err = conv(p.Machine, p.MachineMeta); err != nil {
		return err
	}
	n := min(len(p.Human.Data), len(p.Machine.Data))
	p.Human, p.Machine = Vector(p.Human.Data[:n]), Vector(p.Machine.Data[:n])
	return nil
}

// lineShares returns, for every token of m, the lines its characters lie on with
// the share of its characters on each (equal shares per character; a token without
// characters belongs wholly to the line where its span starts).
func lineShares(m *Meta) ([][]lineShare, int, error) {
	if len(m.Offsets) != len(m.Tokens) || len(m.Offsets) == 0 {
		return nil, 0, fmt.Errorf("sample %s has %d offsets for %d tokens (character spans of every token needed)", m.Stem, len(m.Offsets), len(m.Tokens))
	}
	chars := []rune(m.Text)
	lineOf := make([]int, len(chars)+1)
	for i, r := range chars {
		lineOf[i+1] = lineOf[i]
		if r == '\n' {
			lineOf[i+1]++
		}
	}
	// A newline belongs to the line it ends: character i is on line lineOf[i].
	out := make([][]lineShare, len(m.Offsets))
	for k, o := range m.Offsets {
		s, e := o[0], o[1]
		if s < 0 || e < s || e > len(chars) {
			return nil, 0, fmt.Errorf("sample %s: token %d has span [%d,%d) outside the %d characters of the text", m.Stem, k, s, e, len(chars))
		}
		if e == s {
			out[k] = []lineShare{{lineOf[s], 1}}
			continue
		}
		f := 1 / float64(e-s)
		for c := s; c < e; c++ {
			if n := len(out[k]); n > 0 && out[k][n-1].line == lineOf[c] {
				out[k][n-1].share += f
			} else {
				out[k] = append(out[k], lineShare{lineOf[c], f})
			}
		}
	}
	return out, lineOf[len(chars)] + 1, nil
}

type lineShare struct {
	line  int
	share float64
}

// bothToLines takes each side's token vector (or token × token matrix) to lines
// (or lines × lines) through its own character spans: a token's weight is split
// equally over its characters and each line receives the sum over its characters,
// so two tokenizers of the same text meet on the same lines. Both are cut to the
// lines of the shorter text.
func bothToLines(p *Pair, _ Kwargs) error {
	conv := func(a *Array, m *Meta) (*Array, error) {
		shares, nLines, err := lineShares(m)
		if err != nil {
			return nil, fmt.Errorf("both_to_lines: %w", err)
		}
		t := len(shares)
		switch {
		case a.isVector() && len(a.Data) >= t:
			out := make([]float64, nLines)
			for i, sh := range shares {
				for _, s := range sh {
					out[s.line] += a.Data[i] * s.share
				}
			}
			return Vector(out), nil
		case a.isMatrix() && a.Shape[0] >= t && a.Shape[1] >= t:
			out := &Array{Shape: []int{nLines, nLines}, Data: make([]float64, nLines*nLines)}
			for i, si := range shares {
				row := a.Row(i)
				for j, sj := range shares {
					if row[j] == 0 {
						continue
					}
					for _, x := range si {
						for _, y := range sj {
							out.Data[x.line*nLines+y.line] += row[j] * x.share * y.share
						}
					}
				}
			}
			return out, nil
		}
		return nil, fmt.Errorf("both_to_lines: sample %s has shape %v for %d tokens", m.Stem, a.Shape, t)
	}
	var err error
	if p.Human, err = conv(p.Human, p.HumanMeta); err != nil {
		return err
	}
	if p.Machine, err = conv(p.Machine, p.MachineMeta); err != nil {
		return err
	}
	if p.Human.isVector() != p.Machine.isVector() {
		return fmt.Errorf("both_to_lines: human has shape %v, machine %v", p.Human.Shape, p.Machine.Shape)
	}
	if p.Human.isVector() {
		n := min(len(p.Human.Data), len(p.Machine.Data))
		p.Human, p.Machine = Vector(p.Human.Data[:n]), Vector(p.Machine.Data[:n])
		return nil
	}
	n := min(p.Human.Shape[0], p.Machine.Shape[0])
	p.Human, p.Machine = p.Human.Cut(n, n), p.Machine.Cut(n, n)
	return nil
}
