package web

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"os"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/store"
)

// maxDerivedSide bounds the side of a derived matrix served as tiles (it is read
// into memory: 8,192² float32 values are 256 MB).
const maxDerivedSide = 8192

// matrixAxes reports whether the last two of axes are the rows and columns of a
// square matrix the matrix view can draw: [query, key], or two axes of one name
// (attention flow's [layer_token, layer_token]) without fixed labels.
func matrixAxes(axes []store.Axis) bool {
	k := len(axes)
	if k < 2 {
		return false
	}
	a, b := axes[k-2], axes[k-1]
	return (a.Name == store.AxisQuery && b.Name == store.AxisKey) || (a.Name == b.Name && len(a.Labels) == 0 && len(b.Labels) == 0)
}

// derivedSource is slice idx (over the leading axes) of a derived output of shape
// [..., N, N], read from its .npy file without reading the other slices. NaN and
// infinite values are drawn as 0.
func (s *Server) derivedSource(sd *sampleData, pass string, idx int) (pyrSource, error) {
	p, err := findPass(sd.run, pass)
	if err != nil {
		return pyrSource{}, err
	}
	path, err := sd.run.inside(store.DerivedDir, pass, sd.id+".npy")
	if err != nil {
		return pyrSource{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return pyrSource{}, notFound("run %s: output of pass %q for sample %q cannot be read", sd.run.key, pass, sd.id)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return pyrSource{}, err
	}
	h, err := checkpoint.ReadNpyHeader(f)
	if err != nil {
		return pyrSource{}, &httpError{http.StatusUnprocessableEntity, "derived/" + pass + "/" + sd.id + ".npy: " + err.Error()}
	}
	k := len(h.Shape)
	if err := store.CheckAxes(p.Axes, h.Shape); err != nil || !matrixAxes(p.Axes) {
		return pyrSource{}, badRequest("derived/%s/%s.npy: pass %s declares axes %s for shape %v: an output ending in [query, key] (or two axes of one kind) expected for the matrix view", pass, sd.id, pass, store.AxesString(p.Axes), h.Shape)
	}
	if h.Shape[k-1] != h.Shape[k-2] || h.Shape[k-1] == 0 || h.FortranOrder {
		return pyrSource{}, badRequest("derived/%s/%s.npy has shape %v: a C-order [..., N, N] output expected for the matrix view", pass, sd.id, h.Shape)
	}
	n := h.Shape[k-1]
	if n > maxDerivedSide {
		return pyrSource{}, tooLarge("derived/%s/%s.npy: N = %d; at most %d is served as tiles", pass, sd.id, n, maxDerivedSide)
	}
	lead := 1
	for _, d := range h.Shape[:k-2] {
		lead *= d
	}
	if idx >= lead {
		return pyrSource{}, notFound("derived/%s/%s.npy has %d matrices (shape %v); no index %d", pass, sd.id, lead, h.Shape, idx)
	}
	load := func() (matrix, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		hh := *h
		hh.Shape = []int{n, n}
		if _, err := f.Seek(h.DataOffset+int64(idx)*int64(n*n)*int64(h.DType.Size()), io.SeekStart); err != nil {
			return nil, err
		}
		a, err := checkpoint.ReadNpyData(f, &hh)
		if err != nil {
			return nil, &httpError{http.StatusUnprocessableEntity, "derived/" + pass + "/" + sd.id + ".npy: " + err.Error()}
		}
		data := a.Float32s()
		if a.DType == checkpoint.NpyFloat16 || a.DType == checkpoint.NpyFloat32 {
			data = append([]float32(nil), data...)
		}
		for i, v := range data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				data[i] = 0
			}
		}
		return denseMatrix{n, data}, nil
	}
	return pyrSource{name: fmt.Sprintf("derived-%s-i%d.pyr", pass, idx), size: fi.Size(), mod: fi.ModTime().UnixNano(), load: load, keep: true}, nil
}

func (s *Server) apiDerivedPyramid(w http.ResponseWriter, r *http.Request, sd *sampleData, pass string, idx int) error {
	src, err := s.derivedSource(sd, pass, idx)
	if err != nil {
		return err
	}
	release, err := s.acquire(r)
	if err != nil {
		return err
	}
	defer release()
	p, err := s.pyramidFor(sd, src)
	if err != nil {
		return err
	}
	return writeJSON(w, pyramidJSON{p.geo, Percentiles, p.pct, p.min})
}

func (s *Server) apiDerivedTile(w http.ResponseWriter, r *http.Request, sd *sampleData, pass string, idx int, pool Pool, z, ty, tx int) error {
	src, err := s.derivedSource(sd, pass, idx)
	if err != nil {
		return err
	}
	release, err := s.acquire(r)
	if err != nil {
		return err
	}
	defer release()
	p, err := s.pyramidFor(sd, src)
	if err != nil {
		return err
	}
	g := p.geo
	if z >= g.Levels {
		return notFound("tile: level %d does not exist (levels 0..%d)", z, g.Levels-1)
	}
	if ty >= g.Tiles(z) || tx >= g.Tiles(z) {
		return notFound("tile: (%d, %d) outside level %d (%d × %d tiles)", ty, tx, z, g.Tiles(z), g.Tiles(z))
	}
	rows, cols, data := p.tile(p.m, pool, z, ty, tx)
	return writeFloats(w, r, []int{rows, cols}, data)
}
