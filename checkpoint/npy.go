package checkpoint

// NumPy .npy files (format versions 1.0, 2.0 and 3.0), as described in
// numpy/lib/format.py: the magic "\x93NUMPY", a major and minor version byte, a
// little-endian header length (uint16 for 1.0, uint32 for 2.0 and 3.0), then an
// ASCII (3.0: UTF-8) Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with spaces
// and a final newline so that the data starts at a multiple of 64 bytes, then the
// array's elements in C order.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/attnscope/attnscope/internal/atomicfile"
)

// NpyMaxHeaderLen bounds the header of a .npy file we accept (numpy itself refuses
// headers over 10,000 bytes by default).
const NpyMaxHeaderLen = 1 << 20

// npyMaxElements bounds the number of elements a header may announce, so that a
// corrupt header cannot make a reader allocate without limit.
const npyMaxElements = 1 << 40

var npyMagic = []byte("\x93NUMPY")

// NpyDType is the element type of a .npy array, named by its NumPy kind and size.
type NpyDType string

// Element types read and written by this package.
const (
	NpyFloat16 NpyDType = "f2"
	NpyFloat32 NpyDType = "f4"
	NpyFloat64 NpyDType = "f8"
	NpyInt32   NpyDType = "i4"
	NpyInt64   NpyDType = "i8"
	NpyUint8   NpyDType = "u1"
	NpyBool    NpyDType = "b1"
)

// Size is the number of bytes of one element.
func (d NpyDType) Size() int {
	switch d {
	case NpyFloat16:
		return 2
	case NpyFloat32, NpyInt32:
		return 4
	case NpyFloat64, NpyInt64:
		return 8
	case NpyUint8, NpyBool:
		return 1
	}
	return 0
}

// NpyHeader is the parsed header of a .npy file.
type NpyHeader struct {
	Major, Minor int
	Descr        string // as written, e.g. "<f4"
	DType        NpyDType
	BigEndian    bool
	FortranOrder bool
	Shape        []int
	DataOffset   int64 // byte offset of the first element from the start of the file
}

// NumElements is the product of the shape (1 for a scalar).
func (h *NpyHeader) NumElements() int {
	n := 1
	for _, s := range h.Shape {
		n *= s
	}
	return n
}

// DataSize is the number of bytes of the array's data.
func (h *NpyHeader) DataSize() int64 { return int64(h.NumElements()) * int64(h.DType.Size()) }

// NpyArray is an N-dimensional array read from or written to a .npy file: a shape
// and the flat C-order elements in one of the typed slices (the one of DType; for
// NpyFloat16 it is F32, converted on read).
type NpyArray struct {
	DType NpyDType
	Shape []int
	F32   []float32
	F64   []float64
	I32   []int32
	I64   []int64
	U8    []uint8
	Bool  []bool
}

// NumElements is the product of the shape.
func (a *NpyArray) NumElements() int {
	n := 1
	for _, s := range a.Shape {
		n *= s
	}
	return n
}

// Float32s returns the elements as float32 (converting numeric types; integers beyond
// 2^24 lose precision).
func (a *NpyArray) Float32s() []float32 {
	switch a.DType {
	case NpyFloat16, NpyFloat32:
		return a.F32
	}
	out := make([]float32, a.NumElements())
	for i := range out {
		out[i] = float32(a.at(i))
	}
	return out
}

// Float64s returns the elements as float64.
func (a *NpyArray) Float64s() []float64 {
	if a.DType == NpyFloat64 {
		return a.F64
	}
	out := make([]float64, a.NumElements())
	for i := range out {
		out[i] = a.at(i)
	}
	return out
}

// Ints returns the elements as int; it fails for floating-point arrays.
func (a *NpyArray) Ints() ([]int, error) {
	out := make([]int, a.NumElements())
	switch a.DType {
	case NpyInt32:
		for i, v := range a.I32 {
			out[i] = int(v)
		}
	case NpyInt64:
		for i, v := range a.I64 {
			out[i] = int(v)
		}
	case NpyUint8:
		for i, v := range a.U8 {
			out[i] = int(v)
		}
	case NpyBool:
		for i, v := range a.Bool {
			if v {
				out[i] = 1
			}
		}
	default:
		return nil, fmt.Errorf("array of %s is not an integer array", a.DType)
	}
	return out, nil
}

func (a *NpyArray) at(i int) float64 {
	switch a.DType {
	case NpyFloat16, NpyFloat32:
		return float64(a.F32[i])
	case NpyFloat64:
		return a.F64[i]
	case NpyInt32:
		return float64(a.I32[i])
	case NpyInt64:
		return float64(a.I64[i])
	case NpyUint8:
		return float64(a.U8[i])
	case NpyBool:
		if a.Bool[i] {
			return 1
		}
	}
	return 0
}

// ReadNpyHeader reads and validates the header of a .npy stream, leaving r at the
// first data byte.
func ReadNpyHeader(r io.Reader) (*NpyHeader, error) {
	var pre [10]byte
	if _, err := io.ReadFull(r, pre[:8]); err != nil {
		return nil, fmt.Errorf("not a .npy file: %d-byte preamble expected: %w", 8, npyEOF(err))
	}
	if !bytes.Equal(pre[:6], npyMagic) {
		return nil, errors.New(`not a .npy file: magic "\x93NUMPY" expected`)
	}
	h := &NpyHeader{Major: int(pre[6]), Minor: int(pre[7])}
	var hlen int
	switch h.Major {
	case 1:
		if _, err := io.ReadFull(r, pre[8:10]); err != nil {
			return nil, fmt.Errorf("truncated .npy header length: %w", npyEOF(err))
		}
		hlen = int(binary.LittleEndian.Uint16(pre[8:10]))
		h.DataOffset = 10
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("truncated .npy header length: %w", npyEOF(err))
		}
		hlen = int(binary.LittleEndian.Uint32(b[:]))
		h.DataOffset = 12
	default:
		return nil, fmt.Errorf(".npy format version %d.%d is not supported (1.0, 2.0 or 3.0 expected)", h.Major, h.Minor)
	}
	if hlen > NpyMaxHeaderLen {
		return nil, fmt.Errorf(".npy header length %d exceeds the limit of %d bytes", hlen, NpyMaxHeaderLen)
	}
	buf := make([]byte, hlen)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("truncated .npy header (%d bytes announced): %w", hlen, npyEOF(err))
	}
	h.DataOffset += int64(hlen)
	if err := parseNpyDict(string(buf), h); err != nil {
		return nil, fmt.Errorf("invalid .npy header %q: %w", strings.TrimSpace(string(buf)), err)
	}
	return h, nil
}

func npyEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseNpyDict parses the Python dict literal of a .npy header.
func parseNpyDict(s string, h *NpyHeader) error {
	p := &npyParser{s: s}
	p.space()
	if !p.eat('{') {
		return errors.New("'{' expected")
	}
	seen := map[string]bool{}
	for {
		p.space()
		if p.eat('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return fmt.Errorf("key: %w", err)
		}
		if seen[key] {
			return fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		p.space()
		if !p.eat(':') {
			return fmt.Errorf("':' expected after key %q", key)
		}
		p.space()
		switch key {
		case "descr":
			d, err := p.str()
			if err != nil {
				return fmt.Errorf("descr: %w", err)
			}
			h.Descr = d
		case "fortran_order":
			switch {
			case p.word("True"):
				h.FortranOrder = true
			case p.word("False"):
				h.FortranOrder = false
			default:
				return errors.New("fortran_order: True or False expected")
			}
		case "shape":
			shape, err := p.tuple()
			if err != nil {
				return fmt.Errorf("shape: %w", err)
			}
			h.Shape = shape
		default:
			return fmt.Errorf("unknown key %q (descr, fortran_order and shape expected)", key)
		}
		p.space()
		if p.eat(',') {
			continue
		}
		p.space()
		if !p.eat('}') {
			return errors.New("',' or '}' expected")
		}
		break
	}
	if rest := strings.TrimSpace(p.s[p.i:]); rest != "" {
		return fmt.Errorf("unexpected text %q after the dict", rest)
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return fmt.Errorf("key %q missing", k)
		}
	}
	if h.FortranOrder {
		return errors.New("fortran_order is True: only C-order arrays are supported (save with np.ascontiguousarray)")
	}
	dt, big, err := parseNpyDescr(h.Descr)
	if err != nil {
		return err
	}
	h.DType, h.BigEndian = dt, big
	n := int64(1)
	for _, d := range h.Shape {
		if d < 0 {
			return fmt.Errorf("negative dimension %d in shape", d)
		}
		if d > 0 && n > npyMaxElements/int64(d) {
			return fmt.Errorf("shape %v has more than %d elements", h.Shape, int64(npyMaxElements))
		}
		n *= int64(d)
	}
	return nil
}

func parseNpyDescr(d string) (NpyDType, bool, error) {
	if len(d) < 2 {
		return "", false, fmt.Errorf("descr %q: a dtype such as '<f4' expected", d)
	}
	order, code := d[0], d[1:]
	big := false
	switch order {
	case '<', '|', '=':
	case '>':
		big = true
	default:
		code = d
	}
	switch NpyDType(code) {
	case NpyFloat16, NpyFloat32, NpyFloat64, NpyInt32, NpyInt64, NpyUint8, NpyBool:
		return NpyDType(code), big && NpyDType(code).Size() > 1, nil
	}
	return "", false, fmt.Errorf("descr %q is not supported (one of <f2, <f4, <f8, <i4, <i8, |u1, |b1 expected)", d)
}

type npyParser struct {
	s string
	i int
}

func (p *npyParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\n' || p.s[p.i] == '\t' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *npyParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *npyParser) word(w string) bool {
	if strings.HasPrefix(p.s[p.i:], w) {
		p.i += len(w)
		return true
	}
	return false
}

func (p *npyParser) str() (string, error) {
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", errors.New("quoted string expected")
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", errors.New("unterminated string")
	}
	v := p.s[p.i+1 : p.i+1+end]
	p.i += end + 2
	return v, nil
}

func (p *npyParser) tuple() ([]int, error) {
	if !p.eat('(') {
		return nil, errors.New("'(' expected")
	}
	shape := []int{}
	for {
		p.space()
		if p.eat(')') {
			return shape, nil
		}
		j := p.i
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		if j == p.i {
			return nil, errors.New("non-negative integer expected")
		}
		v, err := strconv.ParseInt(p.s[p.i:j], 10, 64)
		if err != nil || v > npyMaxElements {
			return nil, fmt.Errorf("dimension %s out of range", p.s[p.i:j])
		}
		p.i = j
		p.word("L") // Python 2 long suffix
		shape = append(shape, int(v))
		p.space()
		if p.eat(',') {
			continue
		}
		p.space()
		if !p.eat(')') {
			return nil, errors.New("',' or ')' expected")
		}
		return shape, nil
	}
}

// ReadNpy reads a whole .npy stream. Floating-point data of every supported width
// is returned at its own precision except float16, which is widened to F32.
func ReadNpy(r io.Reader) (*NpyArray, error) {
	h, err := ReadNpyHeader(r)
	if err != nil {
		return nil, err
	}
	return ReadNpyData(r, h)
}

// ReadNpyData reads the elements that follow header h.
func ReadNpyData(r io.Reader, h *NpyHeader) (*NpyArray, error) {
	n := h.NumElements()
	a := &NpyArray{DType: h.DType, Shape: append([]int{}, h.Shape...)}
	var order binary.ByteOrder = binary.LittleEndian
	if h.BigEndian {
		order = binary.BigEndian
	}
	size := h.DType.Size()
	// Read in chunks so that a header announcing more data than the stream holds
	// fails at the end of the stream rather than after a huge allocation.
	const chunk = 1 << 20
	buf := make([]byte, min(chunk, n*size+size))
	for done := 0; done < n; {
		m := min(n-done, len(buf)/size)
		b := buf[:m*size]
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("truncated .npy data: %d elements of %s expected, stream ends after %d: %w", n, h.Descr, done, npyEOF(err))
		}
		switch h.DType {
		case NpyFloat16:
			for i := range m {
				a.F32 = append(a.F32, NpyHalfToFloat32(order.Uint16(b[2*i:])))
			}
		case NpyFloat32:
			for i := range m {
				a.F32 = append(a.F32, math.Float32frombits(order.Uint32(b[4*i:])))
			}
		case NpyFloat64:
			for i := range m {
				a.F64 = append(a.F64, math.Float64frombits(order.Uint64(b[8*i:])))
			}
		case NpyInt32:
			for i := range m {
				a.I32 = append(a.I32, int32(order.Uint32(b[4*i:])))
			}
		case NpyInt64:
			for i := range m {
				a.I64 = append(a.I64, int64(order.Uint64(b[8*i:])))
			}
		case NpyUint8:
			a.U8 = append(a.U8, b...)
		case NpyBool:
			for _, v := range b {
				a.Bool = append(a.Bool, v != 0)
			}
		}
		done += m
	}
	if n == 0 {
		switch h.DType {
		case NpyFloat16, NpyFloat32:
			a.F32 = []float32{}
		case NpyFloat64:
			a.F64 = []float64{}
		case NpyInt32:
			a.I32 = []int32{}
		case NpyInt64:
			a.I64 = []int64{}
		case NpyUint8:
			a.U8 = []uint8{}
		case NpyBool:
			a.Bool = []bool{}
		}
	}
	return a, nil
}

// ReadNpyFile reads a .npy file; errors name the file.
func ReadNpyFile(path string) (*NpyArray, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a, err := ReadNpy(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return a, nil
}

// NpyHalf marks float32 data to be stored as float16 ('<f2') by WriteNpy.
type NpyHalf []float32

// npyDataType returns the dtype and element count of a slice accepted by WriteNpy.
func npyDataType(data any) (NpyDType, int, error) {
	switch d := data.(type) {
	case []float32:
		return NpyFloat32, len(d), nil
	case NpyHalf:
		return NpyFloat16, len(d), nil
	case []float64:
		return NpyFloat64, len(d), nil
	case []int32:
		return NpyInt32, len(d), nil
	case []int64:
		return NpyInt64, len(d), nil
	case []uint8:
		return NpyUint8, len(d), nil
	case []bool:
		return NpyBool, len(d), nil
	case []int:
		return NpyInt64, len(d), nil
	}
	return "", 0, fmt.Errorf("cannot store %T in a .npy file", data)
}

// NpyHeaderBytes returns the complete header (magic to padding) of a version 1.0
// file (2.0 when the dict does not fit in 65535 bytes) for an array of dtype and
// shape, padded so that data starts at a multiple of 64 bytes as numpy writes it.
func NpyHeaderBytes(dtype NpyDType, shape []int) []byte {
	var sb strings.Builder
	prefix := "<"
	if dtype.Size() == 1 {
		prefix = "|"
	}
	fmt.Fprintf(&sb, "{'descr': '%s%s', 'fortran_order': False, 'shape': (", prefix, dtype)
	for i, s := range shape {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(strconv.Itoa(s))
	}
	if len(shape) == 1 {
		sb.WriteString(",")
	}
	sb.WriteString("), }")
	dict := sb.String()
	major, pre := 1, 10
	if len(dict)+1+pre > 65535 {
		major, pre = 2, 12
	}
	total := pre + len(dict) + 1
	pad := (64 - total%64) % 64
	hlen := len(dict) + pad + 1
	out := make([]byte, 0, pre+hlen)
	out = append(out, npyMagic...)
	out = append(out, byte(major), 0)
	if major == 1 {
		out = binary.LittleEndian.AppendUint16(out, uint16(hlen))
	} else {
		out = binary.LittleEndian.AppendUint32(out, uint32(hlen))
	}
	out = append(out, dict...)
	out = append(out, bytes.Repeat([]byte{' '}, pad)...)
	return append(out, '\n')
}

// WriteNpy writes an N-dimensional array in .npy format: shape and the flat C-order
// data, one of []float32, NpyHalf (stored as '<f2'), []float64, []int32, []int64,
// []int (stored as '<i8'), []uint8, []bool. len(data) must equal the product of shape.
func WriteNpy(w io.Writer, shape []int, data any) error {
	dtype, n, err := npyDataType(data)
	if err != nil {
		return err
	}
	want := 1
	for _, s := range shape {
		if s < 0 {
			return fmt.Errorf("negative dimension in shape %v", shape)
		}
		want *= s
	}
	if n != want {
		return fmt.Errorf("shape %v needs %d elements, data has %d", shape, want, n)
	}
	if _, err := w.Write(NpyHeaderBytes(dtype, shape)); err != nil {
		return err
	}
	return npyWriteData(w, data)
}

func npyWriteData(w io.Writer, data any) error {
	const chunk = 1 << 16
	buf := make([]byte, 0, chunk*8)
	flush := func() error {
		_, err := w.Write(buf)
		buf = buf[:0]
		return err
	}
	le := binary.LittleEndian
	var err error
	each := func(n int, put func(i int)) {
		for i := 0; i < n && err == nil; i++ {
			put(i)
			if len(buf) >= chunk*8-8 {
				err = flush()
			}
		}
	}
	switch d := data.(type) {
	case []float32:
		each(len(d), func(i int) { buf = le.AppendUint32(buf, math.Float32bits(d[i])) })
	case NpyHalf:
		each(len(d), func(i int) { buf = le.AppendUint16(buf, NpyFloat32ToHalf(d[i])) })
	case []float64:
		each(len(d), func(i int) { buf = le.AppendUint64(buf, math.Float64bits(d[i])) })
	case []int32:
		each(len(d), func(i int) { buf = le.AppendUint32(buf, uint32(d[i])) })
	case []int64:
		each(len(d), func(i int) { buf = le.AppendUint64(buf, uint64(d[i])) })
	case []int:
		each(len(d), func(i int) { buf = le.AppendUint64(buf, uint64(int64(d[i]))) })
	case []uint8:
		_, err := w.Write(d)
		return err
	case []bool:
		each(len(d), func(i int) {
			var b byte
			if d[i] {
				b = 1
			}
			buf = append(buf, b)
		})
	}
	if err != nil {
		return err
	}
	if len(buf) > 0 {
		return flush()
	}
	return nil
}

// WriteNpyFile writes an array to path atomically (temporary file, then rename).
func WriteNpyFile(path string, shape []int, data any) error {
	return atomicfile.WriteWith(path, func(w io.Writer) error {
		return WriteNpy(w, shape, data)
	})
}

// NpyHalfToFloat32 converts an IEEE 754 binary16 value to float32 exactly.
func NpyHalfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	case exp == 0:
		if frac == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: value = frac * 2^-24.
		v := float32(frac) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}

// NpyFloat32ToHalf converts a float32 to the nearest IEEE 754 binary16 value
// (round half to even, overflow to infinity), as numpy's astype(np.float16) does.
func NpyFloat32ToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	frac := b & 0x7fffff
	if exp == 0xff { // Inf or NaN
		if frac != 0 {
			return sign | 0x7e00 | uint16(frac>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal half (or zero): shift the full mantissa into place.
		if e < -10 {
			return sign
		}
		m := frac | 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		r := m >> shift
		rem := m & (1<<shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | frac>>13
	rem := frac & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, which is the right result (up to Inf)
	}
	return sign | uint16(r)
}
