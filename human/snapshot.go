package human

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Snapshot is a text snapshot of the editor written by the VS Code plugin of the
// study: a file in <participant>/Snapshots named after the time of day it was taken
// (h-mm-ss-AM|PM-fff.txt), whose first line is <file path>:<first visible line> and
// whose other lines are the visible text.
type Snapshot struct {
	Path string  // the snapshot file
	Time float64 // milliseconds since midnight
	// File is the shown file as <folder>/<name> (the folder that holds it and its
	// name, from the path of the first line, which may use \ or /).
	File string
	// FirstLine is the first visible line of the file, counted from 0.
	FirstLine int
	// Lines are the visible lines, each with its newline, tabs replaced.
	Lines []string
}

var snapshotNameRE = regexp.MustCompile(`^(\d{1,2})-(\d{1,2})-(\d{1,2})-(AM|PM)-(\d+)$`)

// snapshotTime reads the time of day of a snapshot file name as the original's
// convert_string_to_day_time: the text before the first '.', parentheses removed (so
// "975(1)" of a second snapshot in the same millisecond reads as fraction .9751),
// parsed with strptime("%I-%M-%S-%p-%f").
func snapshotTime(name string) (float64, error) {
	stem, _, _ := strings.Cut(name, ".")
	stem = strings.NewReplacer("(", "", ")", "").Replace(stem)
	m := snapshotNameRE.FindStringSubmatch(stem)
	if m == nil {
		return 0, fmt.Errorf("file name %q: want the time of day h-mm-ss-AM|PM-fff (e.g. 2-04-56-PM-975.txt)", name)
	}
	h, _ := strconv.Atoi(m[1])
	mi, _ := strconv.Atoi(m[2])
	s, _ := strconv.Atoi(m[3])
	if h < 1 || h > 12 || mi > 59 || s > 61 {
		return 0, fmt.Errorf("file name %q: hour, minute or second out of range", name)
	}
	us, err := microseconds(m[5])
	if err != nil {
		return 0, fmt.Errorf("file name %q: %v", name, err)
	}
	h %= 12
	if m[4] == "PM" {
		h += 12
	}
	total := int64((h*3600+mi*60+s))*1_000_000 + us
	return float64(total) / 1e6 * 1000, nil
}

var firstLineRE = regexp.MustCompile(`^(.*):([0-9]+)\s*$`)

// ReadSnapshot reads one snapshot file, applying the tab replacements and then turning
// every tab into four spaces, as the original's read_textual_snapshot does.
func ReadSnapshot(path string, tabs []TabReplacement) (*Snapshot, error) {
	t, err := snapshotTime(filepath.Base(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	lines := strings.SplitAfter(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%s: line 1: empty snapshot (want <file>:<first visible line>)", path)
	}
	m := firstLineRE.FindStringSubmatch(strings.TrimRight(lines[0], "\n"))
	if m == nil {
		return nil, fmt.Errorf("%s: line 1: %q is not <file>:<first visible line>", path, strings.TrimSpace(lines[0]))
	}
	first, err := strconv.Atoi(m[2])
	if err != nil {
		return nil, fmt.Errorf("%s: line 1: first visible line %q is not a number", path, m[2])
	}
	parts := strings.FieldsFunc(m[1], func(r rune) bool { return r == '\\' || r == '/' })
	if len(parts) == 0 {
		return nil, fmt.Errorf("%s: line 1: no file name before ':%s'", path, m[2])
	}
	file := parts[len(parts)-1]
	if len(parts) > 1 {
		file = parts[len(parts)-2] + "/" + file
	}
	s := &Snapshot{Path: path, Time: t, File: file, FirstLine: first}
	for _, l := range lines[1:] {
		for _, r := range tabs {
			l = strings.ReplaceAll(l, r.Find, r.Replace)
		}
		s.Lines = append(s.Lines, strings.ReplaceAll(l, "\t", "    "))
	}
	return s, nil
}

// ReadSnapshots reads every snapshot of a participant's Snapshots folder, sorted by
// time (ties by file name). The original's record.json cache is not read or written.
func ReadSnapshots(dir string, tabs []TabReplacement) ([]*Snapshot, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no Snapshots folder (the editor plugin's text snapshots)", dir)
		}
		return nil, err
	}
	var out []*Snapshot
	for _, e := range entries {
		if e.IsDir() || e.Name() == "record.json" || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		s, err := ReadSnapshot(filepath.Join(dir, e.Name()), tabs)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Time != out[j].Time {
			return out[i].Time < out[j].Time
		}
		return out[i].Path < out[j].Path
	})
	return out, nil
}

// Text is the visible text of the snapshot.
func (s *Snapshot) Text() string { return strings.Join(s.Lines, "") }
