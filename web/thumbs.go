package web

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
)

// thumbs are the model view's thumbnails of one layer: the top pyramid level
// (side thumbMax or less) of every head, max- and mean-pooled. They are pooled
// straight from the attention, one pass per head and heads in parallel, without
// the histogram and lower levels a pyramid needs, so that the model view of a
// sample nobody has opened yet costs one read of its attention.
type thumbs struct {
	n, d      int
	max, mean [][]float32 // per head, d × d row-major
}

func (t *thumbs) bytes() int { return 64 + 8*len(t.max)*t.d*t.d }

// buildThumbs pools every head (all of side N) into the top level of its pyramid.
func buildThumbs(heads []matrix) *thumbs {
	n := heads[0].Size()
	g := newGeometry(n)
	z := g.Levels - 1
	t := &thumbs{n: n, d: g.Dim(z), max: make([][]float32, len(heads)), mean: make([][]float32, len(heads))}
	var next atomic.Int64
	done := make(chan struct{})
	workers := min(defaultWorkers(), len(heads))
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for h := int(next.Add(1) - 1); h < len(heads); h = int(next.Add(1) - 1) {
				p := poolMatrix(heads[h], 1<<z, false, 1)
				t.max[h], t.mean[h] = p.max, p.mean
			}
		}()
	}
	for range workers {
		<-done
	}
	return t
}

// Thumbnail cache file layout (little-endian): magic, then int64 N, heads,
// source size, source modification time (ns), then for each head its max cells
// and its mean cells as float32.
const thumbsMagic = "ATTNTHM1"

func (t *thumbs) encode(w io.Writer, srcSize, srcMod int64) error {
	b := append([]byte(nil), thumbsMagic...)
	for _, v := range []int64{int64(t.n), int64(len(t.max)), srcSize, srcMod} {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	for h := range t.max {
		if err := writeFloats32(w, t.max[h]); err != nil {
			return err
		}
		if err := writeFloats32(w, t.mean[h]); err != nil {
			return err
		}
	}
	return nil
}

// decodeThumbs reads a thumbnail cache file; it fails (and the thumbnails are
// pooled again) when the file does not match the source's N, heads, size and
// modification time.
func decodeThumbs(b []byte, n, heads int, srcSize, srcMod int64) (*thumbs, error) {
	g := newGeometry(n)
	d := g.Dim(g.Levels - 1)
	if want := len(thumbsMagic) + 32 + 8*heads*d*d; len(b) != want || string(b[:len(thumbsMagic)]) != thumbsMagic {
		return nil, fmt.Errorf("thumbnail cache: %d bytes, %d expected", len(b), want)
	}
	b = b[len(thumbsMagic):]
	for i, want := range []int64{int64(n), int64(heads), srcSize, srcMod} {
		if int64(binary.LittleEndian.Uint64(b[8*i:])) != want {
			return nil, fmt.Errorf("thumbnail cache: made from another version of the source")
		}
	}
	b = b[32:]
	t := &thumbs{n: n, d: d}
	for range heads {
		t.max = append(t.max, readFloats(&b, d*d))
		t.mean = append(t.mean, readFloats(&b, d*d))
	}
	return t, nil
}

// thumbsFor returns the thumbnails of layer l of sample sd: from memory, from
// the cache file RUN/cache/tiles/<sample>/thumbs-l<l>.thm, or pooled.
func (s *Server) thumbsFor(sd *sampleData, l int) (*thumbs, error) {
	heads := make([]matrix, sd.heads)
	for h := range heads {
		m, err := sd.head(l, h)
		if err != nil {
			return nil, err
		}
		heads[h] = m
	}
	name := fmt.Sprintf("thumbs-l%d.thm", l)
	v, err := s.cached(sd.run.key+"/"+sd.id+"/"+name, func() (cacheItem, error) {
		if real, err := sd.run.inside(filepath.FromSlash(CacheDir), sd.id, name); err == nil {
			if b, err := os.ReadFile(real); err == nil {
				if t, err := decodeThumbs(b, sd.n, sd.heads, sd.attSize, sd.attMod); err == nil {
					return t, nil
				}
			}
		}
		t := buildThumbs(heads)
		dir := filepath.Join(sd.run.real, filepath.FromSlash(CacheDir), sd.id)
		s.writeCacheLater(sd.run, dir, filepath.Join(dir, name), func(w io.Writer) error { return t.encode(w, sd.attSize, sd.attMod) })
		return t, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*thumbs), nil
}
