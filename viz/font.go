package viz

import (
	"image/color"
	"sync"

	"codeberg.org/go-fonts/dejavu/dejavusans"
	"codeberg.org/go-fonts/dejavu/dejavusansbold"
	"codeberg.org/go-fonts/dejavu/dejavusansmono"
	stdfnt "golang.org/x/image/font"
	"golang.org/x/image/font/opentype"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg/draw"
)

// Font faces used by every figure. They are registered once in gonum/plot's font
// cache (font.DefaultCache) under the typeface "DejaVu".
var (
	sansFont = font.Font{Typeface: "DejaVu", Variant: "Sans"}
	boldFont = font.Font{Typeface: "DejaVu", Variant: "Sans", Weight: stdfnt.WeightBold}
	monoFont = font.Font{Typeface: "DejaVu", Variant: "Mono"}
)

var registerOnce sync.Once

// fonts registers the DejaVu faces (once) and returns the cache that holds them.
func fonts() *font.Cache {
	registerOnce.Do(func() {
		var coll font.Collection
		for _, f := range []struct {
			fnt font.Font
			ttf []byte
		}{{sansFont, dejavusans.TTF}, {boldFont, dejavusansbold.TTF}, {monoFont, dejavusansmono.TTF}} {
			face, err := opentype.Parse(f.ttf)
			if err != nil {
				// The TTF data is compiled into the binary: a parse failure is a
				// build defect, not an input error.
				panic("viz: embedded DejaVu font: " + err.Error())
			}
			coll = append(coll, font.Face{Font: f.fnt, Face: face})
		}
		font.DefaultCache.Add(coll)
	})
	return font.DefaultCache
}

// textStyle returns a plain-text style (no LaTeX: token labels may hold '$' or '_')
// in the given font and size.
func textStyle(f font.Font, size font.Length) text.Style {
	return text.Style{
		Color:   color.Black,
		Font:    font.From(f, size),
		Handler: text.Plain{Fonts: fonts()},
		XAlign:  draw.XLeft,
		YAlign:  draw.YBottom,
	}
}

// newPlot returns a gonum plot whose texts all use the DejaVu faces (title 12 pt bold,
// axis labels 10 pt, tick labels 8 pt, legend 8 pt).
func newPlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	h := text.Plain{Fonts: fonts()}
	p.TextHandler = h
	p.Title.Text = title
	p.Title.TextStyle = textStyle(boldFont, 12)
	p.Title.TextStyle.XAlign = draw.XCenter
	p.Title.TextStyle.YAlign = draw.YTop
	p.Title.Padding = 4
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle = textStyle(sansFont, 10)
		a.Label.TextStyle.XAlign = draw.XCenter
		a.Tick.Label = textStyle(sansFont, 8)
	}
	p.X.Label.Padding, p.Y.Label.Padding = 4, 4 // keep axis titles off the tick labels
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.X.Tick.Label.XAlign = draw.XCenter
	p.X.Tick.Label.YAlign = draw.YTop
	p.Y.Tick.Label.XAlign = draw.XRight
	p.Y.Tick.Label.YAlign = draw.YCenter
	p.Legend.TextStyle = text.Style{Font: font.From(sansFont, 8), Handler: h}
	return p
}
