package store

import (
	"os"
	"path/filepath"
	"testing"
)

// ReadMetricsParquet on arbitrary bytes returns rows or an error, never panics nor
// allocates what a corrupt footer claims; seeds are a valid table, its truncations, a
// corrupted copy and a footer length beyond the file.
func FuzzReadMetricsParquet(f *testing.F) {
	dir := f.TempDir()
	if err := WriteMetrics(dir, sampleMetricRows()); err != nil {
		f.Fatal(err)
	}
	valid, err := os.ReadFile(filepath.Join(dir, MetricsParquet))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(valid[len(valid)/2:])
	f.Add([]byte("PAR1PAR1"))
	f.Add([]byte{})
	corrupt := append([]byte(nil), valid...)
	for i := 8; i < len(corrupt)-8; i += 7 {
		corrupt[i] ^= 0x5a
	}
	f.Add(corrupt)
	huge := append([]byte(nil), valid...) // footer length beyond the file
	copy(huge[len(huge)-8:], []byte{0xff, 0xff, 0xff, 0x7f})
	f.Add(huge)
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "m.parquet")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		rows, err := ReadMetricsParquet(path)
		if err != nil && rows != nil {
			t.Fatalf("error %v with %d rows", err, len(rows))
		}
	})
}
