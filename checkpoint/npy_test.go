package checkpoint

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestNpyRoundTrip(t *testing.T) {
	cases := []struct {
		name  string
		shape []int
		data  any
		dtype NpyDType
	}{
		{"f32-4d", []int{2, 1, 3, 2}, []float32{1, -2, 3.5, 0, 1e-30, float32(math.Inf(1)), 7, 8, 9, 10, 11, 12}, NpyFloat32},
		{"f64-2d", []int{2, 2}, []float64{1.5, -2.25, math.Pi, 1e300}, NpyFloat64},
		{"f16", []int{3}, NpyHalf{0.5, -1, 65504}, NpyFloat16},
		{"i64", []int{2, 2}, []int64{1, -1, 1 << 40, 0}, NpyInt64},
		{"int", []int{3}, []int{50256, 0, -7}, NpyInt64},
		{"i32", []int{1, 2}, []int32{-3, 4}, NpyInt32},
		{"u8", []int{2}, []uint8{0, 255}, NpyUint8},
		{"bool", []int{3}, []bool{true, false, true}, NpyBool},
		{"scalar", []int{}, []float32{42}, NpyFloat32},
		{"empty", []int{0, 5}, []float32{}, NpyFloat32},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteNpy(&buf, c.shape, c.data); err != nil {
				t.Fatal(err)
			}
			h, err := ReadNpyHeader(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if h.DataOffset%64 != 0 {
				t.Errorf("data offset %d is not a multiple of 64", h.DataOffset)
			}
			if int64(buf.Len()) != h.DataOffset+h.DataSize() {
				t.Errorf("file is %d bytes, header says %d + %d", buf.Len(), h.DataOffset, h.DataSize())
			}
			a, err := ReadNpy(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if a.DType != c.dtype || !reflect.DeepEqual(a.Shape, c.shape) {
				t.Fatalf("got %s %v, want %s %v", a.DType, a.Shape, c.dtype, c.shape)
			}
			var got any
			switch c.data.(type) {
			case []float32:
				got = a.F32
			case NpyHalf:
				got = NpyHalf(a.F32)
			case []float64:
				got = a.F64
			case []int64:
				got = a.I64
			case []int:
				got, _ = a.Ints()
			case []int32:
				got = a.I32
			case []uint8:
				got = a.U8
			case []bool:
				got = a.Bool
			}
			if !reflect.DeepEqual(got, c.data) {
				t.Errorf("data: got %v, want %v", got, c.data)
			}
		})
	}
}

func TestNpyWriteErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteNpy(&buf, []int{2, 3}, []float32{1, 2}); err == nil || !strings.Contains(err.Error(), "needs 6 elements") {
		t.Errorf("shape mismatch: got %v", err)
	}
	if err := WriteNpy(&buf, []int{1}, []string{"a"}); err == nil {
		t.Error("strings accepted")
	}
}

func npyFile(descr, fortran, shape string, data []byte) []byte {
	return npyRaw("{'descr': '"+descr+"', 'fortran_order': "+fortran+", 'shape': "+shape+", }", data)
}

func npyRaw(dict string, data []byte) []byte {
	out := append([]byte("\x93NUMPY\x01\x00"), 0, 0)
	binary.LittleEndian.PutUint16(out[8:], uint16(len(dict)+1))
	out = append(out, dict...)
	out = append(out, '\n')
	return append(out, data...)
}

func TestNpyReadErrors(t *testing.T) {
	f32 := make([]byte, 24)
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"magic", []byte("PK\x03\x04 not npy"), "magic"},
		{"short", []byte("\x93NU"), "preamble"},
		{"version", []byte("\x93NUMPY\x09\x00\x00\x00"), "version 9.0"},
		{"fortran", npyFile("<f4", "True", "(2, 3)", f32), "fortran_order is True"},
		{"dtype", npyFile("<c8", "False", "(3,)", f32), "descr \"<c8\" is not supported"},
		{"object", npyFile("|O", "False", "(3,)", f32), "not supported"},
		{"truncated data", npyFile("<f4", "False", "(2, 4)", f32), "truncated .npy data"},
		{"header length", []byte("\x93NUMPY\x01\x00\xff\x00{'descr'"), "truncated .npy header"},
		{"missing key", npyRaw("{'descr': '<f4', 'shape': (1,)}", f32), "missing"},
		{"unknown key", npyFile("<f4", "False", "(6,), 'x': 1", f32), "unknown key"},
		{"bad shape", npyFile("<f4", "False", "(2, -3)", f32), "shape"},
		{"huge shape", npyFile("<f4", "False", "(100000000, 100000000, 100000000)", f32), "more than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadNpy(bytes.NewReader(c.file))
			if err == nil {
				t.Fatalf("no error, want one containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestNpyBigEndianAndVersion2(t *testing.T) {
	data := binary.BigEndian.AppendUint32(nil, math.Float32bits(1.5))
	data = binary.BigEndian.AppendUint32(data, math.Float32bits(-2))
	a, err := ReadNpy(bytes.NewReader(npyFile(">f4", "False", "(2,)", data)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.F32, []float32{1.5, -2}) {
		t.Errorf("big-endian: got %v", a.F32)
	}
	// Version 2.0: 4-byte header length.
	dict := "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }\n"
	v2 := append([]byte("\x93NUMPY\x02\x00"), binary.LittleEndian.AppendUint32(nil, uint32(len(dict)))...)
	v2 = append(v2, dict...)
	v2 = binary.LittleEndian.AppendUint64(v2, 77)
	a, err = ReadNpy(bytes.NewReader(v2))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.I64, []int64{77}) {
		t.Errorf("v2: got %v", a.I64)
	}
}

func TestNpyHalfConversion(t *testing.T) {
	// Every finite half value survives half -> float32 -> half.
	for h := range 1 << 16 {
		f := NpyHalfToFloat32(uint16(h))
		if f != f {
			if back := NpyFloat32ToHalf(f); back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, back)
			}
			continue
		}
		if back := NpyFloat32ToHalf(f); back != uint16(h) {
			t.Fatalf("half %#04x -> %g -> %#04x", h, f, back)
		}
	}
	cases := []struct {
		f    float32
		want uint16
	}{
		{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65520, 0x7c00}, {1e10, 0x7c00},
		{5.960464477539063e-08, 0x0001}, {2.9e-08, 0x0000}, {3.0e-08, 0x0001},
		{1 + 1.0/2048, 0x3c00},        // tie rounds to even
		{1 + 3.0/2048, 0x3c02},        // tie rounds to even (up)
		{1 + 1.0/2048 + 1e-7, 0x3c01}, // above the tie
		{float32(math.Inf(-1)), 0xfc00},
	}
	for _, c := range cases {
		if got := NpyFloat32ToHalf(c.f); got != c.want {
			t.Errorf("NpyFloat32ToHalf(%g) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
}

func TestNpz(t *testing.T) {
	for _, compress := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "a.npz")
		w, err := CreateNpz(path, compress)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write("attn", []int{1, 2, 2}, []float32{1, 0, 0.25, 0.75}); err != nil {
			t.Fatal(err)
		}
		if err := w.Write("ids", []int{2}, []int64{5, 6}); err != nil {
			t.Fatal(err)
		}
		if err := w.Write("ids", []int{1}, []int64{5}); err == nil {
			t.Error("duplicate name accepted")
		}
		if _, err := os.Stat(path); err == nil {
			t.Error("archive visible before Commit")
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		f, err := OpenNpz(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Names(); !reflect.DeepEqual(got, []string{"attn", "ids"}) {
			t.Errorf("names %v", got)
		}
		h, err := f.Header("attn")
		if err != nil || !reflect.DeepEqual(h.Shape, []int{1, 2, 2}) {
			t.Errorf("header %+v, %v", h, err)
		}
		f.Close()
		all, err := ReadNpz(path)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(all["attn"].F32, []float32{1, 0, 0.25, 0.75}) || !reflect.DeepEqual(all["ids"].I64, []int64{5, 6}) {
			t.Errorf("compress=%v: read back %+v %+v", compress, all["attn"], all["ids"])
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.npz")
	os.WriteFile(bad, []byte("not a zip"), 0o644)
	if _, err := OpenNpz(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad archive: %v", err)
	}
}

func FuzzNpyHeader(f *testing.F) {
	f.Add(NpyHeaderBytes(NpyFloat32, []int{2, 3}))
	f.Add(NpyHeaderBytes(NpyInt64, []int{5}))
	f.Add(npyFile("<f4", "True", "(2, 3)", nil))
	f.Add(npyFile(">f8", "False", "()", make([]byte, 8)))
	f.Add(npyFile("|b1", "False", "(3L,)", []byte{1, 0, 1}))
	f.Add([]byte("\x93NUMPY\x02\x00\x10\x00\x00\x00{'descr': '<f4'}"))
	f.Add([]byte("\x93NUMPY\x01\x00\x05\x00{'a':"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ReadNpyHeader(bytes.NewReader(b))
		if err != nil {
			return
		}
		if h.DType.Size() == 0 || h.FortranOrder || h.NumElements() < 0 {
			t.Fatalf("accepted invalid header %+v", h)
		}
		// Reading data must fail cleanly or succeed with the announced size.
		a, err := ReadNpy(bytes.NewReader(b))
		if err == nil && a.NumElements() != h.NumElements() {
			t.Fatalf("read %d elements, header says %d", a.NumElements(), h.NumElements())
		}
	})
}

// numpyPython returns Debian's python3 when it has numpy; the test skips otherwise
// (and fails under CI, where .ci/apt-packages installs python3-numpy).
func numpyPython(t *testing.T) string {
	t.Helper()
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import numpy").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s with numpy is needed under CI (Debian package python3-numpy): %v", py, err)
		}
		t.Skipf("numpy compatibility not checked: %s cannot import numpy (install Debian's python3-numpy)", py)
	}
	return py
}

func TestNpyNumpyCompat(t *testing.T) {
	py := numpyPython(t)
	dir := t.TempDir()
	// numpy writes, Go reads.
	script := `
import numpy as np, sys, os
d = sys.argv[1]
x = (np.arange(2*3*4*5, dtype=np.float32).reshape(2,3,4,5) / 7).astype(np.float32)
np.save(os.path.join(d, 'f4.npy'), x)
np.save(os.path.join(d, 'f8.npy'), x.astype(np.float64))
np.save(os.path.join(d, 'f2.npy'), x.astype(np.float16))
np.save(os.path.join(d, 'i8.npy'), np.array([[1, -2], [3, 1 << 40]], dtype=np.int64))
np.save(os.path.join(d, 'i4.npy'), np.array([7, -8], dtype=np.int32))
np.save(os.path.join(d, 'b1.npy'), np.array([True, False]))
np.save(os.path.join(d, 'fortran.npy'), np.asfortranarray(np.ones((2, 3), dtype=np.float32)))
np.save(os.path.join(d, 'big.npy'), np.array([1.5, 2.5], dtype='>f4'))
np.lib.format.write_array(open(os.path.join(d, 'v2.npy'), 'wb'), x, version=(2, 0))
np.savez(os.path.join(d, 'plain.npz'), a=x, ids=np.array([1, 2], dtype=np.int64))
np.savez_compressed(os.path.join(d, 'deflate.npz'), a=x)
`
	if out, err := exec.Command(py, "-c", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("numpy: %v\n%s", err, out)
	}
	want := make([]float32, 120)
	for i := range want {
		want[i] = float32(i) / 7
	}
	for _, name := range []string{"f4", "f8", "f2", "v2"} {
		a, err := ReadNpyFile(filepath.Join(dir, name+".npy"))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a.Shape, []int{2, 3, 4, 5}) {
			t.Fatalf("%s: shape %v", name, a.Shape)
		}
		got := a.Float32s()
		tol := float32(0)
		if name == "f2" {
			tol = 0.01
		}
		for i := range want {
			if d := got[i] - want[i]; d > tol || d < -tol {
				t.Fatalf("%s[%d] = %g, want %g", name, i, got[i], want[i])
			}
		}
	}
	if a, err := ReadNpyFile(filepath.Join(dir, "i8.npy")); err != nil || !reflect.DeepEqual(a.I64, []int64{1, -2, 3, 1 << 40}) {
		t.Errorf("i8: %+v %v", a, err)
	}
	if a, err := ReadNpyFile(filepath.Join(dir, "i4.npy")); err != nil || !reflect.DeepEqual(a.I32, []int32{7, -8}) {
		t.Errorf("i4: %+v %v", a, err)
	}
	if a, err := ReadNpyFile(filepath.Join(dir, "b1.npy")); err != nil || !reflect.DeepEqual(a.Bool, []bool{true, false}) {
		t.Errorf("b1: %+v %v", a, err)
	}
	if a, err := ReadNpyFile(filepath.Join(dir, "big.npy")); err != nil || !reflect.DeepEqual(a.F32, []float32{1.5, 2.5}) {
		t.Errorf("big-endian: %+v %v", a, err)
	}
	if _, err := ReadNpyFile(filepath.Join(dir, "fortran.npy")); err == nil || !strings.Contains(err.Error(), "fortran_order") {
		t.Errorf("fortran order: %v", err)
	}
	for _, name := range []string{"plain", "deflate"} {
		m, err := ReadNpz(filepath.Join(dir, name+".npz"))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m["a"].F32, want) {
			t.Errorf("%s.npz: array a differs", name)
		}
	}

	// Go writes, numpy reads and checks.
	if err := WriteNpyFile(filepath.Join(dir, "go4.npy"), []int{2, 3, 4, 5}, want); err != nil {
		t.Fatal(err)
	}
	half := make(NpyHalf, len(want))
	copy(half, want)
	if err := WriteNpyFile(filepath.Join(dir, "go2.npy"), []int{2, 3, 4, 5}, half); err != nil {
		t.Fatal(err)
	}
	if err := WriteNpyFile(filepath.Join(dir, "go8.npy"), []int{3}, []float64{0.1, 0.2, 0.3}); err != nil {
		t.Fatal(err)
	}
	if err := WriteNpyFile(filepath.Join(dir, "goi.npy"), []int{2}, []int{50256, -1}); err != nil {
		t.Fatal(err)
	}
	if err := WriteNpyFile(filepath.Join(dir, "gob.npy"), []int{2}, []bool{false, true}); err != nil {
		t.Fatal(err)
	}
	w, err := CreateNpz(filepath.Join(dir, "go.npz"), true)
	if err != nil {
		t.Fatal(err)
	}
	w.Write("a", []int{2, 3, 4, 5}, want)
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	check := `
import numpy as np, sys, os
d = sys.argv[1]
x = (np.arange(120, dtype=np.float32).reshape(2,3,4,5) / 7).astype(np.float32)
a = np.load(os.path.join(d, 'go4.npy'))
assert a.dtype == np.float32 and a.shape == (2,3,4,5) and (a == x).all(), a
h = np.load(os.path.join(d, 'go2.npy'))
assert h.dtype == np.float16 and (h == x.astype(np.float16)).all(), 'float16 rounding differs from numpy'
assert (np.load(os.path.join(d, 'go8.npy')) == np.array([0.1, 0.2, 0.3])).all()
i = np.load(os.path.join(d, 'goi.npy'))
assert i.dtype == np.int64 and i.tolist() == [50256, -1]
b = np.load(os.path.join(d, 'gob.npy'))
assert b.dtype == np.bool_ and b.tolist() == [False, True]
z = np.load(os.path.join(d, 'go.npz'))
assert (z['a'] == x).all()
r = np.random.default_rng(1).standard_normal(100000).astype(np.float32) * 1000
r.astype(np.float32).tofile(os.path.join(d, 'r.f32'))
r.astype(np.float16).tofile(os.path.join(d, 'r.f16'))
print('ok')
`
	if out, err := exec.Command(py, "-c", check, dir).CombinedOutput(); err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("numpy check: %v\n%s", err, out)
	}
	// float32 -> float16 rounding agrees with numpy on 100,000 random values.
	rf, _ := os.ReadFile(filepath.Join(dir, "r.f32"))
	rh, _ := os.ReadFile(filepath.Join(dir, "r.f16"))
	if len(rf) != 400000 || len(rh) != 200000 {
		t.Fatalf("random files: %d and %d bytes", len(rf), len(rh))
	}
	for i := range 100000 {
		f := math.Float32frombits(binary.LittleEndian.Uint32(rf[4*i:]))
		if got, want := NpyFloat32ToHalf(f), binary.LittleEndian.Uint16(rh[2*i:]); got != want {
			t.Fatalf("NpyFloat32ToHalf(%g) = %#04x, numpy %#04x", f, got, want)
		}
	}
}
