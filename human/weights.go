package human

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// CharEvent is a fixation's time on one character cell (a row of the original's
// intermediate_char_events CSV): Line and Column count from 1, Time is the fixation's
// start in milliseconds since midnight and TimeSpent its duration in seconds. A row
// with Time 0 and TimeSpent 0 marks a character that no fixation covered.
type CharEvent struct {
	Line, Column    int
	Time, TimeSpent float64
}

// Session is the processed eye-tracking data of one participant on one task.
type Session struct {
	ID   string // first 6 hex digits of sha256(user + task number), as the original
	User string
	Task int
	// File is the task file as <folder>/<name>, relative to the questions folder.
	File string
	// Text is the task file's content (newlines normalised to \n).
	Text string
	// Weights holds one weight per character of Text (Unicode code points): the
	// summed duration in seconds of the fixations whose neighbourhood covers it.
	Weights []float64
	// Events are the character events, ordered by line and column (then time).
	Events []CharEvent
	// Fixations counts the fixations used; OutsideCodeArea those outside the code
	// area (skipped unless Quirks.OutsideCodeAreaFirstCell); BeforeSnapshot those
	// before the first snapshot; OtherFile those while another file was shown.
	Fixations, OutsideCodeArea, BeforeSnapshot, OtherFile int
}

// UniqueDataID is the original's id of a session: the first 6 hex digits of
// sha256(user name + decimal task number).
func UniqueDataID(user string, task int) string {
	h := sha256.Sum256([]byte(user + strconv.Itoa(task)))
	return hex.EncodeToString(h[:])[:6]
}

var fixationFileRE = regexp.MustCompile(`([0-9]+)_fixations\.csv$`)

// fixationFile finds <task>_fixations.csv in a participant's folder.
func (c *Config) fixationFile(dir string, task int) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("participant folder: %w", err)
	}
	var names []string
	for _, e := range entries {
		m := fixationFileRE.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			continue
		}
		num := m[1]
		if c.Quirks.FixationFileLastDigit {
			num = num[len(num)-1:]
		}
		if n, err := strconv.Atoi(num); err == nil && n == task {
			names = append(names, e.Name())
		}
	}
	switch len(names) {
	case 0:
		return "", fmt.Errorf("%s: no %d_fixations.csv (the Gazepoint fixation export of task %d)", dir, task, task)
	case 1:
		return filepath.Join(dir, names[0]), nil
	}
	sort.Strings(names)
	return "", fmt.Errorf("%s: several fixation files for task %d: %s", dir, task, strings.Join(names, ", "))
}

// gridCell maps a fixation (fractions of the screen) to the (line, column) cell,
// counted from 0, of a uniform grid of nLines × nCol cells over the code area, as the
// original's get_char_coordinates: separators at start + i·(width/n), a point belongs
// to the cell whose separators hold it (left inclusive). ok is false outside the grid
// (where the original returns (0, 0)).
func gridCell(x, y float64, res ScreenResolution, sc ScreenCoordinates, nLines, nCol int) (line, col int, ok bool) {
	cw := (sc.XEnd - sc.XStart) / float64(nCol)
	ch := (sc.YEnd - sc.YStart) / float64(nLines)
	xa := x * float64(res.Width)
	ya := y * float64(res.Height)
	col, line = -1, -1
	for i := 0; i < nCol; i++ {
		if sc.XStart+cw*float64(i) <= xa && xa < sc.XStart+cw*float64(i+1) {
			col = i
			break
		}
	}
	for i := 0; i < nLines; i++ {
		if sc.YStart+ch*float64(i) <= ya && ya < sc.YStart+ch*float64(i+1) {
			line = i
			break
		}
	}
	if col < 0 || line < 0 {
		return 0, 0, false
	}
	return line, col, true
}

// neighbourhood returns the cells (1-based file line, column) a fixation on grid cell
// (gl, gc) covers when the first visible line is first (0-based): lines within v of
// it and columns within h, clipped to the visible screen (the original's
// convert_char_coordinate_to_attention_area).
func neighbourhood(gl, gc, first, h, v, nLines, nCol int, dst [][2]int) [][2]int {
	line := gl + 1 + first
	col := gc + 1
	for i := line - v; i <= line+v; i++ {
		if i < first+1 || i > first+nLines {
			continue
		}
		for j := col - h; j <= col+h; j++ {
			if j < 1 || j > nCol {
				continue
			}
			dst = append(dst, [2]int{i, j})
		}
	}
	return dst
}

type event struct {
	time float64
	fix  *Fixation
	snap *Snapshot
}

// ProcessSession reads the fixations and snapshots of one participant's task and
// computes its character weights and events (the original's getweights for one
// session).
func (c *Config) ProcessSession(ctx context.Context, p *Participant, task int) (*Session, error) {
	in, err := c.readSession(p, task)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	events, file, err := c.syncEvents(in.fixPath, in.fixations, in.snaps)
	if err != nil {
		return nil, err
	}
	area, err := c.codeArea(p, in.userDir, task)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(in.questions, filepath.FromSlash(file)))
	if err != nil {
		return nil, fmt.Errorf("participant %q task %d: the task file shown in the snapshots: %w", p.Name, task, err)
	}
	text := strings.ReplaceAll(strings.ReplaceAll(string(b), "\r\n", "\n"), "\r", "\n")
	s := &Session{ID: UniqueDataID(p.Name, task), User: p.Name, Task: task, File: file, Text: text}
	c.attribute(s, p, area, events, file)
	return s, nil
}

// syncEvents merges fixations and the snapshots taken between the first and the last
// fixation into one time-ordered list and returns the session's file: the file shown
// most often (ties: the first shown). A snapshot of another file is an error unless
// Quirks.OtherFileSnapshots says otherwise.
func (c *Config) syncEvents(fixPath string, fixations []Fixation, snaps []*Snapshot) ([]event, string, error) {
	first, last := fixations[0].Time, fixations[len(fixations)-1].Time
	var events []event
	for i := range fixations {
		events = append(events, event{time: fixations[i].Time, fix: &fixations[i]})
	}
	counts := map[string]int{}
	var order []string
	for _, s := range snaps {
		if s.Time < first || s.Time > last {
			continue
		}
		if counts[s.File] == 0 {
			order = append(order, s.File)
		}
		counts[s.File]++
		events = append(events, event{time: s.Time, snap: s})
	}
	if len(order) == 0 {
		return nil, "", fmt.Errorf("%s: no editor snapshot was taken during its fixations (between %.0f and %.0f ms after midnight)", fixPath, first, last)
	}
	file := order[0]
	for _, f := range order {
		if counts[f] > counts[file] {
			file = f
		}
	}
	if mode := c.Quirks.OtherFileSnapshots; mode == "" || mode == "error" {
		for _, e := range events {
			if e.snap != nil && e.snap.File != file {
				return nil, "", fmt.Errorf("%s: line 1: file %q is not the session's file %q (snapshot for another file during the fixations of %s; quirks.other_file_snapshots: skip drops the fixations while it is shown)",
					e.snap.Path, e.snap.File, file, filepath.Base(fixPath))
			}
		}
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].time < events[j].time })
	return events, file, nil
}

// attribute spreads every fixation over its neighbourhood and keeps the cells that
// are characters of the file.
func (c *Config) attribute(s *Session, p *Participant, area ScreenCoordinates, events []event, file string) {
	zoom := c.Zoom[p.Zoom]
	h, v := c.spans()
	var cur *Snapshot
	type cellEvent struct {
		time, spent float64
	}
	cells := map[[2]int][]cellEvent{}
	maxLine, maxCol := 0, 0
	var buf [][2]int
	for _, e := range events {
		if e.snap != nil {
			cur = e.snap
			continue
		}
		if cur == nil {
			s.BeforeSnapshot++
			continue
		}
		if cur.File != file && c.Quirks.OtherFileSnapshots == "skip" {
			s.OtherFile++
			continue
		}
		gl, gc, ok := gridCell(e.fix.X, e.fix.Y, c.ScreenResolution, area, zoom.NLines, zoom.NCol)
		if !ok {
			s.OutsideCodeArea++
			if !c.Quirks.OutsideCodeAreaFirstCell {
				continue
			}
		}
		s.Fixations++
		buf = neighbourhood(gl, gc, cur.FirstLine, h, v, zoom.NLines, zoom.NCol, buf[:0])
		for _, cell := range buf {
			cells[cell] = append(cells[cell], cellEvent{e.time, e.fix.Duration})
			maxLine = max(maxLine, cell[0])
			maxCol = max(maxCol, cell[1])
		}
	}
	// The original adds a zero row for every cell of a max_line+5 × 2·max_column
	// matrix whose total is 0, then keeps the cells that are characters of the file.
	runes := []rune(s.Text)
	s.Weights = make([]float64, len(runes))
	line, col := 1, 1
	for i, r := range runes {
		cell := [2]int{line, col}
		var total float64
		for _, ce := range cells[cell] {
			s.Events = append(s.Events, CharEvent{Line: line, Column: col, Time: ce.time, TimeSpent: ce.spent})
			total += ce.spent
		}
		s.Weights[i] = total
		if total == 0 && line <= maxLine+5 && col <= 2*maxCol {
			s.Events = append(s.Events, CharEvent{Line: line, Column: col})
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
}
