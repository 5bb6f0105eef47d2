package human

import (
	"bytes"
	"encoding/csv"
	"math"
	"strconv"
	"strings"

	"github.com/attnscope/attnscope/internal/atomicfile"
)

// pyFloat formats v as Python's repr(float) and pandas' to_csv write it: the shortest
// digits that read back as v, in positional notation with at least one decimal
// ("1.0", "0.25") for decimal exponents −4 … 15, else scientific with a two-digit
// exponent ("1e-05", "1.5e+16").
func pyFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return ""
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	case v == 0:
		if math.Signbit(v) {
			return "-0.0"
		}
		return "0.0"
	}
	e := strconv.FormatFloat(v, 'e', -1, 64)
	mant, exp, _ := strings.Cut(e, "e")
	x, _ := strconv.Atoi(exp)
	if x < -4 || x >= 16 {
		return mant + "e" + exp[:1] + twoDigits(exp[1:])
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

func twoDigits(s string) string {
	s = strings.TrimLeft(s, "0")
	for len(s) < 2 {
		s = "0" + s
	}
	return s
}

// writeCSV writes rows (the first is the header) atomically with pandas' quoting
// (minimal) and "\n" line ends.
func writeCSV(path string, rows [][]string) error {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.WriteAll(rows); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b.Bytes())
}
