package web

import (
	"fmt"
	"math"
	"net/http"
	"os"

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
	fi, err := os.Stat(path)
	if err != nil {
		return pyrSource{}, notFound("run %s: output of pass %q for sample %q cannot be read", sd.run.key, pass, sd.id)
	}
	shape, err := sd.run.run.DerivedShape(pass, sd.id)
	if err != nil {
		return pyrSource{}, &httpError{http.StatusUnprocessableEntity, fmt.Sprintf("run %s: %v", sd.run.key, err)}
	}
	k := len(shape)
	if err := store.CheckAxes(p.Axes, shape); err != nil || !matrixAxes(p.Axes) {
		return pyrSource{}, badRequest("derived/%s/%s.npy: pass %s declares axes %s for shape %v: an output ending in [query, key] (or two axes of one kind) expected for the matrix view", pass, sd.id, pass, store.AxesString(p.Axes), shape)
	}
	if shape[k-1] != shape[k-2] || shape[k-1] == 0 {
		return pyrSource{}, badRequest("derived/%s/%s.npy has shape %v: a [..., N, N] output expected for the matrix view", pass, sd.id, shape)
	}
	n := shape[k-1]
	if n > maxDerivedSide {
		return pyrSource{}, tooLarge("derived/%s/%s.npy: N = %d; at most %d is served as tiles", pass, sd.id, n, maxDerivedSide)
	}
	lead := 1
	for _, d := range shape[:k-2] {
		lead *= d
	}
	if idx >= lead {
		return pyrSource{}, notFound("derived/%s/%s.npy has %d matrices (shape %v); no index %d", pass, sd.id, lead, shape, idx)
	}
	load := func() (matrix, error) {
		data, err := sd.run.run.DerivedMatrix(pass, sd.id, idx)
		if err != nil {
			return nil, &httpError{http.StatusUnprocessableEntity, fmt.Sprintf("run %s: %v", sd.run.key, err)}
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
