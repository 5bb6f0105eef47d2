// Package metrics scores generated code against references as Text_to_Python's
// src/eval_utils.py: its sentence BLEU, a corpus BLEU with sacreBLEU's settings,
// exact match, token accuracy, Python syntax validity, analyze_errors and BLEU by
// docstring length. Inputs are token lists of the corpus tokenizer (NEWLINE and
// INDENT markers included).
package metrics

import (
	"math"
	"slices"
	"strings"
)

// BLEU is Text_to_Python's compute_bleu (max n = 4): clipped n-gram precisions
// p_n = Σ min(count_hyp, count_ref) / (number of hypothesis n-grams); a p_n (n > 1)
// with no match becomes 1/(total+1); if any p_n is 0 (no unigram match, or a
// hypothesis with no n-gram of some order, i.e. shorter than 4 tokens) BLEU is 0;
// otherwise BLEU = BP · (Π p_n)^{1/4} with brevity penalty BP = exp(1 − r/h) when
// the hypothesis length h is below the reference length r. An empty hypothesis
// scores 0.
func BLEU(ref, hyp []string) float64 {
	if len(hyp) == 0 {
		return 0
	}
	logSum := 0.0
	for n := 1; n <= 4; n++ {
		m, total := clippedMatches(ref, hyp, n)
		var p float64
		switch {
		case total == 0:
			return 0
		case m == 0 && n > 1:
			p = 1 / float64(total+1)
		case m == 0:
			return 0
		default:
			p = float64(m) / float64(total)
		}
		logSum += math.Log(p)
	}
	bp := 1.0
	if len(hyp) < len(ref) {
		bp = math.Exp(1 - float64(len(ref))/float64(len(hyp)))
	}
	return bp * math.Exp(logSum/4)
}

// clippedMatches returns Σ_g min(count_hyp(g), count_ref(g)) over the n-grams g of
// hyp, and the number of n-grams of hyp.
func clippedMatches(ref, hyp []string, n int) (matches, total int) {
	if len(hyp) < n {
		return 0, 0
	}
	refCount := ngrams(ref, n)
	for g, c := range ngrams(hyp, n) {
		matches += min(c, refCount[g])
	}
	return matches, len(hyp) - n + 1
}

func ngrams(toks []string, n int) map[string]int {
	out := map[string]int{}
	for i := 0; i+n <= len(toks); i++ {
		out[strings.Join(toks[i:i+n], "\x00")]++
	}
	return out
}

// CorpusBLEU is sacreBLEU's corpus_bleu with one reference per hypothesis,
// tokenize="none" on the space-joined tokens, the default "exp" smoothing and no
// effective order, on a 0–100 scale: matches and totals are summed over the corpus;
// an order with no match gets precision 100/(2^k · total) for its k-th such order;
// an order with no n-gram at all leaves its precision 0 (score ≈ 0); brevity penalty
// exp(1 − R/H) when the total hypothesis length H is below the reference length R
// (0 when H = 0).
func CorpusBLEU(refs, hyps [][]string) float64 {
	var correct, totals [4]int
	sysLen, refLen := 0, 0
	for i := range hyps {
		sysLen += len(hyps[i])
		refLen += len(refs[i])
		for n := 1; n <= 4; n++ {
			m, t := clippedMatches(refs[i], hyps[i], n)
			correct[n-1] += m
			totals[n-1] += t
		}
	}
	var prec [4]float64
	smooth := 1.0
	for n := range 4 {
		if totals[n] == 0 {
			break
		}
		if correct[n] == 0 {
			smooth *= 2
			prec[n] = 100 / (smooth * float64(totals[n]))
		} else {
			prec[n] = 100 * float64(correct[n]) / float64(totals[n])
		}
	}
	bp := 1.0
	if sysLen < refLen {
		bp = 0
		if sysLen > 0 {
			bp = math.Exp(1 - float64(refLen)/float64(sysLen))
		}
	}
	s := 0.0
	for _, p := range prec {
		if p == 0 {
			s += -9999999999 // sacrebleu's my_log(0)
		} else {
			s += math.Log(p)
		}
	}
	return bp * math.Exp(s/4)
}

// ExactMatch reports whether the token lists are equal.
func ExactMatch(ref, hyp []string) bool { return slices.Equal(ref, hyp) }

// TokenAccuracy is Σ (positions i < min(len) where ref[i] = hyp[i]) / Σ len(ref) over
// the pairs whose reference and hypothesis are both non-empty (0 when none is).
func TokenAccuracy(refs, hyps [][]string) float64 {
	match, total := 0, 0
	for i := range refs {
		if len(refs[i]) == 0 || len(hyps[i]) == 0 {
			continue
		}
		for j := range min(len(refs[i]), len(hyps[i])) {
			if refs[i][j] == hyps[i][j] {
				match++
			}
		}
		total += len(refs[i])
	}
	if total == 0 {
		return 0
	}
	return float64(match) / float64(total)
}

// Operators are analyze_errors' operator tokens.
var Operators = []string{"+", "-", "*", "/", "==", "!=", ">=", "<=", ">", "<", "and", "or", "not", "in", "is"}

// ErrorCounts is analyze_errors' result.
type ErrorCounts struct {
	Total              int `json:"total_errors"`
	MissingIndentation int `json:"missing_indentation"`
	IncorrectOperators int `json:"incorrect_operators"`
	MissingTokens      int `json:"missing_tokens"`
	ExtraTokens        int `json:"extra_tokens"`
	SyntaxErrors       int `json:"syntax_errors"`
}

// AnalyzeErrors counts, over pairs whose generated tokens differ from the reference
// (total_errors): missing_indentation (INDENT in the reference, not in the
// generation), incorrect_operators (the sets of operator tokens differ),
// missing_tokens / extra_tokens (the generation is shorter / longer) and
// syntax_errors (ValidPython fails on the generation).
func AnalyzeErrors(refs, hyps [][]string) ErrorCounts {
	var c ErrorCounts
	for i := range refs {
		ref, gen := refs[i], hyps[i]
		if slices.Equal(ref, gen) {
			continue
		}
		c.Total++
		if slices.Contains(ref, "INDENT") && !slices.Contains(gen, "INDENT") {
			c.MissingIndentation++
		}
		if !slices.Equal(operatorSet(ref), operatorSet(gen)) {
			c.IncorrectOperators++
		}
		switch {
		case len(gen) < len(ref):
			c.MissingTokens++
		case len(gen) > len(ref):
			c.ExtraTokens++
		}
		if !ValidPython(gen) {
			c.SyntaxErrors++
		}
	}
	return c
}

func operatorSet(toks []string) []string {
	var out []string
	for _, t := range toks {
		if slices.Contains(Operators, t) && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// LengthBin is the mean sentence BLEU of the examples whose non-PAD source length
// falls in [Start, Start+10).
type LengthBin struct {
	Start int     `json:"start"`
	Count int     `json:"count"`
	BLEU  float64 `json:"bleu"`
}

// BLEUByLength is bleu_vs_docstring_length: examples binned by
// 10·⌊srcLen/10⌋ (srcLen counts the non-PAD source ids, SOS and EOS included), the
// mean BLEU per bin, bins in increasing order.
func BLEUByLength(srcLens []int, bleu []float64) []LengthBin {
	acc := map[int]*LengthBin{}
	for i, l := range srcLens {
		s := 10 * (l / 10)
		b := acc[s]
		if b == nil {
			b = &LengthBin{Start: s}
			acc[s] = b
		}
		b.Count++
		b.BLEU += bleu[i]
	}
	var out []LengthBin
	for _, b := range acc {
		b.BLEU /= float64(b.Count)
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b LengthBin) int { return a.Start - b.Start })
	return out
}
