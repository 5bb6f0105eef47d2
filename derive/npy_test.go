package derive

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestNPYRoundTripAndHeader(t *testing.T) {
	dir := t.TempDir()
	for _, shape := range [][]int{{3}, {2, 3}, {2, 1, 2, 2}, {}} {
		src := NewTensor(shape...)
		for i := range src.Data {
			src.Data[i] = float64(i) - 0.5
		}
		p := filepath.Join(dir, "x.npy")
		if err := writeNPY(p, src); err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(p)
		hlen := int(binary.LittleEndian.Uint16(raw[8:10]))
		if (10+hlen)%64 != 0 || raw[10+hlen-1] != '\n' {
			t.Errorf("shape %v: header length %d not padded to 64 with a final newline", shape, hlen)
		}
		got, err := readNPY(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Shape) != len(shape) || (len(shape) > 0 && !reflect.DeepEqual(got.Shape, shape)) || !reflect.DeepEqual(got.Data, src.Data) {
			t.Errorf("round trip of %v gave %v %v", shape, got.Shape, got.Data)
		}
	}
	one := NewTensor(3)
	writeNPY(filepath.Join(dir, "one.npy"), one)
	raw, _ := os.ReadFile(filepath.Join(dir, "one.npy"))
	if !bytes.Contains(raw, []byte("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }")) {
		t.Errorf("1-D header is not numpy's: %q", raw[10:80])
	}
}

// A float32 file as numpy writes it: np.save(p, np.array([[1,2],[3,4]], dtype='<f4')).
func TestReadNPYFloat32(t *testing.T) {
	h := "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }"
	h += string(bytes.Repeat([]byte(" "), 128-10-len(h)-1)) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(h)))
	b.WriteString(h)
	for _, v := range []float32{1, 2, 3, 4} {
		binary.Write(&b, binary.LittleEndian, math.Float32bits(v))
	}
	p := filepath.Join(t.TempDir(), "f4.npy")
	os.WriteFile(p, b.Bytes(), 0o644)
	got, err := readNPY(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Shape, []int{2, 2}) || !reflect.DeepEqual(got.Data, []float64{1, 2, 3, 4}) {
		t.Errorf("got %v %v", got.Shape, got.Data)
	}
	os.WriteFile(p, b.Bytes()[:b.Len()-3], 0o644)
	if _, err := readNPY(p); err == nil {
		t.Error("truncated file: no error")
	}
}

func FuzzReadNPY(f *testing.F) {
	f.Add([]byte("\x93NUMPY\x01\x00\x3a\x00{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }\n\x00\x00\x00\x00\x00\x00\xf0\x3f"))
	f.Add([]byte("\x93NUMPY\x02\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "f.npy")
		os.WriteFile(p, data, 0o644)
		readNPY(p)
	})
}
