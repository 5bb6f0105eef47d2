package checkpoint

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
)

func TestRoundTripDTypes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.safetensors")
	vals := []float32{0, 1, -2.5, 3.140625, 1e-3, 65504, -1e-7, 0.1}
	tensors := []TensorInfo{
		{Name: "a", DType: F32, Shape: []int{2, 4}},
		{Name: "b", DType: F16, Shape: []int{8}},
		{Name: "c", DType: BF16, Shape: []int{4, 2}},
		{Name: "empty", DType: F32, Shape: []int{0, 3}},
	}
	if err := WriteSafetensors(path, tensors, [][]float32{vals, vals, vals, nil}, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	s, err := OpenSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Metadata["k"] != "v" {
		t.Errorf("metadata = %v", s.Metadata)
	}
	tests := []struct {
		name string
		tol  func(v float32) float64
	}{
		{"a", func(float32) float64 { return 0 }},
		{"b", func(v float32) float64 { return math.Max(math.Abs(float64(v))*1.0/2048, 6e-8) }},
		{"c", func(v float32) float64 { return math.Abs(float64(v)) / 256 }},
	}
	for _, tc := range tests {
		got, shape, err := s.Float32(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 8 || shape[0]*max(1, shapeTail(shape)) != 8 {
			t.Fatalf("%s: got %d values shape %v", tc.name, len(got), shape)
		}
		for i, v := range vals {
			if d := math.Abs(float64(got[i] - v)); d > tc.tol(v) {
				t.Errorf("%s[%d] = %g, want %g (diff %g)", tc.name, i, got[i], v, d)
			}
		}
	}
	if _, sh, err := s.Float32("empty"); err != nil || len(sh) != 2 {
		t.Errorf("empty: %v %v", sh, err)
	}
	// data section starts 8-byte aligned
	b, _ := os.ReadFile(path)
	if n := binary.LittleEndian.Uint64(b); (8+n)%8 != 0 {
		t.Errorf("header length %d leaves the data unaligned", n)
	}
}

func shapeTail(s []int) int {
	n := 1
	for _, d := range s[1:] {
		n *= d
	}
	return n
}

func TestHalfConversions(t *testing.T) {
	tests := []struct {
		f float32
		h uint16
	}{
		{0, 0}, {1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {1e6, 0x7c00},
		{float32(math.Inf(-1)), 0xfc00}, {5.960464477539063e-08, 0x0001}, {6.103515625e-05, 0x0400},
		{1.0009765625, 0x3c01}, {1.00048828125, 0x3c00}, // tie rounds to even
	}
	for _, tc := range tests {
		if got := Float32ToHalf(tc.f); got != tc.h {
			t.Errorf("Float32ToHalf(%g) = %#04x, want %#04x", tc.f, got, tc.h)
		}
		if tc.f <= 65504 && tc.f >= -65504 && tc.f != 1.00048828125 {
			if got := HalfToFloat32(tc.h); got != tc.f {
				t.Errorf("HalfToFloat32(%#04x) = %g, want %g", tc.h, got, tc.f)
			}
		}
	}
	if got := Float32ToBF16(1.00390625); got != 0x3f80 { // tie → even
		t.Errorf("Float32ToBF16 tie = %#04x", got)
	}
	if got := Float32ToBF16(-3); got != 0xc040 {
		t.Errorf("Float32ToBF16(-3) = %#04x", got)
	}
}

// rawFile builds a safetensors file from a header string and data length.
func rawFile(t *testing.T, header string, dataLen int, declared uint64) string {
	t.Helper()
	var b []byte
	b = binary.LittleEndian.AppendUint64(b, declared)
	b = append(b, header...)
	b = append(b, make([]byte, dataLen)...)
	p := filepath.Join(t.TempDir(), "bad.safetensors")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadFiles(t *testing.T) {
	good := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	tests := []struct {
		name, header string
		dataLen      int
		declared     int // header length written; -1: len(header)
		want         string
	}{
		{"truncated data", good, 4, -1, "outside the data section"},
		{"header beyond file", good, 8, 1000, "beyond the end"},
		{"huge header", good, 8, 1 << 40, "exceeds the limit"},
		{"overlap", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 12, -1, "overlap"},
		{"out of range", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, 8, -1, "outside the data section"},
		{"unknown dtype", `{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}`, 8, -1, "unknown dtype"},
		{"size mismatch", `{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, 8, -1, "need 12"},
		{"not json", `{"a":`, 8, -1, "not a JSON object"},
		{"negative dim", `{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, 8, -1, "invalid dimension"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := uint64(len(tc.header))
			if tc.declared >= 0 {
				d = uint64(tc.declared)
			}
			p := rawFile(t, tc.header, tc.dataLen, d)
			_, err := OpenSafetensors(p)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not name the file and contain %q", err, tc.want)
			}
		})
	}
	short := filepath.Join(t.TempDir(), "short.safetensors")
	os.WriteFile(short, []byte{1, 2, 3}, 0o644)
	if _, err := OpenSafetensors(short); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("short file: %v", err)
	}
}

func TestWriterErrors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "w.safetensors")
	w, err := CreateSafetensors(p, []TensorInfo{{Name: "a", DType: F32, Shape: []int{2}}, {Name: "b", DType: F16, Shape: []int{1}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write("b", []float32{1}); err == nil {
		t.Error("out-of-order write accepted")
	}
	if err := w.Commit(); err == nil {
		t.Error("commit after failure succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left files behind: %v", ents)
	}
	w, _ = CreateSafetensors(p, []TensorInfo{{Name: "a", DType: F32, Shape: []int{2}}}, nil)
	if err := w.Write("a", []float32{1, 2, 3}); err == nil {
		t.Error("wrong length accepted")
	}
	w, _ = CreateSafetensors(p, []TensorInfo{{Name: "a", DType: F32, Shape: []int{2}}, {Name: "b", DType: F32, Shape: []int{2}}}, nil)
	w.Write("a", []float32{1, 2})
	if err := w.Commit(); err == nil || !strings.Contains(err.Error(), "only 1 of 2") {
		t.Errorf("incomplete commit: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left files behind: %v", ents)
	}
	if _, err := CreateSafetensors(p, []TensorInfo{{Name: "a", DType: "I64", Shape: []int{2}}}, nil); err == nil {
		t.Error("I64 accepted by writer")
	}
}

func TestShardedWeights(t *testing.T) {
	dir := t.TempDir()
	if err := WriteSafetensors(filepath.Join(dir, "s1.safetensors"), []TensorInfo{{Name: "x", DType: F32, Shape: []int{2}}}, [][]float32{{1, 2}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := WriteSafetensors(filepath.Join(dir, "s2.safetensors"), []TensorInfo{{Name: "y", DType: BF16, Shape: []int{1}}}, [][]float32{{3}}, nil); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(`{"metadata":{},"weight_map":{"x":"s1.safetensors","y":"s2.safetensors"}}`), 0o644)
	w, err := OpenWeights(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if y, err := w.Float32("y", []int{1}); err != nil || y[0] != 3 {
		t.Errorf("y = %v, %v", y, err)
	}
	if _, err := w.Float32("x", []int{3}); err == nil || !strings.Contains(err.Error(), "expected [3]") {
		t.Errorf("wrong shape: %v", err)
	}
	if _, err := w.Float32("z", nil); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing tensor: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(`{"weight_map":{"x":"s2.safetensors"}}`), 0o644)
	if _, err := OpenWeights(dir); err == nil || !strings.Contains(err.Error(), "not in shard") {
		t.Errorf("bad index: %v", err)
	}
}

func TestReadReference(t *testing.T) {
	dir := refdata.Path(t, "models", "tiny-gpt2")
	w, err := OpenWeights(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Float32("transformer.wte.weight", []int{4096, 64}); err != nil {
		t.Error(err)
	}
	s, err := OpenSafetensors(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ids, shape, err := s.Int64("case0.input_ids")
	if err != nil || len(shape) != 1 || len(ids) != shape[0] {
		t.Errorf("case0.input_ids: %v %v %v", ids, shape, err)
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add([]byte(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`), int64(8))
	f.Add([]byte(`{"__metadata__":{"x":"y"},"a":{"dtype":"BF16","shape":[],"data_offsets":[0,2]}}`), int64(2))
	f.Add([]byte(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[4],"data_offsets":[4,12]}}`), int64(12))
	f.Add([]byte(`{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}`), int64(8))
	f.Add([]byte(`[]`), int64(0))
	f.Fuzz(func(t *testing.T, hdr []byte, dataLen int64) {
		if dataLen < 0 {
			dataLen = -dataLen
		}
		infos, _, err := ParseHeader(hdr, dataLen)
		if err != nil {
			return
		}
		var end int64
		for _, ti := range infos {
			if ti.Begin < 0 || ti.End > dataLen || ti.End-ti.Begin != int64(ti.NumElements()*ti.DType.Size()) {
				t.Fatalf("accepted invalid tensor %+v (data %d)", ti, dataLen)
			}
			if ti.End > ti.Begin {
				if ti.Begin < end {
					t.Fatalf("accepted overlapping tensor %+v", ti)
				}
				end = ti.End
			}
		}
	})
}
