package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"time"

	"golang.org/x/term"
)

var (
	trainStepsLine = regexp.MustCompile(`^training .*, (\d+) steps of \d+ samples`)
	trainStepLine  = regexp.MustCompile(`^step (\d+): .* \((\d+)s\)$`)
)

// trainLog returns the writer train logs to: w itself on a terminal (train draws its
// own bar there), else a line filter that adds an ETA, from the mean time per step so
// far, to each "step K: ... (Es)" line once the total number of steps is known.
func trainLog(w io.Writer) io.Writer {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return w
	}
	return &etaWriter{w: w}
}

type etaWriter struct {
	w     io.Writer
	buf   []byte
	steps int
}

func (e *etaWriter) Write(p []byte) (int, error) {
	e.buf = append(e.buf, p...)
	for {
		i := bytes.IndexByte(e.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(e.buf[:i])
		e.buf = e.buf[i+1:]
		if m := trainStepsLine.FindStringSubmatch(line); m != nil {
			e.steps, _ = strconv.Atoi(m[1])
		} else if m := trainStepLine.FindStringSubmatch(line); m != nil && e.steps > 0 {
			step, _ := strconv.Atoi(m[1])
			secs, _ := strconv.Atoi(m[2])
			if step > 0 && step <= e.steps {
				eta := time.Duration(float64(secs) / float64(step) * float64(e.steps-step) * float64(time.Second))
				line = line[:len(line)-1] + fmt.Sprintf(", step %d/%d, ETA %s)", step, e.steps, eta.Round(time.Second))
			}
		}
		if _, err := fmt.Fprintln(e.w, line); err != nil {
			return len(p), err
		}
	}
}
