package derive

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/attnscope/attnscope/internal/atomicfile"
)

// Derived outputs are written as NumPy .npy version 1.0, little-endian float64 ('<f8'),
// C order, which numpy.load reads as is.

// writeNPY writes t to path atomically.
func writeNPY(path string, t *Tensor) error {
	return atomicfile.WriteWith(path, func(w io.Writer) error {
		dims := make([]string, len(t.Shape))
		for i, d := range t.Shape {
			dims[i] = strconv.Itoa(d)
		}
		shape := strings.Join(dims, ", ")
		if len(dims) == 1 {
			shape += ","
		}
		header := fmt.Sprintf("{'descr': '<f8', 'fortran_order': False, 'shape': (%s), }", shape)
		// magic(6) + version(2) + header length(2) + header + '\n' padded to 64 bytes.
		pad := 64 - (10+len(header)+1)%64
		if pad == 64 {
			pad = 0
		}
		header += strings.Repeat(" ", pad) + "\n"
		buf := make([]byte, 0, 10+len(header))
		buf = append(buf, "\x93NUMPY\x01\x00"...)
		buf = binary.LittleEndian.AppendUint16(buf, uint16(len(header)))
		buf = append(buf, header...)
		if _, err := w.Write(buf); err != nil {
			return err
		}
		b := make([]byte, 8*4096)
		for off := 0; off < len(t.Data); off += 4096 {
			chunk := t.Data[off:min(off+4096, len(t.Data))]
			for i, v := range chunk {
				binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
			}
			if _, err := w.Write(b[:8*len(chunk)]); err != nil {
				return err
			}
		}
		return nil
	})
}

var (
	npyDescrRE = regexp.MustCompile(`'descr':\s*'([<>|=]?[fi][48])'`)
	npyOrderRE = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	npyShapeRE = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)
)

// readNPY reads a .npy file of float32/float64 (or int32/int64) values in C order.
func readNPY(path string) (*Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil || string(pre[:6]) != "\x93NUMPY" {
		return nil, fmt.Errorf("%s: not a .npy file", path)
	}
	var hlen int
	switch pre[6] {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("%s: header: %w", path, err)
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("%s: header: %w", path, err)
		}
		hlen = int(binary.LittleEndian.Uint32(b[:]))
	default:
		return nil, fmt.Errorf("%s: unsupported .npy version %d", path, pre[6])
	}
	if hlen > 1<<20 {
		return nil, fmt.Errorf("%s: header of %d bytes is too long", path, hlen)
	}
	hb := make([]byte, hlen)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	h := string(hb)
	dm, om, sm := npyDescrRE.FindStringSubmatch(h), npyOrderRE.FindStringSubmatch(h), npyShapeRE.FindStringSubmatch(h)
	if dm == nil || om == nil || sm == nil {
		return nil, fmt.Errorf("%s: header %q lacks descr, fortran_order or shape", path, strings.TrimSpace(h))
	}
	if om[1] == "True" {
		return nil, fmt.Errorf("%s: Fortran-order arrays are not supported (save with C order)", path)
	}
	descr := dm[1]
	if descr[0] == '>' {
		return nil, fmt.Errorf("%s: big-endian dtype %s is not supported", path, descr)
	}
	var shape []int
	n := 1
	for _, s := range strings.Split(sm[1], ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		d, err := strconv.Atoi(s)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("%s: bad shape (%s)", path, sm[1])
		}
		shape = append(shape, d)
		if d > 0 && n > math.MaxInt32*64/d {
			return nil, fmt.Errorf("%s: shape (%s) is too large", path, sm[1])
		}
		n *= d
	}
	kind, size := descr[len(descr)-2], int(descr[len(descr)-1]-'0')
	t := &Tensor{Shape: shape, Data: make([]float64, n)}
	b := make([]byte, size*4096)
	for off := 0; off < n; off += 4096 {
		cnt := min(4096, n-off)
		if _, err := io.ReadFull(r, b[:size*cnt]); err != nil {
			return nil, fmt.Errorf("%s: data ends before the %d values of shape %v", path, n, shape)
		}
		for i := 0; i < cnt; i++ {
			var v float64
			switch {
			case kind == 'f' && size == 8:
				v = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
			case kind == 'f':
				v = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
			case size == 8:
				v = float64(int64(binary.LittleEndian.Uint64(b[8*i:])))
			default:
				v = float64(int32(binary.LittleEndian.Uint32(b[4*i:])))
			}
			t.Data[off+i] = v
		}
	}
	return t, nil
}
