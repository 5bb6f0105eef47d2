package viz

import (
	"bytes"
	"compress/zlib"
	"io"
	"regexp"
	"strings"
	"testing"
)

// pdfStreams inflates every Flate-compressed stream of a PDF.
func pdfStreams(t *testing.T, pdf []byte) []string {
	t.Helper()
	var out []string
	re := regexp.MustCompile(`(?s)stream\r?\n(.*?)\r?\nendstream`)
	for _, m := range re.FindAllSubmatch(pdf, -1) {
		r, err := zlib.NewReader(bytes.NewReader(m[1]))
		if err != nil {
			continue // not compressed (or an image)
		}
		b, err := io.ReadAll(r)
		if err == nil {
			out = append(out, string(b))
		}
	}
	return out
}

// TestPDFKeepsUnicodeAndFaces: a heatmap whose labels hold ␣ ⏎ ⇥ and a bold title
// becomes a PDF that embeds the regular and the bold face as separate font programs
// and maps the whitespace glyphs to their Unicode code points (so they render and can
// be searched), which gonum's Windows-1252 PDF backend could not.
func TestPDFKeepsUnicodeAndFaces(t *testing.T) {
	toks := []string{"def", "Ġf", "():", "Ċ", "ĉ", "return"}
	f, err := Heatmap(randomCausal(6, 9), HeatmapOptions{Title: "Bold title", RowLabels: toks, ColLabels: toks})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := f.WriteTo(&b, PDF); err != nil {
		t.Fatal(err)
	}
	pdf := b.Bytes()
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatal("not a PDF")
	}
	files := regexp.MustCompile(`/FontFile2 (\d+) 0 R`).FindAllSubmatch(pdf, -1)
	distinct := map[string]bool{}
	for _, m := range files {
		distinct[string(m[1])] = true
	}
	if len(distinct) < 2 {
		t.Errorf("%d distinct embedded font programs, want regular and bold", len(distinct))
	}
	// fpdf's UTF-8 fonts use identity CIDs (code points, shown as UTF-16BE in the
	// page's text operators) with an identity ToUnicode map.
	var text strings.Builder // only the text objects (BT ... ET), not image data
	for _, st := range pdfStreams(t, pdf) {
		for _, m := range regexp.MustCompile(`(?s)BT .*? ET`).FindAllString(st, -1) {
			text.WriteString(m)
		}
	}
	all := text.String()
	if !strings.Contains(all, "Tj") {
		t.Fatal("no text objects found in the PDF")
	}
	for _, r := range []rune{'␣', '⏎', '⇥'} {
		if !strings.Contains(all, string([]byte{byte(r >> 8), byte(r)})) {
			t.Errorf("no text with %q (U+%04X) in the PDF's content", r, r)
		}
	}
	if !bytes.Contains(pdf, []byte("/CMapName /Adobe-Identity-UCS")) {
		t.Error("no identity ToUnicode map: text would not be searchable")
	}
}
