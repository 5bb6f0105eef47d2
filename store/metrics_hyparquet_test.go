package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/attnscope/attnscope/internal/refdata"
)

// hyparquetDir returns tools/oracles with hyparquet installed, skipping the test (or
// failing it under CI, where .ci/run runs `npm ci` there) when node or the module is
// missing.
func hyparquetDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(refdata.RepoRoot(), "tools", "oracles")
	var missing string
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node is not on PATH"
	} else if _, err := os.Stat(filepath.Join(dir, "node_modules", "hyparquet", "package.json")); err != nil {
		missing = "tools/oracles/node_modules/hyparquet is absent (run `npm ci` in tools/oracles)"
	}
	if missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("hyparquet Parquet oracle unavailable under CI: %s", missing)
		}
		t.Skipf("hyparquet Parquet oracle unavailable: %s", missing)
	}
	return dir
}

// hyparquetTable is what tools/oracles/parquet.js prints.
type hyparquetTable struct {
	Columns []struct {
		Name           string  `json:"name"`
		Type           *string `json:"type"`
		ConvertedType  *string `json:"converted_type"`
		LogicalType    *string `json:"logical_type"`
		RepetitionType *string `json:"repetition_type"`
	} `json:"columns"`
	NumRows int `json:"num_rows"`
	Rows    [][]struct {
		T string `json:"t"`
		V string `json:"v"`
	} `json:"rows"`
}

func readWithHyparquet(t *testing.T, oracles, path string) hyparquetTable {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "parquet.js", path)
	cmd.Dir = oracles
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node parquet.js %s: %v\n%s", path, err, stderr)
	}
	var tab hyparquetTable
	if err := json.Unmarshal(out, &tab); err != nil {
		t.Fatalf("parquet.js output: %v", err)
	}
	return tab
}

// hyparquetMetricRows is a metrics table that exercises the encodings: the hand-made
// rows (NaN, +Inf, a quoted sample name), every float class (-0, subnormals, extremes,
// -Inf) and enough random rows for several data pages and dictionary entries.
func hyparquetMetricRows() []MetricRow {
	rows := sampleMetricRows()
	special := []float64{0, math.Copysign(0, -1), math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64,
		math.MaxFloat64, -math.MaxFloat64, math.Inf(-1), 1e-300, 0.1, 2.5e-8, 1 - 1e-16}
	for i, v := range special {
		rows = append(rows, MetricRow{Sample: "spécial-ü", Pass: "edge", Layer: int64(i), Head: MetricAll, Metric: "value", Value: v})
	}
	rng := rand.New(rand.NewPCG(4, 2))
	metrics := []string{"entropy_mean", "max_weight", "sparsity", "received", "jsd"}
	for s := range 20 {
		for l := range 12 {
			for h := -1; h < 12; h++ {
				m := metrics[rng.IntN(len(metrics))]
				rows = append(rows, MetricRow{
					Sample: fmt.Sprintf("sample-%03d", s), Pass: "p" + strconv.Itoa(l%3),
					Layer: int64(l), Head: int64(h), Metric: m,
					Value: rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20)),
				})
			}
		}
	}
	return rows
}

// hyparquet (npm hyparquet@1.31.5, an independent JavaScript Parquet reader) reads
// RUN/metrics.parquet as written by WriteMetrics: column names, physical and logical
// types, and every value bit for bit.
func TestMetricsParquetHyparquet(t *testing.T) {
	oracles := hyparquetDir(t)
	dir := t.TempDir()
	rows := hyparquetMetricRows()
	if err := WriteMetrics(dir, rows); err != nil {
		t.Fatal(err)
	}
	tab := readWithHyparquet(t, oracles, filepath.Join(dir, MetricsParquet))

	// Column order, names and types: strings are UTF-8 BYTE_ARRAY (pandas object),
	// layer and head INT64 (pandas int64), value DOUBLE (pandas float64); none nullable.
	wantCols := []struct{ name, typ, logical string }{
		{"sample", "BYTE_ARRAY", "STRING"}, {"pass", "BYTE_ARRAY", "STRING"},
		{"layer", "INT64", "INTEGER"}, {"head", "INT64", "INTEGER"},
		{"metric", "BYTE_ARRAY", "STRING"}, {"value", "DOUBLE", ""},
	}
	if len(tab.Columns) != len(wantCols) {
		t.Fatalf("hyparquet sees %d columns, want %d (%q)", len(tab.Columns), len(wantCols), MetricColumns)
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	for i, c := range tab.Columns {
		w := wantCols[i]
		if c.Name != w.name || str(c.Type) != w.typ || str(c.LogicalType) != w.logical || str(c.RepetitionType) != "REQUIRED" {
			t.Errorf("column %d: hyparquet sees name %q type %q logical %q repetition %q, want %q %q %q REQUIRED",
				i, c.Name, str(c.Type), str(c.LogicalType), str(c.RepetitionType), w.name, w.typ, w.logical)
		}
	}

	want := slices.Clone(rows) // WriteMetrics writes rows in this order
	slices.SortStableFunc(want, CompareMetricRows)
	if tab.NumRows != len(want) || len(tab.Rows) != len(want) {
		t.Fatalf("hyparquet reads %d rows (metadata %d), want %d", len(tab.Rows), tab.NumRows, len(want))
	}
	wantTags := []string{"string", "string", "bigint", "bigint", "string", "number"}
	for i, r := range tab.Rows {
		if len(r) != len(wantTags) {
			t.Fatalf("row %d: %d values, want %d", i, len(r), len(wantTags))
		}
		for j, v := range r {
			if v.T != wantTags[j] {
				t.Fatalf("row %d column %s: JavaScript type %s, want %s", i, MetricColumns[j], v.T, wantTags[j])
			}
		}
		layer, err1 := strconv.ParseInt(r[2].V, 10, 64)
		head, err2 := strconv.ParseInt(r[3].V, 10, 64)
		value, err3 := strconv.ParseFloat(r[5].V, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("row %d: unparsable values %q %q %q", i, r[2].V, r[3].V, r[5].V)
		}
		got := MetricRow{Sample: r[0].V, Pass: r[1].V, Layer: layer, Head: head, Metric: r[4].V, Value: value}
		w := want[i]
		sameValue := math.Float64bits(got.Value) == math.Float64bits(w.Value) || math.IsNaN(got.Value) && math.IsNaN(w.Value)
		gv, wv := got.Value, w.Value
		got.Value, w.Value = 0, 0
		if got != w || !sameValue {
			t.Errorf("row %d: hyparquet reads %+v value %v, want %+v value %v", i, got, gv, w, wv)
		}
	}
}
