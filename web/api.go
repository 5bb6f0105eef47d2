package web

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"unsafe"

	"github.com/attnscope/attnscope/checkpoint"
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
	Key     string         `json:"key"`
	Dir     string         `json:"dir"`
	Kind    string         `json:"kind"`
	Model   string         `json:"model,omitempty"`
	DType   string         `json:"dtype"`
	Samples []string       `json:"samples"`
	Derived []derivedPass  `json:"derived"`
	Metrics bool           `json:"metrics"`
	Meta    store.Meta     `json:"meta"`
	Extra   map[string]any `json:"extra,omitempty"`
}

func (s *Server) apiRuns(w http.ResponseWriter) error {
	out := []runJSON{}
	for _, e := range s.runs {
		ids, err := e.run.Samples()
		if err != nil {
			return err
		}
		rj := runJSON{Key: e.key, Dir: filepath.Base(e.real), Kind: e.run.Meta.Kind, DType: e.run.Meta.DType,
			Samples: ids, Derived: derivedPasses(e), Meta: e.run.Meta}
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
	_, err := sd.run.inside(store.SamplesDir, sd.id, store.QKVFile)
	out.HasQKV = err == nil
	for _, p := range derivedPasses(sd.run) {
		if path, err := sd.run.inside(store.DerivedDir, p.Name, sd.id+".npy"); err == nil {
			p.Shape, _ = npyShape(path)
			out.Derived = append(out.Derived, p)
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

// derivedPass is one pass of RUN/derived with the function pass.json names.
type derivedPass struct {
	Name     string `json:"name"`
	Function string `json:"function,omitempty"`
	Shape    []int  `json:"shape,omitempty"` // of the sample's output (in a sample's listing)
}

// derivedPasses lists RUN/derived/<pass> folders inside the run. It reads the run
// folder as it is now; branch h3-runsurface adds store.Run.DerivedPasses, which
// should replace this function.
func derivedPasses(e *runEntry) []derivedPass {
	dir, err := e.inside(store.DerivedDir)
	if err != nil {
		return []derivedPass{}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return []derivedPass{}
	}
	out := []derivedPass{}
	for _, d := range ents {
		if !d.IsDir() || store.CheckSampleID(d.Name()) != nil {
			continue
		}
		p := derivedPass{Name: d.Name()}
		if _, err := e.inside(store.DerivedDir, d.Name(), store.PassFile); err == nil {
			if ps, err := e.run.ReadPassSettings(d.Name()); err == nil {
				p.Function = ps.Function
			}
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

type derivedJSON struct {
	Pass     string    `json:"pass"`
	Function string    `json:"function,omitempty"`
	Sample   string    `json:"sample"`
	Shape    []int     `json:"shape"`
	Data     []float64 `json:"data"`
}

func (s *Server) apiDerived(w http.ResponseWriter, e *runEntry, pass, id string) error {
	if err := store.CheckSampleID(pass); err != nil {
		return badRequest("pass %q: not a pass name", pass)
	}
	if err := store.CheckSampleID(id); err != nil {
		return badRequest("%v", err)
	}
	path, err := e.inside(store.DerivedDir, pass, id+".npy")
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return notFound("run %s: output of pass %q for sample %q cannot be read", e.key, pass, id)
	}
	defer f.Close()
	h, err := checkpoint.ReadNpyHeader(f)
	if err != nil {
		return &httpError{http.StatusUnprocessableEntity, "derived/" + pass + "/" + id + ".npy: " + err.Error()}
	}
	if h.NumElements() > maxDerivedCells {
		return tooLarge("derived/%s/%s.npy has %d values; at most %d are sent", pass, id, h.NumElements(), maxDerivedCells)
	}
	a, err := checkpoint.ReadNpyData(f, h)
	if err != nil {
		return &httpError{http.StatusUnprocessableEntity, "derived/" + pass + "/" + id + ".npy: " + err.Error()}
	}
	out := derivedJSON{Pass: pass, Sample: id, Shape: a.Shape, Data: a.Float64s()}
	if out.Shape == nil {
		out.Shape = []int{}
	}
	for i, v := range out.Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			out.Data[i] = 0 // JSON has no NaN; the page marks none
		}
	}
	for _, p := range derivedPasses(e) {
		if p.Name == pass {
			out.Function = p.Function
		}
	}
	return writeJSON(w, out)
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
