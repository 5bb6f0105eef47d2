package grading

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Grade is one grade of one answer, from any of the study's grading files.
type Grade struct {
	Source string // the file it came from
	Row    int    // its line in that file (of the record's start)
	// Kind is "machine" (a model's generation) or "human" (a developer's answer).
	Kind string
	// Filename is the graded answer: a generation's stem
	// (<task file>_<try>_<model>) or, for a developer, the task file.
	Filename, ModelName, NTry      string
	UniqueDataID, User, TaskNumber string
	// Annotator is the annotator's column ("" for a final score file); Criterion
	// "score" for a final score, "overall" for an annotator's grade, or the
	// sub-criterion ("completeness", "correctness", "intelligibility", …).
	Annotator, Criterion string
	Score                float64
	// Scale is the score range: "0-2" (final scores, 2 = best) or "1-5" (annotators).
	Scale string
}

var (
	machineScoreHeader = []string{"filename", "model_name", "n_try", "score"}
	humanScoreHeader   = []string{"unique_data_id", "user", "task_number", "filename", "score"}
	machineAnnotHead   = []string{"ID", "filename", "model_name", "n_try", "answer"}
	humanAnnotHead     = []string{"ID", "unique_data_id", "user", "task_number", "Filename", "answer"}
)

// ReadGrades reads a grading file of the study: a final score file (filename,
// model_name, n_try, score for generations; unique_data_id, user, task_number,
// filename, score for developers; scores 0, 1 or 2) or an annotation sheet (ID,
// filename, model_name, n_try, answer or ID, unique_data_id, user, task_number,
// Filename, answer, followed by one column per annotator — "Annotator k (name)" —
// and their sub-criteria columns, grades 1 to 5, empty when not graded). Errors name
// the file, the line and the column.
func ReadGrades(path string) ([]Grade, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readGrades(path, f)
}

func readGrades(name string, r io.Reader) ([]Grade, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty file (a grading CSV with a header expected)", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(head) > 0 {
		head[0] = strings.TrimPrefix(head[0], "\ufeff")
	}
	switch {
	case equal(head, machineScoreHeader):
		return readScores(name, cr, head, "machine")
	case equal(head, humanScoreHeader):
		return readScores(name, cr, head, "human")
	case hasPrefix(head, machineAnnotHead):
		return readAnnotations(name, cr, head, "machine", len(machineAnnotHead))
	case hasPrefix(head, humanAnnotHead):
		return readAnnotations(name, cr, head, "human", len(humanAnnotHead))
	}
	return nil, fmt.Errorf("%s: line 1: header %q is none of the grading formats (%s; %s; %s,…; %s,…)", name, strings.Join(head, ","),
		strings.Join(machineScoreHeader, ","), strings.Join(humanScoreHeader, ","), strings.Join(machineAnnotHead, ","), strings.Join(humanAnnotHead, ","))
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	return hasPrefix(a, b)
}

func hasPrefix(a, b []string) bool {
	if len(a) < len(b) {
		return false
	}
	for i := range b {
		if strings.TrimSpace(a[i]) != b[i] {
			return false
		}
	}
	return true
}

func score(name string, line int, col, v string, lo, hi int) (float64, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s: line %d: column %q: %q is not a grade from %d to %d", name, line, col, v, lo, hi)
	}
	return float64(n), nil
}

func readScores(name string, cr *csv.Reader, head []string, kind string) ([]Grade, error) {
	var out []Grade
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(head) {
			return nil, fmt.Errorf("%s: line %d: %d fields, the header has %d", name, line, len(rec), len(head))
		}
		g := Grade{Source: name, Row: line, Kind: kind, Criterion: "score", Scale: "0-2"}
		var v string
		if kind == "machine" {
			g.Filename, g.ModelName, g.NTry, v = rec[0], rec[1], rec[2], rec[3]
		} else {
			g.UniqueDataID, g.User, g.TaskNumber, g.Filename, v = rec[0], rec[1], rec[2], rec[3], rec[4]
		}
		if g.Score, err = score(name, line, "score", v, 0, 2); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
}

// readAnnotations reads an annotation sheet: every non-empty grade after the fixed
// columns is a Grade; an unnamed column, or one named "A<k> - <criterion>", is a
// sub-criterion of the annotator column before it.
func readAnnotations(name string, cr *csv.Reader, head []string, kind string, fixed int) ([]Grade, error) {
	annot := make([]string, len(head))
	crit := make([]string, len(head))
	cur := ""
	for j := fixed; j < len(head); j++ {
		h := strings.TrimSpace(head[j])
		switch {
		case strings.HasPrefix(h, "Annotator"):
			cur = h
			annot[j], crit[j] = h, "overall"
		case h == "":
			if cur == "" {
				return nil, fmt.Errorf("%s: line 1: column %d has no name and no annotator before it", name, j+1)
			}
			annot[j], crit[j] = cur, fmt.Sprintf("column %d", j+1)
		default:
			if cur == "" {
				return nil, fmt.Errorf("%s: line 1: column %q comes before any \"Annotator …\" column", name, h)
			}
			_, c, ok := strings.Cut(h, " - ")
			if !ok {
				c = h
			}
			annot[j], crit[j] = cur, strings.ToLower(strings.TrimSpace(c))
		}
	}
	var out []Grade
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) < fixed {
			return nil, fmt.Errorf("%s: line %d: %d fields, at least %d expected", name, line, len(rec), fixed)
		}
		base := Grade{Source: name, Row: line, Kind: kind, Scale: "1-5"}
		if kind == "machine" {
			base.Filename, base.ModelName, base.NTry = rec[1], rec[2], rec[3]
		} else {
			base.UniqueDataID, base.User, base.TaskNumber, base.Filename = rec[1], rec[2], rec[3], rec[4]
		}
		for j := fixed; j < len(rec) && j < len(head); j++ {
			if strings.TrimSpace(rec[j]) == "" {
				continue
			}
			g := base
			g.Annotator, g.Criterion = annot[j], crit[j]
			col := head[j]
			if col == "" {
				col = fmt.Sprintf("column %d", j+1)
			}
			if g.Score, err = score(name, line, col, rec[j], 1, 5); err != nil {
				return nil, err
			}
			out = append(out, g)
		}
	}
}

// ImportGrades reads every grading file among paths (files, or folders searched for
// *.csv), in path order.
func ImportGrades(paths []string) ([]Grade, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(strings.ToLower(q), ".csv") {
				files = append(files, q)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(files)
	var out []Grade
	for _, f := range files {
		g, err := ReadGrades(f)
		if err != nil {
			return nil, err
		}
		out = append(out, g...)
	}
	return out, nil
}

// GradeColumns is the header of WriteGrades' table.
var GradeColumns = []string{"source", "row", "kind", "filename", "model_name", "n_try", "unique_data_id", "user", "task_number", "annotator", "criterion", "scale", "score"}

// WriteGrades writes grades as one CSV table (GradeColumns), atomically.
func WriteGrades(path string, gs []Grade) error {
	rows := [][]string{GradeColumns}
	for _, g := range gs {
		rows = append(rows, []string{g.Source, strconv.Itoa(g.Row), g.Kind, g.Filename, g.ModelName, g.NTry, g.UniqueDataID, g.User, g.TaskNumber,
			g.Annotator, g.Criterion, g.Scale, strconv.FormatFloat(g.Score, 'g', -1, 64)})
	}
	return writeCSV(path, rows)
}
