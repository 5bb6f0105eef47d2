package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/attnscope/attnscope/analysis"
	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/viz"
)

// GenerationAlignment returns the generated-tokens × prompt-tokens block of a decoder
// generation's attention (one layer, one head or the head mean), the source × target
// view of seeds.md §5.4 for a decoder: generated token p (PromptLen ≤ p < N) was
// predicted by query p−1, so row p−PromptLen is query p−1's attention over the prompt
// columns 0..PromptLen−1. It returns the matrix and the prompt and generated tokens.
func GenerationAlignment(ctx context.Context, run Run, id string, layer, head int) (m viz.Matrix, src, trg []string, err error) {
	s, a, full, err := sampleMatrix(ctx, run, id, layer, head)
	if err != nil {
		return viz.Matrix{}, nil, nil, err
	}
	P, N := s.PromptLen, min(a.Shape[1], a.Shape[2])
	if P <= 0 || P >= N {
		return viz.Matrix{}, nil, nil, fmt.Errorf("sample %s is not a generation (prompt length %d of %d tokens): no generated tokens to align", id, P, N)
	}
	if len(s.Tokens) < N {
		return viz.Matrix{}, nil, nil, fmt.Errorf("sample %s: %d tokens for %d attention positions", id, len(s.Tokens), N)
	}
	T := N - P
	m = viz.Matrix{Rows: T, Cols: P, Data: make([]float64, T*P)}
	for t := range T {
		q := P - 1 + t
		copy(m.Data[t*P:(t+1)*P], full.Data[q*full.Cols:q*full.Cols+P])
	}
	return m, s.Tokens[:P], s.Tokens[P:N], nil
}

// AlignmentFigure draws GenerationAlignment with viz.Alignment (at most 30 × 30).
func AlignmentFigure(ctx context.Context, run Run, id string, layer, head int) (*viz.Figure, error) {
	m, src, trg, err := GenerationAlignment(ctx, run, id, layer, head)
	if err != nil {
		return nil, err
	}
	return viz.Alignment(m, src, trg, fmt.Sprintf("%s: generated × prompt, layer %d, %s", id, layer, headName(head)))
}

// AlignmentRowStats returns, for every row (decoding step) of every alignment matrix,
// the entropy H = −Σ_j ã_j ln ã_j and maximum max_j ã_j of ã = a + 1e−10 (the
// Text_to_Python notebook's aggregate analysis, seeds.md §5.4; analysis.EntropyShifted).
// Weights must be finite and non-negative.
func AlignmentRowStats(ms []viz.Matrix) (entropy, maxWeight []float64, err error) {
	for k, m := range ms {
		for i := range m.Rows {
			row := m.Data[i*m.Cols : (i+1)*m.Cols]
			for j, v := range row {
				if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
					return nil, nil, fmt.Errorf("alignment %d: weight %v at (%d, %d): finite non-negative weights expected", k, v, i, j)
				}
			}
			h, _ := analysis.RowEntropy(row, analysis.EntropyShifted)
			entropy = append(entropy, h)
			maxWeight = append(maxWeight, slices.Max(row)+1e-10)
		}
	}
	if len(entropy) == 0 {
		return nil, nil, fmt.Errorf("alignment statistics: no decoding steps in %d matrices", len(ms))
	}
	return entropy, maxWeight, nil
}

// AlignmentEntropyFigure draws attention_entropy_analysis.png of seeds.md §5.4: the
// 40-bin histograms of AlignmentRowStats with dashed mean lines.
func AlignmentEntropyFigure(ms []viz.Matrix, title string) (*viz.Figure, error) {
	e, m, err := AlignmentRowStats(ms)
	if err != nil {
		return nil, err
	}
	return viz.Histograms(entropyPanels(e, m), title)
}

// entropyPanels are the two histograms of the §5.4 aggregate analysis.
func entropyPanels(entropy, maxWeight []float64) []viz.HistPanel {
	return []viz.HistPanel{
		{Values: entropy, Title: "Attention entropy (lower = more focused)", XLabel: "Entropy (nats)", Color: viz.SteelBlue},
		{Values: maxWeight, Title: "Max attention weight (higher = more confident)", XLabel: "Max weight", Color: viz.Coral},
	}
}

// ReadAlignmentFile reads a 2-D .npy attention matrix (decoding steps × source
// positions).
func ReadAlignmentFile(path string) (viz.Matrix, error) {
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

// ReadTokensFile reads a token file: a JSON list of strings when its first non-blank
// character is '[', otherwise one token per line (a final newline ends the last
// line; "\r\n" line ends are accepted).
func ReadTokensFile(path string) ([]string, error) {
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
