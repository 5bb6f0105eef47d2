package corpus

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/attnscope/attnscope/internal/atomicfile"
)

// Pair is one (docstring, code) example.
type Pair struct {
	Docstring string `json:"docstring"`
	Code      string `json:"code"`
	// Origin says where the pair came from (file:function for built corpora).
	Origin string `json:"origin,omitempty"`
}

// Column names accepted for each side, in order of preference (seeds of
// Text_to_Python: Nan-Do/code-search-net-python and CodeSearchNet).
var (
	DocColumns  = []string{"func_documentation_string", "docstring"}
	CodeColumns = []string{"func_code_string", "code", "whole_func_string"}
)

// ReadFile reads the pairs of a CodeSearchNet-style file: JSON lines (.jsonl, .json)
// or Parquet (.parquet). Rows whose docstring or code is blank are dropped, as the
// original; limit > 0 scans only the first limit rows (invalid rows are not
// replaced). A file without rows, a row that is not a JSON object, or a row without
// a docstring or code column is an error naming the file and line.
func ReadFile(path string, limit int) ([]Pair, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".parquet":
		return readParquet(path, limit)
	case ".jsonl", ".json", ".ndjson":
		return readJSONL(path, limit)
	}
	return nil, fmt.Errorf("read %s: unknown corpus format: .jsonl (JSON lines) or .parquet expected", path)
}

func readJSONL(path string, limit int) ([]Pair, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read corpus: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<16)
	var out []Pair
	rows := 0
	for line := 1; limit <= 0 || rows < limit; line++ {
		b, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(b)) > 0 {
			rows++
			p, ok, perr := pairFromJSON(b)
			if perr != nil {
				return nil, fmt.Errorf("read %s: line %d: %w", path, line, perr)
			}
			if ok {
				out = append(out, p)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
	if rows == 0 {
		return nil, fmt.Errorf("read %s: no rows: one JSON object per line with a %s and a %s field expected", path, strings.Join(DocColumns, "/"), strings.Join(CodeColumns, "/"))
	}
	return out, nil
}

// pairFromJSON decodes one row; ok is false for a row with a blank side.
func pairFromJSON(b []byte) (Pair, bool, error) {
	var row map[string]json.RawMessage
	if err := json.Unmarshal(b, &row); err != nil {
		return Pair{}, false, fmt.Errorf("a JSON object expected: %w", err)
	}
	doc, err := pickString(row, DocColumns)
	if err != nil {
		return Pair{}, false, err
	}
	code, err := pickString(row, CodeColumns)
	if err != nil {
		return Pair{}, false, err
	}
	var origin string
	if raw, ok := row["origin"]; ok {
		json.Unmarshal(raw, &origin)
	}
	p := Pair{Docstring: doc, Code: code, Origin: origin}
	return p, strings.TrimSpace(doc) != "" && strings.TrimSpace(code) != "", nil
}

func pickString(row map[string]json.RawMessage, names []string) (string, error) {
	for _, n := range names {
		raw, ok := row[n]
		if !ok {
			continue
		}
		var s *string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("field %q: a string expected", n)
		}
		if s == nil {
			return "", nil
		}
		return *s, nil
	}
	return "", fmt.Errorf("no %s field", strings.Join(names, " or "))
}

// parquetRow is the union of the accepted columns; absent columns read as nil.
type parquetRow struct {
	FuncDoc   *string `parquet:"func_documentation_string,optional"`
	Doc       *string `parquet:"docstring,optional"`
	FuncCode  *string `parquet:"func_code_string,optional"`
	Code      *string `parquet:"code,optional"`
	WholeFunc *string `parquet:"whole_func_string,optional"`
}

func readParquet(path string, limit int) ([]Pair, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read corpus: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read corpus: %w", err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("read %s: not a Parquet file: %w", path, err)
	}
	docCol := firstColumn(pf.Schema(), DocColumns)
	codeCol := firstColumn(pf.Schema(), CodeColumns)
	if docCol == "" || codeCol == "" {
		return nil, fmt.Errorf("read %s: a %s column and a %s column expected, the file has %v", path, strings.Join(DocColumns, "/"), strings.Join(CodeColumns, "/"), columnNames(pf.Schema()))
	}
	r := parquet.NewGenericReader[parquetRow](pf)
	defer r.Close()
	n := int(pf.NumRows())
	if limit > 0 && limit < n {
		n = limit
	}
	if n == 0 {
		return nil, fmt.Errorf("read %s: no rows", path)
	}
	buf := make([]parquetRow, min(n, 1024))
	var out []Pair
	for read := 0; read < n; {
		k, err := r.Read(buf[:min(len(buf), n-read)])
		for _, row := range buf[:k] {
			doc, code := deref(row.pick(docCol)), deref(row.pick(codeCol))
			if strings.TrimSpace(doc) != "" && strings.TrimSpace(code) != "" {
				out = append(out, Pair{Docstring: doc, Code: code})
			}
		}
		read += k
		if err == io.EOF || k == 0 {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
	return out, nil
}

func (r *parquetRow) pick(col string) *string {
	switch col {
	case "func_documentation_string":
		return r.FuncDoc
	case "docstring":
		return r.Doc
	case "func_code_string":
		return r.FuncCode
	case "code":
		return r.Code
	}
	return r.WholeFunc
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func firstColumn(s *parquet.Schema, names []string) string {
	have := map[string]bool{}
	for _, n := range columnNames(s) {
		have[n] = true
	}
	for _, n := range names {
		if have[n] {
			return n
		}
	}
	return ""
}

func columnNames(s *parquet.Schema) []string {
	var out []string
	for _, f := range s.Fields() {
		out = append(out, f.Name())
	}
	return out
}

// WriteJSONL writes pairs as JSON lines {"docstring", "code", "origin"}, atomically.
func WriteJSONL(path string, pairs []Pair) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := range pairs {
		if err := enc.Encode(&pairs[i]); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return atomicfile.WriteFile(path, buf.Bytes())
}

// Splits are the sequential train/validation/test split of Text_to_Python:
// train = pairs[0:train], val = the next val pairs, test = the next test pairs (each
// possibly short when the corpus is).
type Splits struct{ Train, Val, Test []Pair }

// Split cuts pairs sequentially into the three parts.
func Split(pairs []Pair, train, val, test int) Splits {
	cut := func(a, n int) []Pair { return pairs[min(a, len(pairs)):min(a+n, len(pairs))] }
	return Splits{Train: cut(0, train), Val: cut(train, val), Test: cut(train+val, test)}
}
