package grading

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/attnscope/attnscope/analysis/code"
	"github.com/attnscope/attnscope/store"
)

// CheckResult is the automatic check of one sample.
type CheckResult struct {
	Sample, Source, Language string
	// SyntaxChecked is false when the language has no grammar (then SyntaxValid is
	// meaningless).
	SyntaxChecked bool
	SyntaxValid   bool
	SyntaxErrors  int    // at most 100 are counted
	FirstError    string // line:column of the first error
	// GeneratedTokens is the number of generated tokens (0 for a forward pass).
	GeneratedTokens int
	// Tests is "pass", "fail", "timeout", or "" when the task ships no tests.
	Tests, TestDetail string
}

// Check runs the automatic checks on every sample of a run: syntax validity of the
// sample's whole text (prompt and generation) in its language with tree-sitter, the
// number of generated tokens, and the task's tests from spec (nil: none).
func Check(ctx context.Context, run *store.Run, spec *TestSpec) ([]CheckResult, error) {
	ids, err := run.Samples()
	if err != nil {
		return nil, err
	}
	var out []CheckResult
	for _, id := range ids {
		s, err := run.Sample(id)
		if err != nil {
			return nil, err
		}
		r := CheckResult{Sample: id, Source: s.Source, Language: s.Language, GeneratedTokens: len(s.Generated)}
		if len(s.Generated) == 0 && s.PromptLen > 0 && len(s.IDs) > s.PromptLen {
			r.GeneratedTokens = len(s.IDs) - s.PromptLen
		}
		lang := s.Language
		if lang == "" {
			lang = filepath.Ext(s.Source)
		}
		if _, err := code.CanonicalLanguage(lang); err == nil {
			errs, err := code.SyntaxErrors(ctx, lang, []byte(s.Text), 100)
			if err != nil {
				return nil, fmt.Errorf("sample %s: %w", id, err)
			}
			r.SyntaxChecked, r.SyntaxValid, r.SyntaxErrors = true, len(errs) == 0, len(errs)
			if len(errs) > 0 {
				r.FirstError = errs[0].String()
			}
		}
		if t := spec.Task(s.Source); t != nil {
			tr, err := spec.RunTests(ctx, t, []byte(s.Text))
			if err != nil {
				return nil, fmt.Errorf("sample %s: %w", id, err)
			}
			r.Tests, r.TestDetail = tr.Status, tr.Detail
		}
		out = append(out, r)
	}
	return out, nil
}

// CheckColumns is the header of WriteChecks' table.
var CheckColumns = []string{"sample", "source", "language", "syntax_checked", "syntax_valid", "syntax_errors", "first_error", "generated_tokens", "tests", "test_detail"}

// WriteChecks writes check results as a CSV table, atomically.
func WriteChecks(path string, rs []CheckResult) error {
	rows := [][]string{CheckColumns}
	for _, r := range rs {
		rows = append(rows, []string{r.Sample, r.Source, r.Language, strconv.FormatBool(r.SyntaxChecked), strconv.FormatBool(r.SyntaxValid),
			strconv.Itoa(r.SyntaxErrors), r.FirstError, strconv.Itoa(r.GeneratedTokens), r.Tests, r.TestDetail})
	}
	return writeCSV(path, rows)
}
