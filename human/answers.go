package human

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/attnscope/attnscope/internal/atomicfile"
)

// sessionInput is what one participant's task is read from.
type sessionInput struct {
	userDir, questions string // the participant's folder and the task files' folder
	fixPath            string
	fixations          []Fixation // at least one
	snaps              []*Snapshot
}

// readSession reads the fixations (at least one) and the editor snapshots of a
// participant's task.
func (c *Config) readSession(p *Participant, task int) (*sessionInput, error) {
	partsDir, questions, err := c.folders(p)
	if err != nil {
		return nil, err
	}
	in := &sessionInput{userDir: filepath.Join(partsDir, p.Name), questions: questions}
	if in.fixPath, err = c.fixationFile(in.userDir, task); err != nil {
		return nil, err
	}
	if in.fixations, err = ReadFixationsFile(in.fixPath, c.Quirks.OffScreenFixations == "outside"); err != nil {
		return nil, err
	}
	if len(in.fixations) == 0 {
		return nil, fmt.Errorf("%s: no fixations", in.fixPath)
	}
	if in.snaps, err = ReadSnapshots(filepath.Join(in.userDir, "Snapshots"), c.TabReplacements); err != nil {
		return nil, err
	}
	return in, nil
}

// textEvents returns the snapshots taken between the first and the last fixation of
// a participant's task, in time order.
func (c *Config) textEvents(p *Participant, task int) ([]*Snapshot, error) {
	in, err := c.readSession(p, task)
	if err != nil {
		return nil, err
	}
	fx, snaps, fixPath := in.fixations, in.snaps, in.fixPath
	var out []*Snapshot
	for _, s := range snaps {
		if s.Time >= fx[0].Time && s.Time <= fx[len(fx)-1].Time {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no editor snapshot was taken during its fixations", fixPath)
	}
	return out, nil
}

var answerFileRE = regexp.MustCompile(`([a-zA-Z0-9_.]*)$`)

// Answer finds a developer's answer in the snapshots of a task (the original's
// get_answer_of): a snapshot is an edit when its number of visible characters
// differs from the previous snapshot's while the first visible line is the same; the
// answer is the snapshot right after the last edit whose text holds both
// "# Question" and "# Answer", from "# Question" on. It returns "<file name>\n" +
// the answer ("" when no such edit exists; the file is then the one shown in the
// middle snapshot).
func Answer(snaps []*Snapshot) string {
	var target *Snapshot
	for i := 0; i+1 < len(snaps); i++ {
		modified := i > 0 && len([]rune(snaps[i].Text())) != len([]rune(snaps[i-1].Text())) && snaps[i].FirstLine == snaps[i-1].FirstLine
		next := snaps[i+1].Text()
		if modified && strings.Contains(next, "# Question") && strings.Contains(next, "# Answer") {
			target = snaps[i+1]
		}
	}
	answer, file := "", ""
	if target == nil {
		file = snaps[len(snaps)/2].File
	} else {
		t := target.Text()
		answer = t[strings.Index(t, "# Question"):]
		file = target.File
	}
	name := answerFileRE.FindString(filepath.Base(file))
	return name + "\n" + answer
}

// GetAnswers writes every session's answer to human/answers/<id>.txt.
func GetAnswers(ctx context.Context, c *Config, opt Options) error {
	run, err := c.openRun()
	if err != nil {
		return err
	}
	dir := filepath.Join(run.Dir(), HumanDir, "answers")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range c.Participants {
		p := &c.Participants[i]
		for _, task := range p.Tasks {
			if err := ctx.Err(); err != nil {
				return err
			}
			snaps, err := c.textEvents(p, task)
			if err != nil {
				return fmt.Errorf("participant %q task %d: %w", p.Name, task, err)
			}
			id := UniqueDataID(p.Name, task)
			if err := atomicfile.WriteFile(filepath.Join(dir, id+".txt"), []byte(Answer(snaps))); err != nil {
				return err
			}
			opt.logf("answer of %s (%s, task %d)", id, p.Name, task)
		}
	}
	return nil
}

// GetAnswersDataset gathers the answers of human/data_mapping.json into
// human/answers_dataset.csv (unique_data_id, user, task_number, answer); sessions
// without an answer file are left out, as in the original.
func GetAnswersDataset(ctx context.Context, c *Config, opt Options) error {
	run, err := c.openRun()
	if err != nil {
		return err
	}
	mpath := filepath.Join(run.Dir(), HumanDir, "data_mapping.json")
	b, err := os.ReadFile(mpath)
	if err != nil {
		return fmt.Errorf("%w (run getweights first)", err)
	}
	var mapping []MappingEntry
	if err := json.Unmarshal(b, &mapping); err != nil {
		return fmt.Errorf("%s: %w", mpath, err)
	}
	rows := [][]string{{"unique_data_id", "user", "task_number", "answer"}}
	for _, m := range mapping {
		a, err := os.ReadFile(filepath.Join(run.Dir(), HumanDir, "answers", m.UniqueDataID+".txt"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		rows = append(rows, []string{m.UniqueDataID, m.User, strconv.Itoa(m.TaskNumber), string(a)})
	}
	out := filepath.Join(run.Dir(), HumanDir, "answers_dataset.csv")
	if err := writeCSV(out, rows); err != nil {
		return err
	}
	opt.logf("%s: %d answers", out, len(rows)-1)
	return nil
}
