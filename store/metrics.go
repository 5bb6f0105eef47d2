package store

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/parquet-go/parquet-go"

	"github.com/attnscope/attnscope/internal/atomicfile"
)

// MetricsCSV and MetricsParquet are the file names of a run's metrics table.
const (
	MetricsCSV     = "metrics.csv"
	MetricsParquet = "metrics.parquet"
)

// MetricAll is the Layer or Head of a metric that is not tied to one layer or head
// (a whole-sample value, or a value over all heads of a layer).
const MetricAll = -1

// MetricRow is one row of a run's metrics table: the value of a scalar metric computed
// by a derive pass for one sample, layer and head. Layer and Head are 0-based, or
// MetricAll. pandas reads both files of the table: pd.read_csv("metrics.csv"),
// pd.read_parquet("metrics.parquet").
type MetricRow struct {
	Sample string  `parquet:"sample,dict"`
	Pass   string  `parquet:"pass,dict"`
	Layer  int64   `parquet:"layer"`
	Head   int64   `parquet:"head"`
	Metric string  `parquet:"metric,dict"`
	Value  float64 `parquet:"value"`
}

// MetricColumns are the columns of the metrics table, in file order.
var MetricColumns = []string{"sample", "pass", "layer", "head", "metric", "value"}

// CompareMetricRows orders rows by sample, pass, layer, head and metric, the order in
// which tables are written so that reruns give identical files.
func CompareMetricRows(a, b MetricRow) int {
	return cmp.Or(
		cmp.Compare(a.Sample, b.Sample),
		cmp.Compare(a.Pass, b.Pass),
		cmp.Compare(a.Layer, b.Layer),
		cmp.Compare(a.Head, b.Head),
		cmp.Compare(a.Metric, b.Metric),
	)
}

// MetricsWriter streams rows into both files of a metrics table (CSV and Parquet).
// Nothing is visible under the final names until Commit; Abort (or a failed Commit)
// leaves any previous table untouched.
type MetricsWriter struct {
	csvFile, pqFile *atomicfile.File
	csv             *csv.Writer
	pq              *parquet.GenericWriter[MetricRow]
	rec             []string
	done            bool
}

// CreateMetrics starts writing dir/metrics.csv and dir/metrics.parquet.
func CreateMetrics(dir string) (*MetricsWriter, error) {
	cf, err := atomicfile.Create(filepath.Join(dir, MetricsCSV))
	if err != nil {
		return nil, err
	}
	pf, err := atomicfile.Create(filepath.Join(dir, MetricsParquet))
	if err != nil {
		cf.Abort()
		return nil, err
	}
	w := &MetricsWriter{
		csvFile: cf, pqFile: pf,
		csv: csv.NewWriter(cf),
		pq:  parquet.NewGenericWriter[MetricRow](pf, parquet.Compression(&parquet.Snappy)),
		rec: make([]string, len(MetricColumns)),
	}
	if err := w.csv.Write(MetricColumns); err != nil {
		w.Abort()
		return nil, fmt.Errorf("write %s: %w", cf.Name(), err)
	}
	return w, nil
}

// Write appends rows to both files.
func (w *MetricsWriter) Write(rows ...MetricRow) error {
	for _, r := range rows {
		w.rec[0], w.rec[1] = r.Sample, r.Pass
		w.rec[2] = strconv.FormatInt(r.Layer, 10)
		w.rec[3] = strconv.FormatInt(r.Head, 10)
		w.rec[4], w.rec[5] = r.Metric, formatValue(r.Value)
		if err := w.csv.Write(w.rec); err != nil {
			return fmt.Errorf("write %s: %w", w.csvFile.Name(), err)
		}
	}
	if _, err := w.pq.Write(rows); err != nil {
		return fmt.Errorf("write %s: %w", w.pqFile.Name(), err)
	}
	return nil
}

// Commit finishes both files and publishes them under their final names.
func (w *MetricsWriter) Commit() error {
	if w.done {
		return errors.New("metrics table already committed or aborted")
	}
	w.csv.Flush()
	if err := w.csv.Error(); err != nil {
		w.Abort()
		return fmt.Errorf("write %s: %w", w.csvFile.Name(), err)
	}
	if err := w.pq.Close(); err != nil {
		w.Abort()
		return fmt.Errorf("write %s: %w", w.pqFile.Name(), err)
	}
	w.done = true
	if err := w.pqFile.Commit(); err != nil {
		w.csvFile.Abort()
		return err
	}
	return w.csvFile.Commit()
}

// Abort discards both files; safe after Commit.
func (w *MetricsWriter) Abort() {
	w.done = true
	w.csvFile.Abort()
	w.pqFile.Abort()
}

// WriteMetrics writes rows, sorted with CompareMetricRows, as dir/metrics.csv and
// dir/metrics.parquet.
func WriteMetrics(dir string, rows []MetricRow) error {
	rows = slices.Clone(rows)
	slices.SortStableFunc(rows, CompareMetricRows)
	w, err := CreateMetrics(dir)
	if err != nil {
		return err
	}
	defer w.Abort()
	if err := w.Write(rows...); err != nil {
		return err
	}
	return w.Commit()
}

// formatValue writes the shortest decimal that reads back as the same float64; NaN and
// infinities are spelled as pandas reads them.
func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// ReadMetricsCSV reads a metrics table written by MetricsWriter (or by pandas with the
// same columns). A wrong header or field is an error naming the file, line and column.
func ReadMetricsCSV(path string) ([]MetricRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	defer f.Close()
	return readMetricsCSV(path, bufio.NewReader(f))
}

func readMetricsCSV(path string, r io.Reader) ([]MetricRow, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(MetricColumns)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	if !slices.Equal(head, MetricColumns) {
		return nil, fmt.Errorf("%s: line 1: header %q, want %q", path, head, MetricColumns)
	}
	var rows []MetricRow
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		line, _ := cr.FieldPos(0)
		row := MetricRow{Sample: rec[0], Pass: rec[1], Metric: rec[4]}
		if row.Layer, err = strconv.ParseInt(rec[2], 10, 64); err != nil {
			return nil, fmt.Errorf("%s: line %d: column layer: %q is not an integer", path, line, rec[2])
		}
		if row.Head, err = strconv.ParseInt(rec[3], 10, 64); err != nil {
			return nil, fmt.Errorf("%s: line %d: column head: %q is not an integer", path, line, rec[3])
		}
		if row.Value, err = strconv.ParseFloat(rec[5], 64); err != nil {
			return nil, fmt.Errorf("%s: line %d: column value: %q is not a number", path, line, rec[5])
		}
		rows = append(rows, row)
	}
}

// ReadMetricsParquet reads a metrics table written by MetricsWriter (or by pandas with
// the same columns and types). A corrupt file gives an error naming it: parquet-go panics
// on some malformed footers and pages, which is recovered, and rows are read in chunks,
// so a row count in a corrupt footer allocates nothing.
func ReadMetricsParquet(path string) (rows []MetricRow, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			rows, err = nil, fmt.Errorf("%s: not a valid Parquet metrics table: %v", path, p)
		}
	}()
	if err := checkParquetFrame(f, st.Size()); err != nil {
		return nil, fmt.Errorf("%s: not a Parquet file: %w", path, err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: not a Parquet file: %w", path, err)
	}
	for _, name := range MetricColumns {
		if _, ok := pf.Schema().Lookup(name); !ok {
			return nil, fmt.Errorf("%s: no column %q (want columns %q)", path, name, MetricColumns)
		}
	}
	r := parquet.NewGenericReader[MetricRow](pf)
	defer r.Close()
	buf := make([]MetricRow, 4096)
	for {
		n, err := r.Read(buf)
		rows = append(rows, buf[:n]...)
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("%s: the Parquet reader made no progress", path)
		}
	}
}

// checkParquetFrame checks the frame of a Parquet file, "PAR1" at both ends and a footer
// length that fits in the file, before parquet-go allocates a buffer of that length.
func checkParquetFrame(f io.ReaderAt, size int64) error {
	var head, tail [8]byte
	if size < 12 {
		return fmt.Errorf("%d bytes, too short", size)
	}
	if _, err := f.ReadAt(head[:4], 0); err != nil {
		return err
	}
	if _, err := f.ReadAt(tail[:], size-8); err != nil {
		return err
	}
	if string(head[:4]) != "PAR1" || string(tail[4:]) != "PAR1" {
		return errors.New(`no "PAR1" magic at its start and end`)
	}
	if n := int64(binary.LittleEndian.Uint32(tail[:4])); n > size-12 {
		return fmt.Errorf("footer length %d exceeds the file's %d bytes", n, size)
	}
	return nil
}

// WriteMetricsCSV writes rows, in the given order, as one CSV file at path (atomically),
// with the columns of the metrics table. derive uses it for the per-sample metric files
// it gathers into the run's table.
func WriteMetricsCSV(path string, rows []MetricRow) error {
	return atomicfile.WriteWith(path, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		if err := cw.Write(MetricColumns); err != nil {
			return err
		}
		rec := make([]string, len(MetricColumns))
		for _, r := range rows {
			rec[0], rec[1] = r.Sample, r.Pass
			rec[2] = strconv.FormatInt(r.Layer, 10)
			rec[3] = strconv.FormatInt(r.Head, 10)
			rec[4], rec[5] = r.Metric, formatValue(r.Value)
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	})
}
