package store

import (
	"fmt"
	"io"
	"os"

	"github.com/attnscope/attnscope/checkpoint"
)

// MappedAttention is a sample's attention file memory-mapped for ranged reads
// without copying or converting: a reader that pools tiles of long samples (the
// web view) touches only the rows it needs, in their stored dtype. Of a run in
// object storage (OpenRead) it reads a layer with one ranged request when asked.
type MappedAttention struct {
	st                *checkpoint.Safetensors
	Layers, Heads, N  int
	DType             checkpoint.DType // F32, F16 or BF16
	Size, ModUnixNano int64            // of the file: a cache made from it records them
}

// MapAttention maps sample id's attention file, checking that every layer is
// [heads, N, N] in float32, float16 or bfloat16 like layer 0. Close it when done.
func (r *Run) MapAttention(id string) (*MappedAttention, error) {
	st, err := r.openTensors(id, AttentionFile)
	if err != nil {
		return nil, err
	}
	a := &MappedAttention{st: st}
	fail := func(err error) (*MappedAttention, error) {
		st.Close()
		return nil, err
	}
	if fi, err := os.Stat(st.Path()); err == nil {
		a.Size, a.ModUnixNano = fi.Size(), fi.ModTime().UnixNano()
	} else if size, mod, ok := r.RemoteFile(SamplesDir + "/" + id + "/" + AttentionFile); ok {
		a.Size, a.ModUnixNano = size, mod.UnixNano()
	} else {
		return fail(err)
	}
	if a.Layers, err = attentionLayers(st); err != nil {
		return fail(err)
	}
	for l := range a.Layers {
		t, _ := st.Info(AttentionName(l))
		if len(t.Shape) != 3 || t.Shape[1] != t.Shape[2] || t.Shape[1] == 0 ||
			(t.DType != checkpoint.F32 && t.DType != checkpoint.F16 && t.DType != checkpoint.BF16) ||
			(l > 0 && (t.Shape[0] != a.Heads || t.Shape[1] != a.N || t.DType != a.DType)) {
			return fail(fmt.Errorf("read %s: tensor %q has dtype %s and shape %v, F32/F16/BF16 [heads, query, key] like layer 0 expected", st.Path(), t.Name, t.DType, t.Shape))
		}
		a.Heads, a.N, a.DType = t.Shape[0], t.Shape[1], t.DType
	}
	return a, nil
}

// Layer returns layer l as stored: Heads × N × N little-endian values of DType,
// row-major, mapped (not copied; read, for a run in object storage); valid until
// Close.
func (a *MappedAttention) Layer(l int) ([]byte, error) {
	if l < 0 || l >= a.Layers {
		return nil, fmt.Errorf("read %s: no layer %d (the sample has %d layers)", a.st.Path(), l, a.Layers)
	}
	_, b, err := a.st.Raw(AttentionName(l))
	return b, err
}

// Close unmaps the file.
func (a *MappedAttention) Close() error { return a.st.Close() }

// DerivedMatrix reads matrix idx (counted over the leading axes, row-major) of
// pass's output for sample, an output of shape [..., N, N], without reading the
// other matrices; values as float32, NaN and infinities kept.
func (r *Run) DerivedMatrix(pass, sample string, idx int) ([]float32, error) {
	path := r.localFile(derivedRel(pass, sample))
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h, err := checkpoint.ReadNpyHeader(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	k := len(h.Shape)
	if k < 2 || h.Shape[k-1] != h.Shape[k-2] || h.FortranOrder {
		return nil, fmt.Errorf("read %s: shape %v, a C-order [..., N, N] array expected", path, h.Shape)
	}
	n, lead := h.Shape[k-1], 1
	for _, d := range h.Shape[:k-2] {
		lead *= d
	}
	if idx < 0 || idx >= lead {
		return nil, fmt.Errorf("read %s: %d matrices (shape %v); no index %d", path, lead, h.Shape, idx)
	}
	one := *h
	one.Shape = []int{n, n}
	if _, err := f.Seek(h.DataOffset+int64(idx)*int64(n*n)*int64(h.DType.Size()), io.SeekStart); err != nil {
		return nil, err
	}
	a, err := checkpoint.ReadNpyData(f, &one)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	data := a.Float32s()
	if a.DType == checkpoint.NpyFloat16 || a.DType == checkpoint.NpyFloat32 {
		data = append([]float32(nil), data...) // not shared with the decoded array
	}
	return data, nil
}
