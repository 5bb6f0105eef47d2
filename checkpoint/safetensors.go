// Package checkpoint reads and writes model checkpoint files: safetensors (single
// file and sharded with model.safetensors.index.json) and Hugging Face config.json.
// It knows file formats, not architectures.
package checkpoint

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"syscall"
)

// DType is a safetensors element type name ("F32", "F16", "BF16", "I64", ...).
type DType string

// Element types this package reads and writes.
const (
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	F64  DType = "F64"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U8   DType = "U8"
	BOOL DType = "BOOL"
)

// Size returns the size in bytes of one element, or 0 for an unknown dtype.
func (d DType) Size() int {
	switch d {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case F16, BF16, I16:
		return 2
	case I8, U8, BOOL:
		return 1
	}
	return 0
}

// MaxHeaderSize bounds the JSON header of a safetensors file (the reference
// implementation uses 100 MB as well).
const MaxHeaderSize = 100 << 20

// TensorInfo describes one tensor of a safetensors file.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int
	// Offsets of the data relative to the start of the data section, [begin, end).
	// Filled by the reader; ignored by the writer.
	Begin, End int64
}

// NumElements returns the product of the shape (1 for a scalar).
func (t TensorInfo) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Safetensors is one open safetensors file. Its data is memory-mapped (Close
// releases it, after which slices returned by Raw are invalid), or, opened with
// OpenSafetensorsAt, read from an io.ReaderAt (an object in remote storage) one
// tensor or one range of a tensor at a time.
type Safetensors struct {
	path     string
	data     []byte      // whole file (mmapped); nil when read through ra
	ra       io.ReaderAt // the file when not mapped
	dataOff  int64       // start of the data section
	tensors  map[string]TensorInfo
	order    []string
	Metadata map[string]string
}

type headerEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// ParseHeader validates a safetensors header: hdr is the JSON header and dataLen
// the size of the data section that follows it. It checks every dtype, shape and
// offset pair (inside the data section, matching dtype×shape, not overlapping).
// It returns the tensors sorted by offset and the __metadata__ map.
func ParseHeader(hdr []byte, dataLen int64) ([]TensorInfo, map[string]string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return nil, nil, fmt.Errorf("header is not a JSON object: %w", err)
	}
	var meta map[string]string
	var infos []TensorInfo
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &meta); err != nil {
				return nil, nil, fmt.Errorf("field __metadata__: expected an object of strings: %w", err)
			}
			continue
		}
		var e headerEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: expected {dtype, shape, data_offsets}: %w", name, err)
		}
		dt := DType(e.DType)
		if dt.Size() == 0 {
			return nil, nil, fmt.Errorf("tensor %q: unknown dtype %q (expected F32, F16, BF16, F64, I64, I32, I16, I8, U8 or BOOL)", name, e.DType)
		}
		if len(e.DataOffsets) != 2 {
			return nil, nil, fmt.Errorf("tensor %q: data_offsets has %d entries, expected 2", name, len(e.DataOffsets))
		}
		n := int64(1)
		shape := make([]int, len(e.Shape))
		for i, d := range e.Shape {
			if d < 0 || d > math.MaxInt32 {
				return nil, nil, fmt.Errorf("tensor %q: shape %v has an invalid dimension", name, e.Shape)
			}
			shape[i] = int(d)
			if d != 0 && n > math.MaxInt64/d {
				return nil, nil, fmt.Errorf("tensor %q: shape %v is too large", name, e.Shape)
			}
			n *= d
		}
		b, en := e.DataOffsets[0], e.DataOffsets[1]
		if b < 0 || en < b || en > dataLen {
			return nil, nil, fmt.Errorf("tensor %q: data_offsets [%d, %d] lie outside the data section of %d bytes", name, b, en, dataLen)
		}
		if n > math.MaxInt64/int64(dt.Size()) || en-b != n*int64(dt.Size()) {
			return nil, nil, fmt.Errorf("tensor %q: data_offsets [%d, %d] hold %d bytes, but dtype %s and shape %v need %d", name, b, en, en-b, dt, e.Shape, n*int64(dt.Size()))
		}
		infos = append(infos, TensorInfo{Name: name, DType: dt, Shape: shape, Begin: b, End: en})
	}
	sort.Slice(infos, func(i, j int) bool {
		if infos[i].Begin != infos[j].Begin {
			return infos[i].Begin < infos[j].Begin
		}
		return infos[i].Name < infos[j].Name
	})
	last := -1 // index of the tensor with the largest end so far
	for i, c := range infos {
		if c.End == c.Begin {
			continue // empty tensors occupy no bytes
		}
		if last >= 0 && c.Begin < infos[last].End {
			return nil, nil, fmt.Errorf("tensors %q and %q: data_offsets overlap", infos[last].Name, c.Name)
		}
		if last < 0 || c.End > infos[last].End {
			last = i
		}
	}
	return infos, meta, nil
}

// OpenSafetensors opens and validates one safetensors file.
func OpenSafetensors(path string) (*Safetensors, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	size := st.Size()
	if size < 8 {
		return nil, fmt.Errorf("read %s: file is %d bytes, too short for the 8-byte header length", path, size)
	}
	var lenBuf [8]byte
	if _, err := f.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:])
	if hlen > MaxHeaderSize {
		return nil, fmt.Errorf("read %s: header length %d exceeds the limit of %d bytes", path, hlen, MaxHeaderSize)
	}
	if int64(hlen) > size-8 {
		return nil, fmt.Errorf("read %s: header length %d runs beyond the end of the %d-byte file (truncated?)", path, hlen, size)
	}
	var data []byte
	if size > 0 {
		data, err = syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
		if err != nil {
			return nil, fmt.Errorf("read %s: mmap: %w", path, err)
		}
	}
	dataOff := 8 + int64(hlen)
	infos, meta, err := ParseHeader(data[8:dataOff], size-dataOff)
	if err != nil {
		syscall.Munmap(data)
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	s := &Safetensors{path: path, data: data, dataOff: dataOff, tensors: make(map[string]TensorInfo, len(infos)), Metadata: meta}
	for _, t := range infos {
		s.tensors[t.Name] = t
		s.order = append(s.order, t.Name)
	}
	return s, nil
}

// OpenSafetensorsAt opens and validates the safetensors file of size bytes that r
// reads, named name in errors: its header is read at once (two reads), tensors
// when asked (Raw, Float32, Float32Range read only their bytes).
func OpenSafetensorsAt(name string, r io.ReaderAt, size int64) (*Safetensors, error) {
	if size < 8 {
		return nil, fmt.Errorf("read %s: file is %d bytes, too short for the 8-byte header length", name, size)
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:])
	if hlen > MaxHeaderSize {
		return nil, fmt.Errorf("read %s: header length %d exceeds the limit of %d bytes", name, hlen, MaxHeaderSize)
	}
	if int64(hlen) > size-8 {
		return nil, fmt.Errorf("read %s: header length %d runs beyond the end of the %d-byte file (truncated?)", name, hlen, size)
	}
	hdr := make([]byte, hlen)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	dataOff := 8 + int64(hlen)
	infos, meta, err := ParseHeader(hdr, size-dataOff)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	s := &Safetensors{path: name, ra: r, dataOff: dataOff, tensors: make(map[string]TensorInfo, len(infos)), Metadata: meta}
	for _, t := range infos {
		s.tensors[t.Name] = t
		s.order = append(s.order, t.Name)
	}
	return s, nil
}

// Path returns the file's path.
func (s *Safetensors) Path() string { return s.path }

// Close unmaps the file.
func (s *Safetensors) Close() error {
	if s.data == nil {
		return nil
	}
	err := syscall.Munmap(s.data)
	s.data = nil
	return err
}

// Names returns the tensor names in file order.
func (s *Safetensors) Names() []string { return append([]string(nil), s.order...) }

// Info returns a tensor's description.
func (s *Safetensors) Info(name string) (TensorInfo, bool) {
	t, ok := s.tensors[name]
	return t, ok
}

// Raw returns a tensor's bytes (little-endian, as stored), valid until Close.
func (s *Safetensors) Raw(name string) (TensorInfo, []byte, error) {
	t, ok := s.tensors[name]
	if !ok {
		return t, nil, fmt.Errorf("read %s: no tensor %q", s.path, name)
	}
	b, err := s.bytes(t.Begin, t.End-t.Begin)
	if err != nil {
		return t, nil, fmt.Errorf("read %s: tensor %q: %w", s.path, name, err)
	}
	return t, b, nil
}

// bytes returns n bytes of the data section from off: a slice of the mapped file,
// or read from the ReaderAt.
func (s *Safetensors) bytes(off, n int64) ([]byte, error) {
	if s.ra == nil {
		return s.data[s.dataOff+off : s.dataOff+off+n], nil
	}
	b := make([]byte, n)
	if _, err := s.ra.ReadAt(b, s.dataOff+off); err != nil {
		return nil, err
	}
	return b, nil
}

// Float32Range returns count elements of a floating-point tensor from element
// from (the tensor flattened in row-major order) as float32, reading only their
// bytes.
func (s *Safetensors) Float32Range(name string, from, count int) ([]float32, error) {
	t, ok := s.tensors[name]
	if !ok {
		return nil, fmt.Errorf("read %s: no tensor %q", s.path, name)
	}
	size := t.DType.Size()
	if from < 0 || count < 0 || from+count > t.NumElements() {
		return nil, fmt.Errorf("read %s: tensor %q: elements [%d, %d) outside its %d", s.path, name, from, from+count, t.NumElements())
	}
	b, err := s.bytes(t.Begin+int64(from*size), int64(count*size))
	if err != nil {
		return nil, fmt.Errorf("read %s: tensor %q: %w", s.path, name, err)
	}
	out := make([]float32, count)
	if err := decodeFloat32(t.DType, b, out); err != nil {
		return nil, fmt.Errorf("read %s: tensor %q: %w", s.path, name, err)
	}
	return out, nil
}

// Float32 returns a tensor converted to float32 (from F32, F16, BF16 or F64) and its shape.
func (s *Safetensors) Float32(name string) ([]float32, []int, error) {
	t, b, err := s.Raw(name)
	if err != nil {
		return nil, nil, err
	}
	out, err := toFloat32(t.DType, b)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: tensor %q: %w", s.path, name, err)
	}
	return out, t.Shape, nil
}

// Int64 returns an integer tensor (I64, I32, I16, I8, U8) as int64 values and its shape.
func (s *Safetensors) Int64(name string) ([]int64, []int, error) {
	t, b, err := s.Raw(name)
	if err != nil {
		return nil, nil, err
	}
	n := t.NumElements()
	out := make([]int64, n)
	switch t.DType {
	case I64:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
	case I32:
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(b[4*i:])))
		}
	case I16:
		for i := range out {
			out[i] = int64(int16(binary.LittleEndian.Uint16(b[2*i:])))
		}
	case I8:
		for i := range out {
			out[i] = int64(int8(b[i]))
		}
	case U8:
		for i := range out {
			out[i] = int64(b[i])
		}
	default:
		return nil, nil, fmt.Errorf("read %s: tensor %q: dtype %s is not an integer type", s.path, name, t.DType)
	}
	return out, t.Shape, nil
}

func toFloat32(dt DType, b []byte) ([]float32, error) {
	if dt.Size() == 0 {
		return nil, fmt.Errorf("dtype %s is not a floating-point type", dt)
	}
	out := make([]float32, len(b)/dt.Size())
	if err := decodeFloat32(dt, b, out); err != nil {
		return nil, err
	}
	return out, nil
}

// decodeFloat32 converts little-endian F32/F16/BF16/F64 bytes into dst (len(b)/size values).
func decodeFloat32(dt DType, b []byte, dst []float32) error {
	switch dt {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = HalfToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
	default:
		return fmt.Errorf("dtype %s is not a floating-point type", dt)
	}
	return nil
}

// HalfToFloat32 converts an IEEE 754 binary16 value to float32.
func HalfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		mant &= 0x3ff
		return math.Float32frombits(sign | e<<23 | mant<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// Float32ToHalf converts a float32 to IEEE 754 binary16, rounding to nearest even
// and saturating to ±Inf.
func Float32ToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - e)
		half := mant >> shift
		rem := mant & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	half := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // may carry into the exponent, which is correct rounding (up to Inf)
	}
	return sign | uint16(half)
}

// Float32ToBF16 converts a float32 to bfloat16 with round-to-nearest-even.
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// Weights is a checkpoint's tensors, from one safetensors file or several shards
// listed by model.safetensors.index.json.
type Weights struct {
	files  []*Safetensors
	byName map[string]*Safetensors
}

// ErrNoWeights means a folder holds neither model.safetensors nor model.safetensors.index.json.
var ErrNoWeights = errors.New("no model.safetensors or model.safetensors.index.json")

// OpenWeights opens the weights of a model folder: model.safetensors.index.json
// (sharded) if present, else model.safetensors.
func OpenWeights(dir string) (*Weights, error) {
	idx := filepath.Join(dir, "model.safetensors.index.json")
	if b, err := os.ReadFile(idx); err == nil {
		var ix struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(b, &ix); err != nil {
			return nil, fmt.Errorf("read %s: expected a JSON object with a weight_map: %w", idx, err)
		}
		if len(ix.WeightMap) == 0 {
			return nil, fmt.Errorf("read %s: field weight_map is empty", idx)
		}
		w := &Weights{byName: map[string]*Safetensors{}}
		shards := map[string]*Safetensors{}
		names := make([]string, 0, len(ix.WeightMap))
		for n := range ix.WeightMap {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			shard := ix.WeightMap[name]
			if shard == "" || filepath.Base(shard) != shard {
				w.Close()
				return nil, fmt.Errorf("read %s: field weight_map[%q]: expected a file name in the same folder, got %q", idx, name, shard)
			}
			s, ok := shards[shard]
			if !ok {
				var err error
				s, err = OpenSafetensors(filepath.Join(dir, shard))
				if err != nil {
					w.Close()
					return nil, err
				}
				shards[shard] = s
				w.files = append(w.files, s)
			}
			if _, ok := s.Info(name); !ok {
				w.Close()
				return nil, fmt.Errorf("read %s: tensor %q listed in weight_map is not in shard %s", idx, name, shard)
			}
			w.byName[name] = s
		}
		return w, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", idx, err)
	}
	single := filepath.Join(dir, "model.safetensors")
	s, err := OpenSafetensors(single)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read %s: %w", dir, ErrNoWeights)
		}
		return nil, err
	}
	w := &Weights{files: []*Safetensors{s}, byName: map[string]*Safetensors{}}
	for _, n := range s.Names() {
		w.byName[n] = s
	}
	return w, nil
}

// Close releases all files.
func (w *Weights) Close() error {
	var first error
	for _, f := range w.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Files returns the paths of the safetensors files (one, or the shards).
func (w *Weights) Files() []string {
	var out []string
	for _, f := range w.files {
		out = append(out, f.path)
	}
	return out
}

// Names returns all tensor names, sorted.
func (w *Weights) Names() []string {
	out := make([]string, 0, len(w.byName))
	for n := range w.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Has reports whether a tensor exists.
func (w *Weights) Has(name string) bool { _, ok := w.byName[name]; return ok }

// Info returns a tensor's description.
func (w *Weights) Info(name string) (TensorInfo, bool) {
	s, ok := w.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return s.Info(name)
}

// Float32 returns a tensor as float32 after checking its shape against want (nil
// skips the check). The error names the file, the tensor and the expected shape.
func (w *Weights) Float32(name string, want []int) ([]float32, error) {
	s, ok := w.byName[name]
	if !ok {
		return nil, fmt.Errorf("read %s: tensor %q is missing", w.describe(), name)
	}
	t, _ := s.Info(name)
	if want != nil && !equalShape(t.Shape, want) {
		return nil, fmt.Errorf("read %s: tensor %q has shape %v, expected %v for this config", s.path, name, t.Shape, want)
	}
	data, _, err := s.Float32(name)
	return data, err
}

// Float32Into decodes a tensor into dst (len(dst) must equal its element
// count) after checking its shape against want, without an intermediate copy.
func (w *Weights) Float32Into(name string, want []int, dst []float32) error {
	s, ok := w.byName[name]
	if !ok {
		return fmt.Errorf("read %s: tensor %q is missing", w.describe(), name)
	}
	t, b, err := s.Raw(name)
	if err != nil {
		return err
	}
	if want != nil && !equalShape(t.Shape, want) {
		return fmt.Errorf("read %s: tensor %q has shape %v, expected %v for this config", s.path, name, t.Shape, want)
	}
	if t.NumElements() != len(dst) {
		return fmt.Errorf("read %s: tensor %q has %d values, destination holds %d", s.path, name, t.NumElements(), len(dst))
	}
	if err := decodeFloat32(t.DType, b, dst); err != nil {
		return fmt.Errorf("read %s: tensor %q: %w", s.path, name, err)
	}
	s.release(t)
	return nil
}

// release tells the kernel the mapped pages of a decoded tensor are no longer
// needed, so loading a checkpoint does not hold the file and its decoded copy
// in memory at once.
func (s *Safetensors) release(t TensorInfo) {
	if s.data == nil {
		return
	}
	page := int64(os.Getpagesize())
	begin := (s.dataOff + t.Begin + page - 1) / page * page
	end := (s.dataOff + t.End) / page * page
	if end > begin {
		_ = syscall.Madvise(s.data[begin:end], syscall.MADV_DONTNEED)
	}
}

func (w *Weights) describe() string {
	if len(w.files) == 1 {
		return w.files[0].path
	}
	if len(w.files) > 1 {
		return filepath.Join(filepath.Dir(w.files[0].path), "model.safetensors.index.json")
	}
	return "weights"
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
