package human

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// Fixation is one row of a Gazepoint fixation export.
type Fixation struct {
	// Time is the fixation's start in milliseconds since midnight: FPOGS (seconds
	// since the recording started) × 1000 plus the recording's start time of day read
	// from the TIME(<date> <hh:mm:ss.fff>) column header, as the original's
	// offset_time_based_on_time_column computes FPOGS_abs.
	Time float64
	// Duration is FPOGD, in seconds.
	Duration float64
	// X and Y are FPOGX and FPOGY, fractions of the screen's width and height.
	X, Y float64
	// Row is the line of the file the fixation was read from (the header is line 1).
	Row int
}

// ReadFixationsFile reads a Gazepoint fixation export (<n>_fixations.csv); with
// offScreen, points off the screen are kept (see ReadFixations).
func ReadFixationsFile(path string, offScreen bool) ([]Fixation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readFixations(path, f, offScreen)
}

// ReadFixations reads a Gazepoint fixation export from r; name is used in errors.
// The header must hold a TIME(<date> <time>) column and FPOGS, FPOGD, FPOGX and
// FPOGY; other columns are ignored. Every row must have finite values, a start time
// not earlier than the previous row's, a non-negative duration and a point on the
// screen (FPOGX and FPOGY in [0, 1]). Errors name the file, the line and the field.
func ReadFixations(name string, r io.Reader) ([]Fixation, error) {
	return readFixations(name, r, false)
}

// readFixations is ReadFixations; offScreen keeps points off the screen (the eye
// tracker reports them when a developer looks away), which then fall outside the
// code area.
func readFixations(name string, r io.Reader, offScreen bool) ([]Fixation, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty file (a Gazepoint fixation export with a header line expected)", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	col := map[string]int{}
	timeCol := -1
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if strings.HasPrefix(h, "TIME(") && timeCol < 0 {
			timeCol = i
		}
		if _, dup := col[h]; !dup {
			col[h] = i
		}
	}
	if timeCol < 0 {
		return nil, fmt.Errorf("%s: line 1: no TIME(<date> <hh:mm:ss.fff>) column in the header (a Gazepoint export expected)", name)
	}
	offset, err := timeOfDayMS(strings.TrimSpace(strings.TrimPrefix(header[timeCol], "\ufeff")))
	if err != nil {
		return nil, fmt.Errorf("%s: line 1: column %q: %v", name, header[timeCol], err)
	}
	need := []string{"FPOGS", "FPOGD", "FPOGX", "FPOGY"}
	idx := make([]int, len(need))
	for i, n := range need {
		j, ok := col[n]
		if !ok {
			return nil, fmt.Errorf("%s: line 1: missing column %s (the header needs FPOGS, FPOGD, FPOGX and FPOGY)", name, n)
		}
		idx[i] = j
	}
	var out []Fixation
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		var v [4]float64
		for i, j := range idx {
			if j >= len(rec) {
				return nil, fmt.Errorf("%s: line %d: field %s missing (the row has %d fields, the header %d)", name, line, need[i], len(rec), len(header))
			}
			x, err := strconv.ParseFloat(strings.TrimSpace(rec[j]), 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("%s: line %d: field %s: %q is not a finite number", name, line, need[i], rec[j])
			}
			v[i] = x
		}
		fx := Fixation{Time: v[0]*1000 + offset, Duration: v[1], X: v[2], Y: v[3], Row: line}
		switch {
		case fx.Duration < 0:
			return nil, fmt.Errorf("%s: line %d: field FPOGD: duration %g s is negative", name, line, fx.Duration)
		case !offScreen && (fx.X < 0 || fx.X > 1):
			return nil, fmt.Errorf("%s: line %d: field FPOGX: %g is outside the screen (a fraction in [0, 1] expected)", name, line, fx.X)
		case !offScreen && (fx.Y < 0 || fx.Y > 1):
			return nil, fmt.Errorf("%s: line %d: field FPOGY: %g is outside the screen (a fraction in [0, 1] expected)", name, line, fx.Y)
		case len(out) > 0 && v[0]*1000+offset < out[len(out)-1].Time:
			return nil, fmt.Errorf("%s: line %d: field FPOGS: %s s is earlier than the previous row's (times out of order)", name, line, strings.TrimSpace(rec[idx[0]]))
		}
		out = append(out, fx)
	}
	return out, nil
}

// timeOfDayMS reads the time of day of a header TIME(<date> <hh:mm:ss.ffffff>) in
// milliseconds since midnight, computed as the original does with
// (strptime(t, "%H:%M:%S.%f)") − datetime(1900, 1, 1)).total_seconds() × 1000.
func timeOfDayMS(h string) (float64, error) {
	inner, ok := strings.CutPrefix(h, "TIME(")
	if !ok || !strings.HasSuffix(inner, ")") {
		return 0, errors.New("want TIME(<date> <hh:mm:ss.fff>)")
	}
	inner = strings.TrimSuffix(inner, ")")
	_, clock, ok := strings.Cut(inner, " ")
	if !ok {
		return 0, errors.New("want TIME(<date> <hh:mm:ss.fff>): no time of day after the date")
	}
	hms, frac, ok := strings.Cut(clock, ".")
	if !ok {
		return 0, errors.New("want a time of day hh:mm:ss.fff")
	}
	parts := strings.Split(hms, ":")
	if len(parts) != 3 {
		return 0, errors.New("want a time of day hh:mm:ss.fff")
	}
	var hmsv [3]int64
	limits := [3]int64{23, 59, 61}
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || len(p) == 0 || len(p) > 2 || n < 0 || n > limits[i] {
			return 0, fmt.Errorf("time of day %q: hours, minutes and seconds out of range", clock)
		}
		hmsv[i] = n
	}
	us, err := microseconds(frac)
	if err != nil {
		return 0, fmt.Errorf("time of day %q: %v", clock, err)
	}
	total := (hmsv[0]*3600+hmsv[1]*60+hmsv[2])*1_000_000 + us
	return float64(total) / 1e6 * 1000, nil
}

// microseconds reads a strptime %f field: 1 to 6 digits, padded on the right.
func microseconds(frac string) (int64, error) {
	if len(frac) == 0 || len(frac) > 6 {
		return 0, fmt.Errorf("fraction of a second %q: 1 to 6 digits expected", frac)
	}
	n, err := strconv.ParseInt(frac, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("fraction of a second %q: digits expected", frac)
	}
	for i := len(frac); i < 6; i++ {
		n *= 10
	}
	return n, nil
}
