package report

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
	"github.com/attnscope/attnscope/viz"
)

// Reductions over the heads of a layer offered by Selection.Reduce (and plot --reduce).
var Reductions = []string{"mean", "sum", "max", "min"}

// Selection picks what one figure of a derived output shows when the output has more
// axes than a figure: an index on its layer (or layer-pair) axis and a head or a
// reduction over its head axis.
type Selection struct {
	// Layer is the index on a layer or layer-pair axis; < 0 selects the last.
	Layer int
	// Head is the index on a head axis; < 0 reduces the heads with Reduce.
	Head int
	// Reduce is one of Reductions ("" is mean).
	Reduce string
}

// DefaultSelection is the last layer and the mean over heads.
var DefaultSelection = Selection{Layer: -1, Head: -1}

// AxisContext is what a sample gives the ticks of a derived output's axes: its prompt
// tokens and text, and the attention's number of layers and heads.
type AxisContext struct {
	Tokens        []string
	Text          string
	Layers, Heads int
}

// SampleAxisContext reads the tick labels of sample id's axes from run.
func SampleAxisContext(run Run, id string) (AxisContext, error) {
	s, err := run.Sample(id)
	if err != nil {
		return AxisContext{}, err
	}
	c := AxisContext{Tokens: s.Tokens, Text: s.PromptText}
	if c.Text == "" {
		c.Text = s.Text
	}
	if c.Layers, err = numLayers(run, id); err != nil {
		return c, err
	}
	switch {
	case c.Layers == 0:
	case s.Attention != nil && s.Attention.Heads > 0: // recorded: no layer read
		c.Heads = s.Attention.Heads
	case s.QK != nil && s.QK.Heads > 0:
		c.Heads = s.QK.Heads
	default:
		a, err := run.AttentionLayer(id, 0)
		if err != nil {
			return c, err
		}
		c.Heads = a.Shape[0]
	}
	return c, nil
}

// View kinds of a DerivedView.
const (
	ViewHeatmap = "heatmap" // a matrix: rows YTicks, columns XTicks
	ViewBars    = "bars"    // one bar per XTicks entry
	ViewCurves  = "curves"  // one curve per leading index, x the fraction of keys
	ViewTable   = "table"   // records (rows) with named columns (XTicks)
)

// DerivedView is a derived output brought to what one figure shows, by the axes its
// derive function declared (pass.json): a heatmap of two axes, bars over one, curves
// over a trailing point axis or a table of records. Nothing is guessed from shapes.
type DerivedView struct {
	Kind           string
	Title          string
	XTitle, YTitle string
	XTicks, YTicks []string
	ValueLabel     string
	Matrix         viz.Matrix   // heatmap and table
	Values         []float64    // bars
	Series         []viz.Series // curves
	// PositionTicks: a token axis was pooled (longer than store.MaxQKLayerTokens),
	// its ticks name the blocks' positions ("120–131") and its title the pooling.
	PositionTicks bool
	// UsedLayer and UsedHead report whether the selection's layer and head (or
	// reduction) applied: an output without a layer axis ignores Selection.Layer.
	UsedLayer, UsedHead bool
}

// AxisTitle is the axis title a figure gives an axis name.
func AxisTitle(name string) string {
	switch name {
	case store.AxisLayer:
		return "layer"
	case store.AxisLayerPair:
		return "layer pair"
	case store.AxisHead:
		return "head"
	case store.AxisUnit:
		return "head (layer, head)"
	case store.AxisQuery:
		return "query token (attending)"
	case store.AxisKey:
		return "key token (attended to)"
	case store.AxisLine:
		return "source line"
	case store.AxisChar:
		return "character of the prompt"
	case store.AxisPoint:
		return "fraction of keys (sorted by weight)"
	case store.AxisRecord:
		return "record"
	case store.AxisLayerToken:
		return "token after layer"
	case store.AxisCategory:
		return "code category"
	case store.AxisToken:
		return "token (numbered)"
	case store.AxisBin:
		return "histogram bin"
	}
	return name
}

// HeadName names head h of layer l as the report does everywhere: "L0 H3".
func HeadName(l, h int) string { return fmt.Sprintf("L%d H%d", l, h) }

// AxisTicks returns the tick labels of an axis of n entries.
func AxisTicks(a store.Axis, n int, c AxisContext) []string {
	if len(a.Labels) == n {
		return a.Labels
	}
	out := make([]string, n)
	for i := range out {
		switch a.Name {
		case store.AxisLayer:
			out[i] = fmt.Sprintf("L%d", i)
		case store.AxisLayerPair:
			out[i] = fmt.Sprintf("L%d→L%d", i, i+1)
		case store.AxisHead:
			out[i] = fmt.Sprintf("H%d", i)
		case store.AxisUnit:
			if c.Heads > 0 && n == c.Layers*c.Heads {
				out[i] = HeadName(i/c.Heads, i%c.Heads)
			} else {
				out[i] = fmt.Sprint(i)
			}
		case store.AxisQuery, store.AxisKey:
			if len(c.Tokens) >= n {
				out[i] = c.Tokens[i]
			} else {
				out[i] = fmt.Sprint(i)
			}
		case store.AxisLine:
			out[i] = fmt.Sprintf("line %d", i+1)
		case store.AxisChar:
			if r := []rune(c.Text); len(r) >= n {
				out[i] = string(r[i])
			} else {
				out[i] = fmt.Sprint(i)
			}
		case store.AxisPoint:
			out[i] = fmt.Sprintf("%.2f", float64(i)/float64(n))
		case store.AxisLayerToken:
			if L := c.Layers + 1; c.Layers > 0 && n%L == 0 && len(c.Tokens) >= n/L {
				out[i] = fmt.Sprintf("L%d %s", i/(n/L), c.Tokens[i%(n/L)])
			} else {
				out[i] = fmt.Sprint(i)
			}
		default:
			out[i] = fmt.Sprint(i)
		}
	}
	return out
}

// NewDerivedView brings sample's output t of pass to one figure by the pass's
// declared axes, selecting with sel where the output has more axes than a figure.
func NewDerivedView(pass store.PassInfo, sample string, t *tensor.Tensor, c AxisContext, sel Selection) (*DerivedView, error) {
	axes := pass.Axes
	if len(axes) == 0 {
		return nil, fmt.Errorf("pass %s: pass.json records no axes (derived by an older attnscope): delete derived/%s and derive it again", pass.Name, pass.Name)
	}
	if err := store.CheckAxes(axes, t.Shape); err != nil {
		return nil, fmt.Errorf("pass %s, sample %s: %w", pass.Name, sample, err)
	}
	if t.Len() == 0 {
		return nil, fmt.Errorf("pass %s, sample %s: empty output (shape %v): the pass found nothing in this sample", pass.Name, sample, t.Shape)
	}
	v := &DerivedView{Title: fmt.Sprintf("%s: %s", sample, pass.Name), ValueLabel: pass.Name}
	if axes[len(axes)-1].Name == store.AxisPoint {
		return v.curves(axes, t, c)
	}
	var what []string
	axes, t = slices.Clone(axes), t.Clone()
	if n := len(axes); n >= 3 && len(axes[n-1].Labels) > 0 && axes[0].Name == store.AxisLayer && axes[1].Name == store.AxisHead && n == 3 {
		// [layer, head, named entries]: every head is one row.
		L, H := t.Shape[0], t.Shape[1]
		units := make([]string, L*H)
		for i := range units {
			units[i] = HeadName(i/H, i%H)
		}
		v.Kind, v.YTicks, v.YTitle = ViewHeatmap, units, AxisTitle(store.AxisUnit)
		v.XTicks, v.XTitle = axes[2].Labels, AxisTitle(axes[2].Name)
		m, err := viz.NewMatrix(L*H, t.Shape[2], t.Data)
		v.Matrix = m
		return v, err
	}
	for len(axes) > 2 {
		i := slices.IndexFunc(axes, func(a store.Axis) bool {
			return a.Name == store.AxisLayer || a.Name == store.AxisLayerPair || a.Name == store.AxisHead
		})
		if i < 0 {
			return nil, fmt.Errorf("pass %s: axes %s: no layer or head axis to select a figure from", pass.Name, store.AxesString(axes))
		}
		var err error
		if axes[i].Name == store.AxisHead {
			v.UsedHead = true
			if sel.Head >= 0 {
				if sel.Head >= t.Shape[i] {
					return nil, fmt.Errorf("head %d out of range: the output has heads 0..%d", sel.Head, t.Shape[i]-1)
				}
				t = selectAxis(t, i, sel.Head)
				what = append(what, fmt.Sprintf("head %d", sel.Head))
			} else {
				how := cmpOr(sel.Reduce, "mean")
				if t, err = reduceAxis(t, i, how); err != nil {
					return nil, err
				}
				what = append(what, how+" of heads")
			}
		} else {
			v.UsedLayer = true
			l := sel.Layer
			if l < 0 {
				l = t.Shape[i] - 1
			}
			if l >= t.Shape[i] {
				return nil, fmt.Errorf("layer %d out of range: the output has %s 0..%d", l, AxisTitle(axes[i].Name), t.Shape[i]-1)
			}
			t = selectAxis(t, i, l)
			what = append(what, AxisTicks(axes[i], l+1, c)[l])
		}
		axes = slices.Delete(axes, i, i+1)
	}
	if len(what) > 0 {
		v.Title += ", " + strings.Join(what, ", ")
	}
	switch len(axes) {
	case 1:
		v.Kind, v.XTitle, v.YTitle, v.Values = ViewBars, AxisTitle(axes[0].Name), pass.Name, t.Data
		v.XTicks = AxisTicks(axes[0], t.Shape[0], c)
		if p, ok := longTokenAxis(axes[0], t.Shape[0]); ok {
			v.Values, v.XTicks, v.XTitle, v.PositionTicks = p.meanPool(t.Data), p.ticks(), p.title(v.XTitle, "mean"), true
		}
		return v, nil
	case 2:
		v.Kind = ViewHeatmap
		if axes[0].Name == store.AxisRecord {
			v.Kind = ViewTable
		}
		v.YTitle, v.XTitle = AxisTitle(axes[0].Name), AxisTitle(axes[1].Name)
		v.YTicks, v.XTicks = AxisTicks(axes[0], t.Shape[0], c), AxisTicks(axes[1], t.Shape[1], c)
		for ax := range 2 { // a token axis above the limit: mean over blocks
			p, ok := longTokenAxis(axes[ax], t.Shape[ax])
			if !ok || v.Kind == ViewTable {
				continue
			}
			t, v.PositionTicks = meanPoolAxis(t, ax, p), true
			if ax == 0 {
				v.YTicks, v.YTitle = p.ticks(), p.title(v.YTitle, "mean")
			} else {
				v.XTicks, v.XTitle = p.ticks(), p.title(v.XTitle, "mean")
			}
		}
		m, err := viz.NewMatrix(t.Shape[0], t.Shape[1], t.Data)
		v.Matrix = m
		return v, err
	}
	return nil, fmt.Errorf("pass %s: a scalar output has nothing to draw", pass.Name)
}

// curves draws every leading index of an output whose last axis is a point axis as
// one curve.
func (v *DerivedView) curves(axes []store.Axis, t *tensor.Tensor, c AxisContext) (*DerivedView, error) {
	P := t.Shape[len(t.Shape)-1]
	lead := t.Len() / P
	v.Kind, v.XTitle, v.YTitle = ViewCurves, AxisTitle(store.AxisPoint), v.ValueLabel
	for u := range lead {
		name, rest := "", u
		for k := len(axes) - 2; k >= 0; k-- {
			ticks := AxisTicks(axes[k], t.Shape[k], c)
			name = strings.TrimSpace(ticks[rest%t.Shape[k]] + " " + name)
			rest /= t.Shape[k]
		}
		x := make([]float64, P)
		for i := range x {
			x[i] = float64(i) / float64(P)
		}
		v.Series = append(v.Series, viz.Series{Name: name, X: x, Y: t.Data[u*P : (u+1)*P]})
		v.YTicks = append(v.YTicks, name)
	}
	v.XTicks = AxisTicks(axes[len(axes)-1], P, c)
	return v, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// selectAxis returns the sub-tensor at index k of axis i.
func selectAxis(t *tensor.Tensor, i, k int) *tensor.Tensor {
	outer, inner := 1, 1
	for _, d := range t.Shape[:i] {
		outer *= d
	}
	for _, d := range t.Shape[i+1:] {
		inner *= d
	}
	n := t.Shape[i]
	out := &tensor.Tensor{Shape: slices.Delete(slices.Clone(t.Shape), i, i+1), Data: make([]float64, 0, outer*inner)}
	for o := range outer {
		out.Data = append(out.Data, t.Data[(o*n+k)*inner:(o*n+k+1)*inner]...)
	}
	return out
}

// reduceAxis reduces axis i with how: mean, sum, max or min.
func reduceAxis(t *tensor.Tensor, i int, how string) (*tensor.Tensor, error) {
	if !slices.Contains(Reductions, how) {
		return nil, fmt.Errorf("reduction %q: one of %s expected", how, strings.Join(Reductions, ", "))
	}
	n := t.Shape[i]
	out := selectAxis(t, i, 0)
	for k := 1; k < n; k++ {
		s := selectAxis(t, i, k)
		for j, x := range s.Data {
			switch how {
			case "mean", "sum":
				out.Data[j] += x
			case "max":
				out.Data[j] = math.Max(out.Data[j], x)
			case "min":
				out.Data[j] = math.Min(out.Data[j], x)
			}
		}
	}
	if how == "mean" {
		for j := range out.Data {
			out.Data[j] /= float64(n)
		}
	}
	return out, nil
}

// Figure draws the view (a table is drawn as a heatmap of its values with the column
// names as ticks); clip is the colour scale's clip percentile (0: none).
func (v *DerivedView) Figure(clip float64) (*viz.Figure, error) {
	switch v.Kind {
	case ViewBars:
		return viz.Bars(v.Values, v.XTicks, viz.BarsOptions{Title: v.Title, XLabel: v.XTitle, YLabel: v.YTitle, PositionTicks: v.PositionTicks})
	case ViewCurves:
		return viz.Curves(v.Series, viz.CurvesOptions{Title: v.Title, XLabel: v.XTitle, YLabel: v.YTitle})
	}
	return viz.Heatmap(v.Matrix, viz.HeatmapOptions{Title: v.Title, XLabel: v.XTitle, YLabel: v.YTitle,
		RowLabels: v.YTicks, ColLabels: v.XTicks, ClipPercentile: clip, ColorbarLabel: v.ValueLabel, Colormap: viz.Viridis,
		PositionTicks: v.PositionTicks})
}

// UnitLabels names the units of a Jensen–Shannon matrix with n rows: "L0 H3" when
// n = layers·heads, "L<l>" when n = layers, else the positions.
func UnitLabels(n, layers, heads int) []string {
	out := make([]string, n)
	for i := range out {
		switch {
		case layers > 0 && heads > 0 && n == layers*heads:
			out[i] = HeadName(i/heads, i%heads)
		case n == layers:
			out[i] = fmt.Sprintf("L%d", i)
		default:
			out[i] = fmt.Sprint(i)
		}
	}
	return out
}

// SlicesColumns is the number of columns of a grid of slices (followup-attention's
// visualize_slices_of_3D_tensor uses at most 5).
const SlicesColumns = 5

// SlicesFigure draws every slice of a derive pass's 3-D output [slice, N, M] on a grid
// of at most SlicesColumns columns, or a 4-D output [layer, head, N, M] as layers ×
// heads, each slice scaled to its own maximum or clip percentile (followup-attention
// clips at 99.9 per slice).
func SlicesFigure(pass store.PassInfo, t *tensor.Tensor, id string, clip float64) (*viz.Figure, error) {
	shape, vals := t.Shape, t.Data
	if err := store.CheckAxes(pass.Axes, shape); err != nil || (len(shape) != 3 && len(shape) != 4) {
		return nil, fmt.Errorf("pass %s, sample %s: output with axes %s, 3 axes [slice, N, M] or 4 [layer, head, N, M] expected", pass.Name, id, store.AxesString(pass.Axes))
	}
	if len(shape) == 4 && (pass.Axes[0].Name != store.AxisLayer || pass.Axes[1].Name != store.AxisHead) {
		return nil, fmt.Errorf("pass %s, sample %s: output with axes %s, [layer, head, N, M] expected", pass.Name, id, store.AxesString(pass.Axes))
	}
	title := fmt.Sprintf("%s: %s, every slice", id, pass.Name)
	if len(shape) == 4 {
		L, H, R, C := shape[0], shape[1], shape[2], shape[3]
		units := make([][]viz.Matrix, L)
		for l := range L {
			for h := range H {
				off := (l*H + h) * R * C
				m, _ := viz.NewMatrix(R, C, vals[off:off+R*C])
				units[l] = append(units[l], viz.Downsample(m, gridThumb))
			}
		}
		return viz.Grid(units, viz.GridOptions{Title: title, ClipPercentile: clip})
	}
	S, R, C := shape[0], shape[1], shape[2]
	cols := min(S, SlicesColumns)
	var units [][]viz.Matrix
	var rowNames []string
	for k := range S {
		if k%cols == 0 {
			units = append(units, nil)
			rowNames = append(rowNames, fmt.Sprintf("%d–%d", k, min(k+cols, S)-1))
		}
		m, _ := viz.NewMatrix(R, C, vals[k*R*C:(k+1)*R*C])
		units[len(units)-1] = append(units[len(units)-1], viz.Downsample(m, gridThumb))
	}
	colNames := make([]string, cols)
	for c := range colNames {
		colNames[c] = fmt.Sprintf("+%d", c)
	}
	return viz.Grid(units, viz.GridOptions{Title: title, RowNames: rowNames, ColNames: colNames, ClipPercentile: clip, Unit: "slice"})
}
