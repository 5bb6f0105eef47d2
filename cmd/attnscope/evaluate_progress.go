package main

import (
	"fmt"
	"io"

	"github.com/attnscope/attnscope/internal/progress"
	"github.com/attnscope/attnscope/tasks"
	"github.com/attnscope/attnscope/train"
)

// evalProgress wraps an evaluation's per-sample callback (next may be nil) so that
// every evaluated sample of dataset1 and dataset2 counts on a progress tracker (a bar on
// a terminal, else log lines with elapsed time and ETA); the returned func ends it.
func evalProgress(w io.Writer, e *train.Experiment, next func(string, int, *tasks.Sample, []int, [][][]float32) error) (func(string, int, *tasks.Sample, []int, [][][]float32) error, func()) {
	total := 0
	for _, d := range []*train.DatasetCfg{e.Evaluation.Dataset1, e.Evaluation.Dataset2} {
		if d != nil {
			total += d.NumSamples
		}
	}
	tr := progress.New(w, "evaluate", "samples", total)
	return func(ds string, i int, s *tasks.Sample, preds []int, attn [][][]float32) error {
		tr.Finish(fmt.Sprintf("%s sample %d", ds, i), 1, "")
		if next != nil {
			return next(ds, i, s, preds, attn)
		}
		return nil
	}, tr.Close
}
