// Package viz draws attnscope's static figures (token × token heatmaps, all-heads
// grids, code heatmaps, Jensen–Shannon heatmaps, crispiness curves, histograms,
// attention received per position, AttentionSpan reference maps and the
// transformer-analysis dashboard) and writes them as PNG, SVG or PDF, chosen by the
// output file's extension.
//
// Every figure is built from plain inputs (matrices, labels, vectors): viz knows
// nothing about runs on disk. Heatmaps are rasterised directly into an image at the
// output resolution (one pass over the matrix, max-pooled when there are more cells
// than pixels) and embedded in a gonum/plot figure that draws axes, token labels and
// text, so a 12 × 12 grid of 512-token heads renders in well under a second.
//
// Text uses the embedded DejaVu Sans font, which has the glyphs that make whitespace
// visible in token labels (␣ space, ⏎ newline, ⇥ tab).
package viz
