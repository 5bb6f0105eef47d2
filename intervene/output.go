package intervene

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/tasks"
)

// Samples draws n samples from an AttentionSpan generator.
func Samples(name string, params map[string]any, tok tasks.Tokenizer, n int) ([]*tasks.Sample, error) {
	g, err := tasks.New(name, params, tok)
	if err != nil {
		return nil, err
	}
	out := make([]*tasks.Sample, 0, n)
	for range n {
		s, err := g.Next()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Result is what a sweep writes: the experiment, the clean metrics and the
// per-head results, best gain first.
type Result struct {
	Experiment string       `json:"experiment"`
	Setting    *Setting     `json:"setting,omitempty"`
	Samples    int          `json:"samples"`
	Clean      Metrics      `json:"clean"`
	Heads      []HeadResult `json:"heads"`
}

// Write writes the result as JSON to path.json and as a table to path.csv.
func (r *Result) Write(path string) error {
	if err := atomicfile.WriteWith(path+".json", func(w io.Writer) error {
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		return e.Encode(r)
	}); err != nil {
		return err
	}
	return atomicfile.WriteWith(path+".csv", r.WriteCSV)
}

// WriteCSV writes the table: rank, layer, head, cross-entropy, token accuracy and gains.
func (r *Result) WriteCSV(w io.Writer) error {
	c := csv.NewWriter(w)
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 8, 64) }
	_ = c.Write([]string{"rank", "layer", "head", "cross_entropy", "token_accuracy", "ce_gain", "acc_gain"})
	_ = c.Write([]string{"clean", "", "", f(r.Clean.CrossEntropy), f(r.Clean.TokenAccuracy), "0", "0"})
	for i, h := range r.Heads {
		_ = c.Write([]string{strconv.Itoa(i + 1), strconv.Itoa(h.Layer), strconv.Itoa(h.Head.Head), f(h.CrossEntropy), f(h.TokenAccuracy), f(h.CEGain), f(h.AccGain)})
	}
	c.Flush()
	return c.Error()
}

// WriteText prints the table for a terminal.
func (r *Result) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s on %d samples (%d scored tokens): clean cross-entropy %.4f, token accuracy %.4f\n",
		r.Experiment, r.Samples, r.Clean.Tokens, r.Clean.CrossEntropy, r.Clean.TokenAccuracy)
	fmt.Fprintf(w, "%4s %5s %4s %13s %14s %9s %9s\n", "rank", "layer", "head", "cross-entropy", "token accuracy", "CE gain", "acc gain")
	for i, h := range r.Heads {
		fmt.Fprintf(w, "%4d %5d %4d %13.4f %14.4f %+9.4f %+9.4f\n", i+1, h.Layer, h.Head.Head, h.CrossEntropy, h.TokenAccuracy, h.CEGain, h.AccGain)
	}
}
