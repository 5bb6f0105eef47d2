// Package qklength measures capture time, peak memory and disk size against
// sequence length for full storage (every attention matrix materialised and
// written) and --store qk (blockwise attention; queries, keys and log-sum-exps
// written), on a Llama-shaped model with random weights (4 layers, width 512,
// 8 query heads, 2 KV heads by default). Each (storage, length) cell runs in a
// child process, so its peak resident memory (VmHWM) is that capture's alone.
// Cells whose memory or disk estimate (capture.EstimateMemory) exceeds the
// limits are skipped and reported with the estimate. `attnscope bench
// qk-length` is its command line.
package qklength

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/attnscope/attnscope/capture"
	"github.com/attnscope/attnscope/internal/procstat"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/viz"
)

// Shape is the benchmarked model's shape.
type Shape struct {
	Layers, Width, Heads, KVHeads int
}

// DefaultShape is the 4-layer Llama-shaped GQA model of width 512.
var DefaultShape = Shape{Layers: 4, Width: 512, Heads: 8, KVHeads: 2}

// Options configures Run.
type Options struct {
	Lengths []int
	Stores  []string // "full", "qk"
	Shape   Shape
	// Tokenizer is a folder with tokenizer.json and tokenizer_config.json of a
	// 4,096-entry vocabulary (tiny-llama's of ../shared/reference).
	Tokenizer string
	// Work is the scratch folder for the model and the runs (removed after each cell).
	Work string
	// MaxMemory and MaxDisk skip cells estimated above them (bytes).
	MaxMemory, MaxDisk int64
	// Child runs one cell in a fresh process and returns its Cell (see RunCell).
	Child func(ctx context.Context, modelDir, store string, n int, out string) (Cell, error)
	// SVG, when set, receives the memory and time curves (two files: SVG with
	// -memory and -time before the extension).
	SVG string
}

// Cell is one capture.
type Cell struct {
	Store   string  `json:"store"`
	Tokens  int     `json:"tokens"`
	WallS   float64 `json:"wall_s"`
	CPUS    float64 `json:"cpu_s"`
	PeakRSS int64   `json:"peak_rss"` // bytes, the whole child process
	Disk    int64   `json:"disk"`     // bytes of the sample's files
	// EstMemory and EstDisk are capture.EstimateMemory's figures.
	EstMemory int64  `json:"est_memory"`
	EstDisk   int64  `json:"est_disk"`
	Skipped   string `json:"skipped,omitempty"`
}

// WriteModel writes the benchmarked model into dir: config.json with a
// context of ctxLen, random weights (model.WriteRandomWeights) and the
// tokenizer files of tok.
func WriteModel(dir, tok string, s Shape, ctxLen int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(tok, f))
		if err != nil {
			return fmt.Errorf("benchmark tokenizer: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return err
		}
	}
	cfg := map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama", "hidden_act": "silu",
		"hidden_size": s.Width, "intermediate_size": 2 * s.Width, "num_attention_heads": s.Heads, "num_key_value_heads": s.KVHeads,
		"head_dim": s.Width / s.Heads, "num_hidden_layers": s.Layers, "max_position_embeddings": ctxLen, "rms_norm_eps": 1e-5,
		"rope_theta": 10000.0, "vocab_size": 4096, "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": false,
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		return err
	}
	return model.WriteRandomWeights(dir, 1)
}

// Text is pseudo-code of at least n tokens for any subword tokenizer.
func Text(n int) string {
	return strings.Repeat("def add(a, b):\n    return a + b\n", n/8+1)
}

// RunCell captures n tokens of Text with the model in modelDir (its context is
// set to n, so truncation cuts the text to exactly n tokens) into out, in this
// process, and measures it. store is "full" or "qk".
func RunCell(ctx context.Context, modelDir, store string, n int, out string) (Cell, error) {
	c := Cell{Store: store, Tokens: n}
	opts := capture.Options{ModelDir: modelDir, QK: store == "qk", Truncate: "right", Command: []string{"bench", "qk-length"}, Info: func(string) {}}
	start, cpu0 := time.Now(), procstat.CPUTime()
	if _, err := capture.Run(ctx, out, []capture.Input{{ID: "long", Text: Text(n)}}, opts); err != nil {
		return c, err
	}
	c.WallS, c.CPUS = time.Since(start).Seconds(), (procstat.CPUTime() - cpu0).Seconds()
	c.PeakRSS = procstat.PeakRSS()
	err := filepath.WalkDir(filepath.Join(out, "samples"), func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			c.Disk += info.Size()
		}
		return err
	})
	return c, err
}

// Run measures every (store, length) cell, each in a child process, and
// writes a Markdown table to w as the rows complete. A store stops at its
// first length whose estimate exceeds the limits (longer ones are reported
// as skipped).
func Run(ctx context.Context, w io.Writer, o Options) ([]Cell, error) {
	fmt.Fprintf(w, "| storage | tokens | wall s | CPU s | peak RSS MiB | disk MiB | estimate: memory MiB, disk MiB |\n|---|---:|---:|---:|---:|---:|---|\n")
	var cells []Cell
	for _, st := range o.Stores {
		for _, n := range o.Lengths {
			c, err := runOne(ctx, o, st, n)
			if err != nil {
				return cells, fmt.Errorf("%s storage at %d tokens: %w", st, n, err)
			}
			cells = append(cells, c)
			if c.Skipped != "" {
				fmt.Fprintf(w, "| %s | %d | — | — | — | — | %.0f, %.0f: skipped, %s |\n", c.Store, c.Tokens, mib(c.EstMemory), mib(c.EstDisk), c.Skipped)
				continue
			}
			fmt.Fprintf(w, "| %s | %d | %.1f | %.1f | %.0f | %.1f | %.0f, %.1f |\n", c.Store, c.Tokens, c.WallS, c.CPUS, mib(c.PeakRSS), mib(c.Disk), mib(c.EstMemory), mib(c.EstDisk))
		}
	}
	if o.SVG != "" {
		if err := drawCurves(cells, o.SVG); err != nil {
			return cells, err
		}
	}
	return cells, nil
}

func runOne(ctx context.Context, o Options, st string, n int) (Cell, error) {
	dir := filepath.Join(o.Work, fmt.Sprintf("model-%d", n))
	defer os.RemoveAll(dir)
	if err := WriteModel(dir, o.Tokenizer, o.Shape, n); err != nil {
		return Cell{}, err
	}
	cfg, err := model.ReadConfig(dir)
	if err != nil {
		return Cell{}, err
	}
	a, err := model.Architecture(cfg)
	if err != nil {
		return Cell{}, err
	}
	est := capture.EstimateMemory(cfg, a, n, 1, capture.Options{QK: st == "qk"})
	c := Cell{Store: st, Tokens: n, EstMemory: est.Total(), EstDisk: est.Disk}
	switch {
	case o.MaxMemory > 0 && c.EstMemory > o.MaxMemory:
		c.Skipped = fmt.Sprintf("the estimate is above the %.0f MiB memory limit", mib(o.MaxMemory))
		return c, nil
	case o.MaxDisk > 0 && c.EstDisk > o.MaxDisk:
		c.Skipped = fmt.Sprintf("the estimate is above the %.0f MiB disk limit", mib(o.MaxDisk))
		return c, nil
	}
	out := filepath.Join(o.Work, fmt.Sprintf("run-%s-%d", st, n))
	defer os.RemoveAll(out)
	got, err := o.Child(ctx, dir, st, n, out)
	if err != nil {
		return c, err
	}
	got.EstMemory, got.EstDisk = c.EstMemory, c.EstDisk
	return got, nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// drawCurves writes peak memory and wall time against tokens, one curve per
// storage, with the project's plotting (viz.Curves).
func drawCurves(cells []Cell, path string) error {
	ext := filepath.Ext(path)
	base := strings.TrimSuffix(path, ext)
	for _, m := range []struct {
		suffix, ylabel string
		value          func(Cell) float64
	}{
		{"-memory", "peak resident memory (MiB)", func(c Cell) float64 { return mib(c.PeakRSS) }},
		{"-time", "capture wall time (s)", func(c Cell) float64 { return c.WallS }},
	} {
		var series []viz.Series
		for _, st := range []string{"full", "qk"} {
			s := viz.Series{Name: st}
			for _, c := range cells {
				if c.Store == st && c.Skipped == "" {
					s.X, s.Y = append(s.X, float64(c.Tokens)), append(s.Y, m.value(c))
				}
			}
			if len(s.X) > 0 {
				series = append(series, s)
			}
		}
		fig, err := viz.Curves(series, viz.CurvesOptions{Title: "capture vs sequence length (4-layer Llama, width 512, GQA 8/2)", XLabel: "tokens", YLabel: m.ylabel, LegendLeft: true})
		if err != nil {
			return err
		}
		if err := fig.Save(base + m.suffix + ext); err != nil {
			return err
		}
	}
	return nil
}
