// Package grading extracts the answers of code-model generations and of developers,
// imports the graded CSVs of the followup-attention study (answers scored 0–2, and
// the annotators' 1–5 grades) and runs automatic checks on generated code: syntax
// validity with tree-sitter, the number of generated tokens, and the task's tests run
// in a subprocess with a time and memory limit in a temporary folder.
package grading

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/store"
)

// AnswerOptions tune MachineAnswers.
type AnswerOptions struct {
	// ModelName is the model_name column; empty: the base name of the run's model
	// folder. The original wrote "unknown" (it read a config key that never exists);
	// UnknownModelName reproduces that.
	ModelName        string
	UnknownModelName bool
	// TryFromName takes n_try from the third "_"-separated field of the sample id, as
	// the original does with the file stem (wrong for names with more underscores);
	// by default it is the sample's try.
	TryFromName bool
}

// MachineAnswer is a row of machine_answers.csv.
type MachineAnswer struct {
	Filename, ModelName, NTry, Answer string
}

// MachineAnswers extracts the answer of every sample of a run (the original's
// getanswers and getanswersdataset for generations): the text from the first
// "Question" on, after a line with the sample id. It writes RUN/answers/<id>.txt and
// RUN/machine_answers.csv (filename, model_name, n_try, answer). A sample without
// "Question" is an error naming it, and nothing is written.
func MachineAnswers(run *store.Run, o AnswerOptions) ([]MachineAnswer, error) {
	ids, err := run.Samples()
	if err != nil {
		return nil, err
	}
	model := o.ModelName
	switch {
	case o.UnknownModelName:
		model = "unknown"
	case model == "" && run.Meta.Model != nil:
		model = filepath.Base(filepath.Clean(run.Meta.Model.Dir))
	}
	var out []MachineAnswer
	for _, id := range ids {
		s, err := run.Sample(id)
		if err != nil {
			return nil, err
		}
		i := strings.Index(s.Text, "Question")
		if i < 0 {
			return nil, fmt.Errorf("run %s: sample %s: its text has no \"Question\" to start the answer from", run.Dir(), id)
		}
		try := strconv.Itoa(s.Try)
		if o.TryFromName {
			parts := strings.Split(id, "_")
			if len(parts) < 3 {
				return nil, fmt.Errorf("run %s: sample %s: no third '_'-separated field to read n_try from", run.Dir(), id)
			}
			try = parts[2]
		}
		out = append(out, MachineAnswer{Filename: id, ModelName: model, NTry: try, Answer: id + "\n" + s.Text[i:]})
	}
	dir := filepath.Join(run.Dir(), "answers")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	rows := [][]string{{"filename", "model_name", "n_try", "answer"}}
	for _, a := range out {
		if err := atomicfile.WriteFile(filepath.Join(dir, a.Filename+".txt"), []byte(a.Answer)); err != nil {
			return nil, err
		}
		rows = append(rows, []string{a.Filename, a.ModelName, a.NTry, a.Answer})
	}
	return out, writeCSV(filepath.Join(run.Dir(), "machine_answers.csv"), rows)
}
