package human

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/attnscope/attnscope/store"
)

// Options tune a step.
type Options struct {
	// Command is the command line recorded in a new run's run.json.
	Command []string
	// Log, if set, receives one line per session or file written.
	Log io.Writer
}

func (o Options) logf(format string, a ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", a...)
	}
}

// Steps lists the steps of the pipeline in the order they depend on each other.
var Steps = []string{"getweights", "derivetokenweights", "getfollowup", "derivefollowupline", "getavgbehavior", "getanswers", "getanswersdataset"}

// RunStep runs one step by name ("all" runs every step in order).
func RunStep(ctx context.Context, c *Config, step string, opt Options) error {
	switch step {
	case "all":
		for _, s := range Steps {
			if err := RunStep(ctx, c, s, opt); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	case "getweights":
		return GetWeights(ctx, c, opt)
	case "derivetokenweights":
		return DeriveTokenWeights(ctx, c, opt)
	case "getfollowup":
		return GetFollowup(ctx, c, opt)
	case "derivefollowupline":
		return DeriveFollowupLine(ctx, c, opt)
	case "getavgbehavior":
		return GetAvgBehavior(ctx, c, opt)
	case "getanswers":
		return GetAnswers(ctx, c, opt)
	case "getanswersdataset":
		return GetAnswersDataset(ctx, c, opt)
	}
	return fmt.Errorf("unknown step %q (known: %s, all)", step, strings.Join(Steps, ", "))
}

// MappingEntry is a row of data_mapping.json.
type MappingEntry struct {
	UniqueDataID string `json:"unique_data_id"`
	User         string `json:"user"`
	TaskNumber   int    `json:"task_number"`
}

// GetWeights processes every session of the config (every task of every
// participant) and writes the run folder: a sample per session (the task file's text
// with the follow-up tokenizer's tokens and offsets), derived/char_weights/<id>.npy,
// human/intermediate_char_events/<id>.csv and human/data_mapping.json. Every session
// is read and checked before anything is written.
func GetWeights(ctx context.Context, c *Config, opt Options) error {
	var sessions []*Session
	for i := range c.Participants {
		p := &c.Participants[i]
		for _, task := range p.Tasks {
			s, err := c.ProcessSession(ctx, p, task)
			if err != nil {
				return fmt.Errorf("participant %q task %d: %w", p.Name, task, err)
			}
			sessions = append(sessions, s)
		}
	}
	run, err := c.openOrCreateRun(opt.Command)
	if err != nil {
		return err
	}
	h, v := c.spans()
	kw := map[string]any{"horizontal_attention_span": h, "vertical_attention_span": v,
		"outside_code_area_first_cell": c.Quirks.OutsideCodeAreaFirstCell, "other_file_snapshots": c.Quirks.OtherFileSnapshots}
	if err := preparePass(run, PassCharWeights, store.PassSettings{Function: "human.getweights", Input: "eye-tracking", Kwargs: kw, Axes: CharWeightsAxes}); err != nil {
		return err
	}
	var enc func(string) (*store.Sample, error)
	if c.Followup.ModelTokenizer != "" {
		tk, err := c.loadTokenizer(c.Followup.ModelTokenizer, c.Followup.ModelFolder)
		if err != nil {
			return err
		}
		enc = func(text string) (*store.Sample, error) {
			e, err := tk.Encode(text, true)
			if err != nil {
				return nil, err
			}
			return &store.Sample{IDs: e.IDs, Tokens: e.Tokens, Offsets: e.Offsets}, nil
		}
	}
	mapping := make([]MappingEntry, 0, len(sessions))
	for _, s := range sessions {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := writeSession(run, s, enc); err != nil {
			return fmt.Errorf("session %s (%s, task %d): %w", s.ID, s.User, s.Task, err)
		}
		mapping = append(mapping, MappingEntry{s.ID, s.User, s.Task})
		opt.logf("%s: %s task %d, %s: %d fixations (%d outside the code area, %d before the first snapshot)",
			s.ID, s.User, s.Task, s.File, s.Fixations, s.OutsideCodeArea, s.BeforeSnapshot)
	}
	return writeJSON(filepath.Join(run.Dir(), HumanDir, "data_mapping.json"), mapping)
}

func writeSession(run *store.Run, s *Session, enc func(string) (*store.Sample, error)) error {
	smp := &store.Sample{}
	if enc != nil {
		var err error
		if smp, err = enc(s.Text); err != nil {
			return err
		}
	}
	smp.ID, smp.Text, smp.PromptText, smp.PromptLen = s.ID, s.Text, s.Text, len(smp.IDs)
	smp.Source = filepath.Base(s.File)
	smp.Language = languageOf(s.File)
	smp.Extra = map[string]any{"user_name": s.User, "task_number": s.Task, "source_code": s.File,
		"fixations": s.Fixations, "fixations_outside_code_area": s.OutsideCodeArea}
	rows := [][]string{{"line", "column", "time", "time_spent"}}
	for _, e := range s.Events {
		rows = append(rows, []string{strconv.Itoa(e.Line), strconv.Itoa(e.Column), pyFloat(e.Time), pyFloat(e.TimeSpent)})
	}
	dir := filepath.Join(run.Dir(), HumanDir, "intermediate_char_events")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(dir, s.ID+".csv"), rows); err != nil {
		return err
	}
	if err := writeArray(run, PassCharWeights, s.ID, CharWeightsAxes, []int{len(s.Weights)}, s.Weights); err != nil {
		return err
	}
	return run.WriteSample(smp)
}

// readCharEvents reads an intermediate_char_events CSV.
func readCharEvents(path string) ([]CharEvent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if strings.Join(head, ",") != "line,column,time,time_spent" {
		return nil, fmt.Errorf("%s: line 1: header %q, want line,column,time,time_spent", path, strings.Join(head, ","))
	}
	var out []CharEvent
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		line, _ := r.FieldPos(0)
		var e CharEvent
		var perr error
		num := func(i int, name string) float64 {
			v, err := strconv.ParseFloat(rec[i], 64)
			if err != nil && perr == nil {
				perr = fmt.Errorf("%s: line %d: field %s: %q is not a number", path, line, name, rec[i])
			}
			return v
		}
		e.Line, e.Column = int(num(0, "line")), int(num(1, "column"))
		e.Time, e.TimeSpent = num(2, "time"), num(3, "time_spent")
		if perr != nil {
			return nil, perr
		}
		out = append(out, e)
	}
}

// DeriveTokenWeights moves the character weights of every sample to the tokens of
// each model of tokenization.model_names (the original's derivetokenweights):
// each character's weight goes to the first token whose character span (tokenizer
// offsets) holds it, so the total is preserved and any tokenizer works, including
// those whose token strings are not substrings of the text. Special tokens get 0.
// Output: derived/token_weights.<model>/<id>.npy.
func DeriveTokenWeights(ctx context.Context, c *Config, opt Options) error {
	run, err := c.openRun()
	if err != nil {
		return err
	}
	samples, err := run.Samples()
	if err != nil {
		return err
	}
	for _, m := range c.Tokenization.ModelNames {
		tk, err := c.loadTokenizer(m, c.Tokenization.ModelsFolder)
		if err != nil {
			return err
		}
		pass := PassTokenWeights(m)
		axes := []store.Axis{{Name: store.AxisToken}}
		if c.sameAsFollowupTokenizer(m) {
			axes = []store.Axis{{Name: store.AxisKey}} // the sample's own tokens
		}
		if err := preparePass(run, pass, store.PassSettings{Function: "human.derivetokenweights", Input: PassCharWeights, Kwargs: map[string]any{"model": m}, Axes: axes}); err != nil {
			return err
		}
		for _, id := range samples {
			if err := ctx.Err(); err != nil {
				return err
			}
			s, err := run.Sample(id)
			if err != nil {
				return err
			}
			_, w, err := readArray(run, PassCharWeights, id)
			if err != nil {
				return err
			}
			e, err := tk.Encode(s.Text, true)
			if err != nil {
				return fmt.Errorf("sample %s: tokenize with %s: %w", id, m, err)
			}
			tw, err := TokenWeights(w, e.Offsets)
			if err != nil {
				return fmt.Errorf("sample %s: model %s: %w", id, m, err)
			}
			if err := writeArray(run, pass, id, axes, []int{len(tw)}, tw); err != nil {
				return err
			}
		}
		opt.logf("%s: %d samples", pass, len(samples))
	}
	return nil
}

// TokenWeights sums character weights over token character spans [start, end); a
// character covered by several tokens (a character split over byte-level tokens)
// counts once, for the first. It fails if a weighted character belongs to no token.
func TokenWeights(charW []float64, offsets [][2]int) ([]float64, error) {
	owner := make([]int, len(charW))
	for i := range owner {
		owner[i] = -1
	}
	for t, o := range offsets {
		if o[0] < 0 || o[1] < o[0] || o[1] > len(charW) {
			return nil, fmt.Errorf("token %d has span [%d,%d) outside the %d characters", t, o[0], o[1], len(charW))
		}
		for k := o[0]; k < o[1]; k++ {
			if owner[k] < 0 {
				owner[k] = t
			}
		}
	}
	out := make([]float64, len(offsets))
	for k, w := range charW {
		if owner[k] < 0 {
			if w != 0 {
				return nil, fmt.Errorf("character %d carries weight %g but no token covers it", k, w)
			}
			continue
		}
		out[owner[k]] += w
	}
	return out, nil
}
