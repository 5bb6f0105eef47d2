package store

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/tensor"
)

// Span is a half-open range [From, To) of token positions.
type Span struct{ From, To int }

// Len is the number of positions, To − From.
func (s Span) Len() int { return s.To - s.From }

// String writes the span as it is given on a command line, "From:To".
func (s Span) String() string { return fmt.Sprintf("%d:%d", s.From, s.To) }

// ParseSpan reads "A:B", the token positions A ≤ i < B (0 ≤ A < B).
func ParseSpan(text string) (Span, error) {
	a, b, ok := strings.Cut(text, ":")
	from, errA := strconv.Atoi(strings.TrimSpace(a))
	to, errB := strconv.Atoi(strings.TrimSpace(b))
	switch {
	case !ok || errA != nil || errB != nil:
		return Span{}, fmt.Errorf("%q: A:B expected, the token positions A ≤ i < B such as 30000:30200", text)
	case from < 0:
		return Span{}, fmt.Errorf("%q: positions start at 0", text)
	case from >= to:
		return Span{}, fmt.Errorf("%q: the start %d is not below the end %d (A:B is half-open: A < B expected)", text, from, to)
	}
	return Span{from, to}, nil
}

// Window is the part Rows × Cols (queries × keys) of an attention matrix.
type Window struct{ Rows, Cols Span }

// AttentionWindows reads windows of one sample's attention, every head of a layer
// at a time: for a sample captured with --store qk recomputed from its queries, keys
// and log-sum-exps (QKReader: only the window's rows and keys are read, the N × N
// matrix is never materialised), otherwise read from attention.safetensors (only the
// window's rows).
type AttentionWindows struct {
	qk *QKReader
	st *checkpoint.Safetensors
	// layers, heads, queries and keys are the attention's shape.
	layers, heads, queries, keys int
}

// OpenWindows opens sample id's attention for reading windows.
func (r *Run) OpenWindows(id string) (*AttentionWindows, error) {
	s, err := r.Sample(id)
	if err != nil {
		return nil, err
	}
	if s.QK != nil {
		q, err := r.OpenQK(id)
		if err != nil {
			return nil, err
		}
		i := q.Info()
		return &AttentionWindows{qk: q, layers: i.Layers, heads: i.Heads, queries: i.Tokens, keys: i.Tokens}, nil
	}
	st, err := r.openTensors(id, AttentionFile)
	if err != nil {
		return nil, err
	}
	w := &AttentionWindows{st: st}
	if w.layers, err = attentionLayers(st); err != nil {
		st.Close()
		return nil, err
	}
	if w.layers == 0 {
		st.Close()
		return nil, fmt.Errorf("read %s: no blocks.<l>.attn.pattern tensors", st.Path())
	}
	for l := range w.layers {
		t, _ := st.Info(AttentionName(l))
		if len(t.Shape) != 3 || (l > 0 && fmt.Sprint(t.Shape) != fmt.Sprint([]int{w.heads, w.queries, w.keys})) {
			st.Close()
			return nil, fmt.Errorf("read %s: tensor %q has shape %v, [heads, query, key] as every layer expected", st.Path(), AttentionName(l), t.Shape)
		}
		w.heads, w.queries, w.keys = t.Shape[0], t.Shape[1], t.Shape[2]
	}
	return w, nil
}

// Shape is the attention's layers, heads, query and key positions.
func (w *AttentionWindows) Shape() (layers, heads, queries, keys int) {
	return w.layers, w.heads, w.queries, w.keys
}

// Close releases the file.
func (w *AttentionWindows) Close() error {
	if w.qk != nil {
		return w.qk.Close()
	}
	return w.st.Close()
}

// WindowInto writes window win of every head of layer l into dst, whose shape must
// be [heads, rows, cols] of the window (a buffer that can be reused: every value is
// overwritten). A window outside the matrix is an error.
func (w *AttentionWindows) WindowInto(dst *tensor.Tensor, l int, win Window) error {
	if w.qk != nil {
		return w.qk.WindowInto(dst, l, win)
	}
	switch {
	case l < 0 || l >= w.layers:
		return fmt.Errorf("window: layer %d is outside the sample's %d layers", l, w.layers)
	case win.Rows.From < 0 || win.Rows.To > w.queries || win.Rows.Len() <= 0 ||
		win.Cols.From < 0 || win.Cols.To > w.keys || win.Cols.Len() <= 0:
		return fmt.Errorf("window: rows %v × columns %v is not a non-empty window inside the %d×%d attention matrix", win.Rows, win.Cols, w.queries, w.keys)
	}
	R, C := win.Rows.Len(), win.Cols.Len()
	if err := checkWindowBuffer(dst, w.heads, R, C); err != nil {
		return err
	}
	name, K := AttentionName(l), w.keys
	// One read per head spans the window's rows whole unless that reads more than
	// twice the window's weights; then one read per row.
	whole := (R-1)*K+C <= 2*R*C
	for h := range w.heads {
		out := dst.Data[h*R*C : (h+1)*R*C]
		first := (h*w.queries+win.Rows.From)*K + win.Cols.From
		if whole {
			v, err := w.st.Float32Range(name, first, (R-1)*K+C)
			if err != nil {
				return err
			}
			for i := range R {
				for j, x := range v[i*K : i*K+C] {
					out[i*C+j] = float64(x)
				}
			}
			continue
		}
		for i := range R {
			v, err := w.st.Float32Range(name, first+i*K, C)
			if err != nil {
				return err
			}
			for j, x := range v {
				out[i*C+j] = float64(x)
			}
		}
	}
	return nil
}

func checkWindowBuffer(dst *tensor.Tensor, heads, rows, cols int) error {
	if want := []int{heads, rows, cols}; fmt.Sprint(dst.Shape) != fmt.Sprint(want) || len(dst.Data) != heads*rows*cols {
		return fmt.Errorf("window: buffer of shape %v, want %v", dst.Shape, want)
	}
	return nil
}
