package web

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/attnscope/attnscope/report"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/viz"
)

// Limits of the matrix answers.
const (
	maxLayerTokens  = 512     // /layer: all heads of a layer, for the head view
	maxDerivedCells = 4 << 20 // /derived: values of one output
	maxMetricRows   = 500000
	maxNeuronKeys   = 256 // key vectors sent by /neuron
)

type runJSON struct {
	Key     string        `json:"key"`
	Dir     string        `json:"dir"`
	Kind    string        `json:"kind"`
	Model   string        `json:"model,omitempty"`
	DType   string        `json:"dtype"`
	Samples []string      `json:"samples"`
	Derived []derivedPass `json:"derived"`
	// RunOutputs are the run-level outputs (of the whole run, no sample), with shapes.
	RunOutputs      []derivedPass  `json:"run_outputs"`
	RunOutputsError string         `json:"run_outputs_error,omitempty"`
	Metrics         bool           `json:"metrics"`
	Meta            store.Meta     `json:"meta"`
	Extra           map[string]any `json:"extra,omitempty"`
}

func (s *Server) apiRuns(w http.ResponseWriter) error {
	out := []runJSON{}
	for _, e := range s.runs {
		ids, err := e.run.Samples()
		if err != nil {
			return err
		}
		passes, err := derivedPasses(e)
		if err != nil {
			return err
		}
		outs, oerr := runOutputs(e)
		rj := runJSON{Key: e.key, Dir: filepath.Base(e.real), Kind: e.run.Meta.Kind, DType: e.run.Meta.DType,
			Samples: ids, Derived: passes, RunOutputs: outs, Meta: e.run.Meta}
		if oerr != nil {
			// One unreadable run output does not hide the run: the page says why.
			rj.RunOutputs, rj.RunOutputsError = []derivedPass{}, oerr.Error()
		}
		rj.Meta.Model = nil
		if m := e.run.Meta.Model; m != nil {
			rj.Model = m.ModelType + " (" + filepath.Base(m.Dir) + ")"
		}
		_, err = e.inside(store.MetricsCSV)
		rj.Metrics = err == nil
		out = append(out, rj)
	}
	return writeJSON(w, out)
}

type sampleJSON struct {
	*store.Sample
	Labels []string `json:"labels"`
	Layers int      `json:"layers"`
	Heads  int      `json:"heads"`
	N      int      `json:"n"`
	HasQKV bool     `json:"has_qkv"`
	// Derived lists the passes with an output for this sample.
	Derived []derivedPass `json:"derived"`
}

func (s *Server) apiSample(w http.ResponseWriter, sd *sampleData) error {
	info := *sd.info
	info.Extra = nil
	out := sampleJSON{Sample: &info, Layers: sd.layers, Heads: sd.heads, N: sd.n, Derived: []derivedPass{}}
	out.Labels = tokenLabels(sd.info, sd.n)
	_, _, err := sd.run.sampleFile(sd.id, store.QKVFile)
	out.HasQKV = err == nil
	passes, err := derivedPasses(sd.run)
	if err != nil {
		return err
	}
	for _, p := range passes {
		if _, err := sd.run.inside(store.DerivedDir, p.Name, sd.id+".npy"); err == nil {
			if p.Shape, err = sd.run.run.DerivedShape(p.Name, sd.id); err == nil {
				out.Derived = append(out.Derived, p)
			}
		}
	}
	return writeJSON(w, out)
}

// tokenLabels are the n tokens' display labels: their text when offsets are known,
// else their vocabulary spelling (viz.TokenLabel shows spaces and newlines).
func tokenLabels(s *store.Sample, n int) []string {
	runes := []rune(s.Text)
	out := make([]string, n)
	for i := range out {
		switch {
		case i < len(s.Offsets) && s.Offsets[i][0] >= 0 && s.Offsets[i][0] < s.Offsets[i][1] && s.Offsets[i][1] <= len(runes):
			out[i] = viz.TokenLabel(string(runes[s.Offsets[i][0]:s.Offsets[i][1]]))
		case i < len(s.Tokens):
			out[i] = viz.TokenLabel(s.Tokens[i])
		default:
			out[i] = "#" + strconv.Itoa(i)
		}
	}
	return out
}

// writeFloats answers a binary float32 little-endian array with its shape in the
// X-Shape header (comma-separated).
func writeFloats(w http.ResponseWriter, r *http.Request, shape []int, data []float32) error {
	var b []byte
	if len(data) > 0 && binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		b = unsafe.Slice((*byte)(unsafe.Pointer(&data[0])), 4*len(data)) // little-endian already
	} else {
		b = make([]byte, 4*len(data))
		for i, v := range data {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
	}
	sh := ""
	for i, d := range shape {
		if i > 0 {
			sh += ","
		}
		sh += strconv.Itoa(d)
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("X-Shape", sh)
	h.Set("Cache-Control", "private, max-age=60")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodHead {
		return nil
	}
	_, err := w.Write(b)
	_ = err // the client went away
	return nil
}

func (s *Server) apiLayer(w http.ResponseWriter, r *http.Request, sd *sampleData, l int) error {
	if _, err := sd.head(l, 0); err != nil {
		return err
	}
	if sd.n > maxLayerTokens {
		return tooLarge("sample %s has %d tokens; the head view draws at most %d (use the matrix view)", sd.id, sd.n, maxLayerTokens)
	}
	release, err := s.acquire(r)
	if err != nil {
		return err
	}
	defer release()
	out := make([]float32, sd.heads*sd.n*sd.n)
	for h := range sd.heads {
		m, _ := sd.head(l, h)
		for q := range sd.n {
			m.Row(q, 0, sd.n, out[(h*sd.n+q)*sd.n:])
		}
	}
	return writeFloats(w, r, []int{sd.heads, sd.n, sd.n}, out)
}

type pyramidJSON struct {
	Geometry
	Percentiles []float64 `json:"percentiles"`
	Values      []float32 `json:"values"`
	Min         float32   `json:"min"`
}

func (s *Server) apiPyramid(w http.ResponseWriter, sd *sampleData, l, h int) error {
	p, _, err := s.pyramid(sd, l, h)
	if err != nil {
		return err
	}
	return writeJSON(w, pyramidJSON{p.geo, Percentiles, p.pct, p.min})
}

func (s *Server) apiTile(w http.ResponseWriter, r *http.Request, sd *sampleData, l, h int, pool Pool, z, ty, tx int) error {
	if _, err := sd.head(l, h); err != nil {
		return err
	}
	g := newGeometry(sd.n)
	if z >= g.Levels {
		return notFound("tile: level %d does not exist (levels 0..%d)", z, g.Levels-1)
	}
	if ty >= g.Tiles(z) || tx >= g.Tiles(z) {
		return notFound("tile: (%d, %d) outside level %d (%d × %d tiles)", ty, tx, z, g.Tiles(z), g.Tiles(z))
	}
	release, err := s.acquire(r)
	if err != nil {
		return err
	}
	defer release()
	p, m, err := s.pyramid(sd, l, h)
	if err != nil {
		return err
	}
	rows, cols, data := p.tile(m, pool, z, ty, tx)
	return writeFloats(w, r, []int{rows, cols}, data)
}

func (s *Server) apiThumbs(w http.ResponseWriter, r *http.Request, sd *sampleData, l int, pool Pool) error {
	if _, err := sd.head(l, 0); err != nil {
		return err
	}
	release, err := s.acquire(r)
	if err != nil {
		return err
	}
	defer release()
	t, err := s.thumbsFor(sd, l)
	if err != nil {
		return err
	}
	src, d := t.max, t.d
	if pool == Mean {
		src = t.mean
	}
	out := make([]float32, 0, sd.heads*d*d)
	for _, v := range src {
		out = append(out, v...)
	}
	return writeFloats(w, r, []int{sd.heads, d, d}, out)
}

// derivedPass is one pass of RUN/derived with the function and axes its
// pass.json declares.
type derivedPass struct {
	Name     string       `json:"name"`
	Function string       `json:"function,omitempty"`
	Axes     []store.Axis `json:"axes"`            // empty: pass.json declares none (an older derive)
	Shape    []int        `json:"shape,omitempty"` // of the sample's output (in a sample's listing)
}

// derivedPasses lists the run's passes (store.Run.DerivedPasses) whose folder
// and pass.json lie inside the run folder.
func derivedPasses(e *runEntry) ([]derivedPass, error) {
	passes, err := e.run.DerivedPasses()
	if err != nil {
		return nil, &httpError{http.StatusUnprocessableEntity, fmt.Sprintf("run %s: %v", e.key, err)}
	}
	out := []derivedPass{}
	for _, p := range passes {
		if store.CheckSampleID(p.Name) != nil {
			continue
		}
		if _, err := e.inside(store.DerivedDir, p.Name); err != nil {
			continue
		}
		if _, err := e.inside(store.DerivedDir, p.Name, store.PassFile); err != nil {
			if he := (*httpError)(nil); errors.As(err, &he) && he.code == http.StatusForbidden {
				continue
			}
		}
		axes := p.Axes
		if axes == nil {
			axes = []store.Axis{}
		}
		out = append(out, derivedPass{Name: p.Name, Function: p.Function, Axes: axes})
	}
	return out, nil
}

// findPass returns the pass named name of run e, or a 404 naming the passes.
func findPass(e *runEntry, name string) (derivedPass, error) {
	if err := store.CheckSampleID(name); err != nil {
		return derivedPass{}, badRequest("pass %q: not a pass name", name)
	}
	passes, err := derivedPasses(e)
	if err != nil {
		return derivedPass{}, err
	}
	var names []string
	for _, p := range passes {
		if p.Name == name {
			return p, nil
		}
		names = append(names, p.Name)
	}
	return derivedPass{}, notFound("run %s has no pass %q (passes: %s)", e.key, name, strings.Join(names, ", "))
}

// derivedJSON is one derived output brought to one figure by the axes its pass
// declares (report.NewDerivedView, as the static report draws it).
type derivedJSON struct {
	Pass       string       `json:"pass"`
	Function   string       `json:"function,omitempty"`
	Sample     string       `json:"sample"`
	Shape      []int        `json:"shape"`
	Axes       []store.Axis `json:"axes"`
	Kind       string       `json:"kind"` // heatmap, bars, curves or table
	Title      string       `json:"title"`
	XTitle     string       `json:"x_title"`
	YTitle     string       `json:"y_title"`
	XTicks     []string     `json:"x_ticks"`
	YTicks     []string     `json:"y_ticks"`
	ValueLabel string       `json:"value_label"`
	// Rows × Cols values row-major (heatmap, table), or one per x tick (bars).
	Rows   int          `json:"rows"`
	Cols   int          `json:"cols"`
	Values []float64    `json:"values"`
	Series []seriesJSON `json:"series,omitempty"` // curves
	// NonFinite counts NaN and infinite values, sent as 0 (JSON has neither).
	NonFinite int  `json:"non_finite"`
	UsedLayer bool `json:"used_layer"`
	UsedHead  bool `json:"used_head"`
}

type seriesJSON struct {
	Name string    `json:"name"`
	Y    []float64 `json:"y"`
}

// derivedSelection reads the figure's selection from the query: layer (index on
// a layer axis; default the last), head (index on a head axis) or reduce (over
// the heads: mean, sum, max or min; default mean).
func derivedSelection(q url.Values) (report.Selection, error) {
	sel := report.DefaultSelection
	for _, k := range []string{"layer", "head"} {
		v := q.Get(k)
		if v == "" {
			continue
		}
		i, err := ints([]string{v}, k)
		if err != nil {
			return sel, err
		}
		if k == "layer" {
			sel.Layer = i[0]
		} else {
			sel.Head = i[0]
		}
	}
	sel.Reduce = q.Get("reduce")
	if sel.Reduce != "" && !slices.Contains(report.Reductions, sel.Reduce) {
		return sel, badRequest("reduce %q: one of %s expected", sel.Reduce, strings.Join(report.Reductions, ", "))
	}
	return sel, nil
}

func (s *Server) apiDerived(w http.ResponseWriter, r *http.Request, e *runEntry, pass, id string) error {
	p, err := findPass(e, pass)
	if err != nil {
		return err
	}
	sel, err := derivedSelection(r.URL.Query())
	if err != nil {
		return err
	}
	sd, err := s.sample(e, id)
	if err != nil {
		return err
	}
	if _, err := e.inside(store.DerivedDir, pass, id+".npy"); err != nil {
		return err
	}
	rel := store.DerivedDir + "/" + pass + "/" + id + ".npy"
	shape, err := e.run.DerivedShape(pass, id)
	if err != nil {
		return &httpError{http.StatusUnprocessableEntity, fmt.Sprintf("run %s: %s: %v", e.key, rel, err)}
	}
	cells := 1
	for _, d := range shape {
		cells *= d
	}
	if cells > maxDerivedCells {
		return tooLarge("%s has %d values; at most %d are sent", rel, cells, maxDerivedCells)
	}
	t, err := e.run.Derived(pass, id)
	if err != nil {
		return &httpError{http.StatusUnprocessableEntity, fmt.Sprintf("run %s: %s: %v", e.key, rel, err)}
	}
	ctx := report.AxisContext{Tokens: tokenLabels(sd.info, max(sd.n, len(sd.info.Tokens))), Text: sd.info.PromptText,
		Layers: sd.layers, Heads: sd.heads}
	if ctx.Text == "" {
		ctx.Text = sd.info.Text
	}
	v, err := report.NewDerivedView(store.PassInfo{Name: p.Name, PassSettings: store.PassSettings{Function: p.Function, Axes: p.Axes}}, id, t, ctx, sel)
	if err != nil {
		return &httpError{http.StatusUnprocessableEntity, fmt.Sprintf("run %s: %s: %v", e.key, rel, err)}
	}
	return writeJSON(w, newDerivedJSON(pass, p.Function, id, t.Shape, p.Axes, v))
}

// newDerivedJSON is the answer for one output drawn as the view v.
func newDerivedJSON(pass, function, id string, shape []int, axes []store.Axis, v *report.DerivedView) derivedJSON {
	out := derivedJSON{Pass: pass, Function: function, Sample: id, Shape: shape, Axes: axes, Kind: v.Kind,
		Title: v.Title, XTitle: v.XTitle, YTitle: v.YTitle, XTicks: v.XTicks, YTicks: v.YTicks, ValueLabel: v.ValueLabel,
		UsedLayer: v.UsedLayer, UsedHead: v.UsedHead}
	if out.Shape == nil {
		out.Shape = []int{}
	}
	finite := func(x []float64) []float64 {
		for i, v := range x {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				x[i] = 0
				out.NonFinite++
			}
		}
		return x
	}
	switch v.Kind {
	case report.ViewBars:
		out.Rows, out.Cols, out.Values = 1, len(v.Values), finite(v.Values)
	case report.ViewCurves:
		for _, c := range v.Series {
			out.Series = append(out.Series, seriesJSON{c.Name, finite(c.Y)})
		}
	default:
		out.Rows, out.Cols, out.Values = v.Matrix.Rows, v.Matrix.Cols, finite(v.Matrix.Data)
	}
	return out
}

func (s *Server) apiMetrics(w http.ResponseWriter, e *runEntry) error {
	path, err := e.inside(store.MetricsCSV)
	if err != nil {
		return notFound("run %s has no metrics table (%s): run attnscope derive", e.key, store.MetricsCSV)
	}
	rows, err := store.ReadMetricsCSV(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return notFound("run %s has no metrics table", e.key)
		}
		return &httpError{http.StatusUnprocessableEntity, err.Error()}
	}
	if len(rows) > maxMetricRows {
		return tooLarge("metrics table of run %s has %d rows; at most %d are sent", e.key, len(rows), maxMetricRows)
	}
	type row struct {
		Sample string   `json:"sample"`
		Pass   string   `json:"pass"`
		Layer  int64    `json:"layer"`
		Head   int64    `json:"head"`
		Metric string   `json:"metric"`
		Value  *float64 `json:"value"`
	}
	out := make([]row, len(rows))
	for i, m := range rows {
		out[i] = row{m.Sample, m.Pass, m.Layer, m.Head, m.Metric, nil}
		if !math.IsNaN(m.Value) && !math.IsInf(m.Value, 0) {
			v := m.Value
			out[i].Value = &v
		}
	}
	return writeJSON(w, out)
}
