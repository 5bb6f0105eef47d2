package grading

import (
	"bytes"
	"encoding/csv"

	"github.com/attnscope/attnscope/internal/atomicfile"
)

// writeCSV writes rows atomically with minimal quoting (pandas reads it).
func writeCSV(path string, rows [][]string) error {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.WriteAll(rows); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b.Bytes())
}
