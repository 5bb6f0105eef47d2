package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/report"
	"github.com/attnscope/attnscope/stats"
	"github.com/attnscope/attnscope/viz"
)

// runPlotFiles draws the figures made from files rather than a run: alignment from
// --attention with token files, and alignment-entropy from one or more --attention.
func runPlotFiles(cmd *cobra.Command, kind string, f plotFlags) error {
	if err := checkPlotFlags(cmd, kind); err != nil {
		return err
	}
	if f.out == "" {
		return usagef(cmd, "--out is required")
	}
	if _, err := viz.FormatOf(f.out); err != nil {
		return usagef(cmd, "%v", err)
	}
	if len(f.attention) == 0 {
		return usagef(cmd, "%s needs --attention FILE.npy", kind)
	}
	if f.dpi < 10 || f.dpi > 1200 {
		return usagef(cmd, "--dpi %d: between 10 and 1200 expected", f.dpi)
	}
	if err := prepareOutDir(f.out); err != nil {
		return err
	}
	draw := alignmentFigure
	if kind == "alignment-entropy" {
		draw = alignmentEntropyFigure
	}
	fig, err := draw(cmd, f)
	if err != nil {
		return err
	}
	fig.DPI = f.dpi
	if err := fig.Save(f.out); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", f.out)
	return nil
}

// readAlignment reads a 2-D .npy attention matrix (decoding steps × source positions).
func readAlignment(path string) (viz.Matrix, error) {
	arr, err := checkpoint.ReadNpyFile(path)
	if err != nil {
		return viz.Matrix{}, err
	}
	if len(arr.Shape) != 2 || arr.Shape[0] == 0 || arr.Shape[1] == 0 {
		return viz.Matrix{}, fmt.Errorf("read %s: shape %v: a non-empty 2-D array (decoding steps × source positions) expected", path, arr.Shape)
	}
	m, err := viz.NewMatrix(arr.Shape[0], arr.Shape[1], arr.Float64s())
	if err != nil {
		return viz.Matrix{}, fmt.Errorf("read %s: %w", path, err)
	}
	return m, nil
}

// readTokens reads a token file: a JSON list of strings when its first non-blank
// character is '[', otherwise one token per line (a final newline ends the last
// line; "\r\n" line ends are accepted).
func readTokens(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '[' {
		var toks []string
		if err := json.Unmarshal(t, &toks); err != nil {
			return nil, fmt.Errorf("read %s: a JSON list of token strings expected: %w", path, err)
		}
		return toks, nil
	}
	s := strings.TrimSuffix(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	if s == "" {
		return nil, fmt.Errorf("read %s: no tokens (one per line or a JSON list expected)", path)
	}
	return strings.Split(s, "\n"), nil
}

// alignmentFigure draws --attention (one matrix) with --source-tokens and
// --target-tokens.
func alignmentFigure(cmd *cobra.Command, f plotFlags) (*viz.Figure, error) {
	if len(f.attention) != 1 {
		return nil, usagef(cmd, "alignment draws one --attention file, got %d", len(f.attention))
	}
	if f.srcTokens == "" || f.trgTokens == "" {
		return nil, usagef(cmd, "alignment with --attention needs --source-tokens FILE and --target-tokens FILE")
	}
	m, err := readAlignment(f.attention[0])
	if err != nil {
		return nil, err
	}
	src, err := readTokens(f.srcTokens)
	if err != nil {
		return nil, err
	}
	trg, err := readTokens(f.trgTokens)
	if err != nil {
		return nil, err
	}
	if !f.crop {
		if len(src) != m.Cols {
			return nil, fmt.Errorf("%s: %d source tokens for the %d columns of %s (%d×%d); pass --crop to draw the first min(tokens, columns, 30) as plot_attention does", f.srcTokens, len(src), m.Cols, f.attention[0], m.Rows, m.Cols)
		}
		if len(trg) != m.Rows {
			return nil, fmt.Errorf("%s: %d target tokens for the %d rows of %s (%d×%d); pass --crop to draw the first min(tokens, rows, 30) as plot_attention does", f.trgTokens, len(trg), m.Rows, f.attention[0], m.Rows, m.Cols)
		}
	}
	fig, err := viz.Alignment(m, src, trg, "Attention alignment")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.attention[0], err)
	}
	return fig, nil
}

// alignmentEntropyFigure draws the row entropy and maximum weight histograms of the
// --attention matrices and prints their means and standard deviations.
func alignmentEntropyFigure(cmd *cobra.Command, f plotFlags) (*viz.Figure, error) {
	ms := make([]viz.Matrix, len(f.attention))
	for i, p := range f.attention {
		m, err := readAlignment(p)
		if err != nil {
			return nil, err
		}
		ms[i] = m
	}
	e, mx, err := report.AlignmentRowStats(ms)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", strings.Join(f.attention, ", "), err)
	}
	fig, err := report.AlignmentEntropyFigure(ms, fmt.Sprintf("Attention over %d decoding steps of %d alignments", len(e), len(ms)))
	if err != nil {
		return nil, err
	}
	// Population standard deviations (numpy's np.std), as the notebook prints them.
	fmt.Fprintf(cmd.OutOrStdout(), "decoding steps: %d\nentropy: mean %.3f, std %.3f\nmax attention: mean %.3f, std %.3f\n",
		len(e), stats.Mean(e), math.Sqrt(stats.PopVariance(e)), stats.Mean(mx), math.Sqrt(stats.PopVariance(mx)))
	return fig, nil
}
