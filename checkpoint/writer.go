package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"

	"github.com/attnscope/attnscope/internal/atomicfile"
)

// SafetensorsWriter streams tensors into a safetensors file one at a time. The
// header is computed up front from the declared tensors, so only one tensor's
// bytes are held in memory at once. The file appears under its final name only on
// Commit (temporary file + rename); Abort, or a failed Write, leaves nothing.
type SafetensorsWriter struct {
	f       *atomicfile.File
	tensors []TensorInfo
	next    int
	buf     []byte
	err     error
}

// CreateSafetensors starts writing a safetensors file at path holding tensors in
// the given order (Name, DType F32, F16 or BF16, Shape) plus optional metadata
// (stored as __metadata__). Write must then be called once per tensor, in the
// same order, followed by Commit.
func CreateSafetensors(path string, tensors []TensorInfo, metadata map[string]string) (*SafetensorsWriter, error) {
	header := map[string]any{}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	seen := map[string]bool{}
	infos := make([]TensorInfo, len(tensors))
	var off int64
	for i, t := range tensors {
		if t.Name == "" || t.Name == "__metadata__" || seen[t.Name] {
			return nil, fmt.Errorf("write %s: tensor name %q is empty, reserved or repeated", path, t.Name)
		}
		seen[t.Name] = true
		switch t.DType {
		case F32, F16, BF16:
		default:
			return nil, fmt.Errorf("write %s: tensor %q: dtype %q is not writable (expected F32, F16 or BF16)", path, t.Name, t.DType)
		}
		for _, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("write %s: tensor %q: negative dimension in shape %v", path, t.Name, t.Shape)
			}
		}
		size := int64(t.NumElements()) * int64(t.DType.Size())
		infos[i] = TensorInfo{Name: t.Name, DType: t.DType, Shape: append([]int(nil), t.Shape...), Begin: off, End: off + size}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[t.Name] = map[string]any{"dtype": string(t.DType), "shape": shape, "data_offsets": []int64{off, off + size}}
		off += size
	}
	hdr, err := marshalSorted(header)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	// Pad the header with spaces so the data section starts 8-byte aligned.
	for len(hdr)%8 != 0 {
		hdr = append(hdr, ' ')
	}
	f, err := atomicfile.Create(path)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hdr)))
	if _, err := f.Write(lenBuf[:]); err != nil {
		f.Abort()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(hdr); err != nil {
		f.Abort()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &SafetensorsWriter{f: f, tensors: infos}, nil
}

// marshalSorted writes a JSON object with keys in the map's sorted order
// (encoding/json sorts map keys already; this keeps the header deterministic).
func marshalSorted(m map[string]any) ([]byte, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(m[k])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Write writes the next declared tensor. name must match the declaration order and
// len(data) the declared shape; values are converted to the declared dtype.
// data may be reused by the caller after Write returns.
func (w *SafetensorsWriter) Write(name string, data []float32) error {
	if w.err != nil {
		return w.err
	}
	if w.next >= len(w.tensors) {
		return w.fail(fmt.Errorf("write %s: tensor %q was not declared (all %d declared tensors are written)", w.f.Name(), name, len(w.tensors)))
	}
	t := w.tensors[w.next]
	if name != t.Name {
		return w.fail(fmt.Errorf("write %s: got tensor %q, expected %q next in declared order", w.f.Name(), name, t.Name))
	}
	if len(data) != t.NumElements() {
		return w.fail(fmt.Errorf("write %s: tensor %q has %d values, its shape %v needs %d", w.f.Name(), name, len(data), t.Shape, t.NumElements()))
	}
	// Convert in chunks to bound the buffer size.
	const chunk = 1 << 16
	es := t.DType.Size()
	if cap(w.buf) < chunk*es {
		w.buf = make([]byte, chunk*es)
	}
	for start := 0; start < len(data); start += chunk {
		end := min(start+chunk, len(data))
		b := w.buf[:(end-start)*es]
		switch t.DType {
		case F32:
			for i, v := range data[start:end] {
				binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
			}
		case F16:
			for i, v := range data[start:end] {
				binary.LittleEndian.PutUint16(b[2*i:], Float32ToHalf(v))
			}
		case BF16:
			for i, v := range data[start:end] {
				binary.LittleEndian.PutUint16(b[2*i:], Float32ToBF16(v))
			}
		}
		if _, err := w.f.Write(b); err != nil {
			return w.fail(fmt.Errorf("write %s: %w", w.f.Name(), err))
		}
	}
	w.next++
	return nil
}

func (w *SafetensorsWriter) fail(err error) error {
	w.err = err
	w.f.Abort()
	return err
}

// Commit publishes the file. It fails (and removes the temporary file) if not
// every declared tensor was written.
func (w *SafetensorsWriter) Commit() error {
	if w.err != nil {
		return w.err
	}
	if w.next != len(w.tensors) {
		return w.fail(fmt.Errorf("write %s: only %d of %d declared tensors were written (next: %q)", w.f.Name(), w.next, len(w.tensors), w.tensors[w.next].Name))
	}
	if err := w.f.Commit(); err != nil {
		return w.fail(fmt.Errorf("write %s: %w", w.f.Name(), err))
	}
	w.err = fmt.Errorf("write %s: already committed", w.f.Name())
	return nil
}

// Abort discards the file. Safe after Commit (then a no-op) and more than once.
func (w *SafetensorsWriter) Abort() {
	if w.err == nil {
		w.err = fmt.Errorf("write %s: aborted", w.f.Name())
	}
	w.f.Abort()
}

// WriteSafetensors writes a whole set of float32 tensors at once (small files, tests).
func WriteSafetensors(path string, tensors []TensorInfo, data [][]float32, metadata map[string]string) error {
	if len(data) != len(tensors) {
		return fmt.Errorf("write %s: %d tensors declared but %d data slices given", path, len(tensors), len(data))
	}
	w, err := CreateSafetensors(path, tensors, metadata)
	if err != nil {
		return err
	}
	defer w.Abort()
	for i, t := range tensors {
		if err := w.Write(t.Name, data[i]); err != nil {
			return err
		}
	}
	return w.Commit()
}
