package store

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sampleMetricRows() []MetricRow {
	return []MetricRow{
		{Sample: "s1", Pass: "entropy", Layer: 1, Head: 0, Metric: "entropy_mean", Value: 0.25},
		{Sample: "s0", Pass: "entropy", Layer: 0, Head: MetricAll, Metric: "entropy_mean", Value: 1.0 / 3},
		{Sample: "s0", Pass: "entropy", Layer: 0, Head: 2, Metric: "entropy_mean", Value: math.NaN()},
		{Sample: "s,\"odd\"", Pass: "js", Layer: MetricAll, Head: MetricAll, Metric: "max", Value: math.Inf(1)},
	}
}

func sameRows(t *testing.T, got, want []MetricRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		gv, wv := g.Value, w.Value
		g.Value, w.Value = 0, 0
		if g != w || !(gv == wv || math.IsNaN(gv) && math.IsNaN(wv)) {
			t.Errorf("row %d: got %+v value %v, want %+v value %v", i, g, gv, w, wv)
		}
	}
}

func TestMetricsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	rows := sampleMetricRows()
	if err := WriteMetrics(dir, rows); err != nil {
		t.Fatal(err)
	}
	want := []MetricRow{rows[3], rows[1], rows[2], rows[0]} // sorted: `s,"odd"` < s0 < s1
	got, err := ReadMetricsCSV(filepath.Join(dir, MetricsCSV))
	if err != nil {
		t.Fatal(err)
	}
	sameRows(t, got, want)
	got, err = ReadMetricsParquet(filepath.Join(dir, MetricsParquet))
	if err != nil {
		t.Fatal(err)
	}
	sameRows(t, got, want)

	csvBytes, _ := os.ReadFile(filepath.Join(dir, MetricsCSV))
	wantCSV := "sample,pass,layer,head,metric,value\n" +
		"\"s,\"\"odd\"\"\",js,-1,-1,max,inf\n" +
		"s0,entropy,0,-1,entropy_mean,0.3333333333333333\n" +
		"s0,entropy,0,2,entropy_mean,NaN\n" +
		"s1,entropy,1,0,entropy_mean,0.25\n"
	if string(csvBytes) != wantCSV {
		t.Errorf("metrics.csv =\n%s\nwant\n%s", csvBytes, wantCSV)
	}

	// Writing the same rows in another order gives byte-identical files.
	pq1, _ := os.ReadFile(filepath.Join(dir, MetricsParquet))
	if err := WriteMetrics(dir, []MetricRow{rows[2], rows[0], rows[3], rows[1]}); err != nil {
		t.Fatal(err)
	}
	csv2, _ := os.ReadFile(filepath.Join(dir, MetricsCSV))
	pq2, _ := os.ReadFile(filepath.Join(dir, MetricsParquet))
	if !bytes.Equal(csvBytes, csv2) || !bytes.Equal(pq1, pq2) {
		t.Error("rewriting the same rows changed the files")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("folder holds %d entries, want the 2 tables", len(ents))
	}
}

func TestMetricsAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	w, err := CreateMetrics(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(sampleMetricRows()...); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("aborted table left %d files", len(ents))
	}
}

func TestReadMetricsCSVErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"header", "sample,pass,layer,head,metric,val\n", "line 1: header"},
		{"layer", "sample,pass,layer,head,metric,value\na,b,x,0,m,1\n", "line 2: column layer"},
		{"head", "sample,pass,layer,head,metric,value\na,b,0,0.5,m,1\n", "line 2: column head"},
		{"value", "sample,pass,layer,head,metric,value\na,b,0,0,m,1\na,b,0,0,m,one\n", "line 3: column value"},
		{"fields", "sample,pass,layer,head,metric,value\na,b,0\n", "wrong number of fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "m.csv")
			os.WriteFile(p, []byte(tt.body), 0o644)
			_, err := ReadMetricsCSV(p)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("err = %v, want one naming %s and %q", err, p, tt.want)
			}
		})
	}
}

func TestReadMetricsParquetErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.parquet")
	os.WriteFile(p, []byte("sample,pass\n"), 0o644)
	if _, err := ReadMetricsParquet(p); err == nil || !strings.Contains(err.Error(), "not a Parquet file") {
		t.Errorf("err = %v, want not a Parquet file", err)
	}
}

// FuzzReadMetricsCSV: any input gives rows or an error, never a panic.
func FuzzReadMetricsCSV(f *testing.F) {
	f.Add("sample,pass,layer,head,metric,value\ns,p,0,-1,m,NaN\n")
	f.Add("sample,pass,layer,head,metric,value\n\"a\nb\",p,1,2,m,1e-300\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, body string) {
		readMetricsCSV("fuzz.csv", strings.NewReader(body))
	})
}
