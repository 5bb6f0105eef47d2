package derive

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestNPYRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, shape := range [][]int{{3}, {2, 3}, {2, 1, 2, 2}} {
		src := NewTensor(shape...)
		for i := range src.Data {
			src.Data[i] = float64(i) - 0.5
		}
		p := filepath.Join(dir, "x.npy")
		if err := writeNPY(p, src); err != nil {
			t.Fatal(err)
		}
		got, err := readNPY(p)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Shape, shape) || !reflect.DeepEqual(got.Data, src.Data) {
			t.Errorf("round trip of %v gave %v %v", shape, got.Shape, got.Data)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "x.npy"))
	if !bytes.Contains(raw, []byte("'descr': '<f8'")) {
		t.Errorf("outputs are not float64 .npy: %q", raw[:64])
	}
	if _, err := readNPY(filepath.Join(dir, "missing.npy")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist (derive relies on it)", err)
	}
}
