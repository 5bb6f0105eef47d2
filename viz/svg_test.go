package viz

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"io"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/image/font/sfnt"
)

var fontFaceRE = regexp.MustCompile(`@font-face\{font-family:"([^"]+)";font-weight:(\w+);font-style:\w+;src:url\(data:font/ttf;base64,([A-Za-z0-9+/=]+)\)`)

// TestSVGFontSubsets checks that every SVG figure embeds, for each family and weight
// its text uses, a subset font that parses and has a glyph for every character of
// that text (so nothing falls back to another font), and that the subsets are small.
func TestSVGFontSubsets(t *testing.T) {
	for name, mk := range everyFigure("Title: ␣⏎⇥ “quoted” — é") {
		f, err := mk()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var b bytes.Buffer
		if err := f.WriteTo(&b, SVG); err != nil {
			t.Fatal(err)
		}
		faces := map[string]*sfnt.Font{}
		for _, m := range fontFaceRE.FindAllStringSubmatch(b.String(), -1) {
			raw, err := base64.StdEncoding.DecodeString(m[3])
			if err != nil {
				t.Fatalf("%s: %s %s: %v", name, m[1], m[2], err)
			}
			fnt, err := sfnt.Parse(raw)
			if err != nil {
				t.Fatalf("%s: %s %s subset does not parse: %v", name, m[1], m[2], err)
			}
			faces[m[1]+" "+m[2]] = fnt
		}
		if b.Len() > 600_000 && name != "dashboard" && name != "empty-dashboard" {
			t.Errorf("%s: SVG is %d bytes: fonts not subset?", name, b.Len())
		}
		d := xml.NewDecoder(&b)
		var style string
		var buf sfnt.Buffer
		checked := 0
		for {
			tok, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			switch e := tok.(type) {
			case xml.StartElement:
				style = ""
				for _, a := range e.Attr {
					if a.Name.Local == "style" {
						style = a.Value
					}
				}
			case xml.CharData:
				fam := regexp.MustCompile(`font-family:([^;]+);`).FindStringSubmatch(style)
				wt := regexp.MustCompile(`font-weight:(\w+);`).FindStringSubmatch(style)
				if fam == nil || wt == nil || strings.TrimSpace(string(e)) == "" {
					continue
				}
				fnt := faces[fam[1]+" "+wt[1]]
				if fnt == nil {
					t.Fatalf("%s: text %q in %s %s has no embedded face", name, e, fam[1], wt[1])
				}
				for _, r := range string(e) {
					if gi, err := fnt.GlyphIndex(&buf, r); err != nil || gi == 0 {
						t.Errorf("%s: %s %s subset lacks %q (text %q)", name, fam[1], wt[1], r, e)
					}
				}
				checked++
			}
		}
		if checked == 0 {
			t.Errorf("%s: no text checked", name)
		}
	}
}
