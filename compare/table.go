package compare

import (
	"encoding/csv"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/attnscope/attnscope/internal/atomicfile"
)

// column is one output column: its name and whether Parquet stores it as a double
// (otherwise as a string).
type column struct {
	name  string
	float bool
}

// tableWriter streams rows into OUT.csv and OUT.parquet; nothing appears under the
// final names before commit.
type tableWriter struct {
	cols            []column
	csvFile, pqFile *atomicfile.File
	csv             *csv.Writer
	pq              *parquet.Writer
	pqIndex         []int // pqIndex[i] is the Parquet leaf index of column i
	rec             []string
	rows            int
}

func createTable(dir, stem string, cols []column) (*tableWriter, error) {
	seen := map[string]bool{}
	group := parquet.Group{}
	for _, c := range cols {
		if seen[c.name] {
			return nil, fmt.Errorf("output %s: column %q appears twice", stem, c.name)
		}
		seen[c.name] = true
		if c.float {
			group[c.name] = parquet.Optional(parquet.Leaf(parquet.DoubleType))
		} else {
			group[c.name] = parquet.Optional(parquet.String())
		}
	}
	schema := parquet.NewSchema("comparison", group)
	index := map[string]int{}
	for i, f := range schema.Fields() {
		index[f.Name()] = i
	}
	cf, err := atomicfile.Create(filepath.Join(dir, stem+".csv"))
	if err != nil {
		return nil, err
	}
	pf, err := atomicfile.Create(filepath.Join(dir, stem+".parquet"))
	if err != nil {
		cf.Abort()
		return nil, err
	}
	w := &tableWriter{cols: cols, csvFile: cf, pqFile: pf, csv: csv.NewWriter(cf),
		pq: parquet.NewWriter(pf, schema, parquet.Compression(&parquet.Snappy)), rec: make([]string, len(cols))}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
		w.pqIndex = append(w.pqIndex, index[c.name])
	}
	if err := w.csv.Write(names); err != nil {
		w.abort()
		return nil, err
	}
	return w, nil
}

// write appends one row; vals[i] belongs to column i.
func (w *tableWriter) write(vals []Value) error {
	row := make(parquet.Row, len(w.cols))
	for i, v := range vals {
		w.rec[i] = format(v)
		leaf := w.pqIndex[i]
		var pv parquet.Value
		switch {
		case v == nil:
			pv = parquet.Value{}.Level(0, 0, leaf)
		case w.cols[i].float:
			f, ok := toFloat(v)
			if !ok {
				return fmt.Errorf("output %s: column %s: %v is not a number", w.csvFile.Name(), w.cols[i].name, v)
			}
			pv = parquet.DoubleValue(f).Level(0, 1, leaf)
		default:
			pv = parquet.ByteArrayValue([]byte(w.rec[i])).Level(0, 1, leaf)
		}
		row[leaf] = pv
	}
	if err := w.csv.Write(w.rec); err != nil {
		return fmt.Errorf("write %s: %w", w.csvFile.Name(), err)
	}
	if _, err := w.pq.WriteRows([]parquet.Row{row}); err != nil {
		return fmt.Errorf("write %s: %w", w.pqFile.Name(), err)
	}
	w.rows++
	if w.rows%rowGroupRows == 0 { // bound memory: the writer buffers a row group
		if err := w.pq.Flush(); err != nil {
			return fmt.Errorf("write %s: %w", w.pqFile.Name(), err)
		}
	}
	return nil
}

// rowGroupRows is the number of rows per Parquet row group.
const rowGroupRows = 4096

func (w *tableWriter) commit() error {
	w.csv.Flush()
	if err := w.csv.Error(); err != nil {
		w.abort()
		return fmt.Errorf("write %s: %w", w.csvFile.Name(), err)
	}
	if err := w.pq.Close(); err != nil {
		w.abort()
		return fmt.Errorf("write %s: %w", w.pqFile.Name(), err)
	}
	if err := w.pqFile.Commit(); err != nil {
		w.csvFile.Abort()
		return err
	}
	return w.csvFile.Commit()
}

func (w *tableWriter) abort() {
	w.csvFile.Abort()
	w.pqFile.Abort()
}

func toFloat(v Value) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	}
	return 0, false
}

// format writes a value as pandas would write the original's Python value to CSV:
// None as an empty cell, floats in Python's repr, lists as Python lists.
func format(v Value) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	}
	return repr(v)
}

func repr(v Value) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return strQuote(x)
	case rawRepr:
		return string(x)
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int:
		return strconv.Itoa(x)
	case float64:
		switch {
		case math.IsNaN(x):
			return "nan"
		case math.IsInf(x, 1):
			return "inf"
		case math.IsInf(x, -1):
			return "-inf"
		}
		// Python's repr: positional notation for exponents in [-4, 16).
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if i := strings.IndexByte(s, 'e'); i >= 0 {
			if exp, _ := strconv.Atoi(s[i+1:]); exp >= -4 && exp < 16 {
				s = strconv.FormatFloat(x, 'f', -1, 64)
			}
		}
		if !strings.ContainsAny(s, ".en") {
			s += ".0"
		}
		return s
	case []int:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = strconv.Itoa(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case []Value:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = repr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v)
}

// writeRaw appends a row read back from a table of the same columns: its CSV record
// and its Parquet row as they were written.
func (w *tableWriter) writeRaw(rec []string, row parquet.Row) error {
	if err := w.csv.Write(rec); err != nil {
		return fmt.Errorf("write %s: %w", w.csvFile.Name(), err)
	}
	if _, err := w.pq.WriteRows([]parquet.Row{row}); err != nil {
		return fmt.Errorf("write %s: %w", w.pqFile.Name(), err)
	}
	w.rows++
	if w.rows%rowGroupRows == 0 {
		if err := w.pq.Flush(); err != nil {
			return fmt.Errorf("write %s: %w", w.pqFile.Name(), err)
		}
	}
	return nil
}
