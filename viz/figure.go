package viz

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/attnscope/attnscope/internal/atomicfile"
)

// Format is an output file format.
type Format string

// The output formats.
const (
	PNG Format = "png"
	SVG Format = "svg"
	PDF Format = "pdf"
)

// FormatOf returns the format named by path's extension (.png, .svg or .pdf).
func FormatOf(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".png":
		return PNG, nil
	case ".svg":
		return SVG, nil
	case ".pdf":
		return PDF, nil
	}
	return "", fmt.Errorf("output %s: unknown extension %q (want .png, .svg or .pdf)", path, filepath.Ext(path))
}

// DefaultDPI is the resolution of PNG output.
const DefaultDPI = 150

// Figure is a drawing of a known size that can be written as PNG, SVG or PDF.
type Figure struct {
	Width, Height vg.Length
	// DPI is the resolution of PNG output (DefaultDPI when 0).
	DPI  int
	draw func(c draw.Canvas)
}

// WriteTo renders the figure in the given format to w.
func (f *Figure) WriteTo(w io.Writer, format Format) error {
	var cw vg.CanvasWriterTo
	switch format {
	case PNG:
		dpi := f.DPI
		if dpi <= 0 {
			dpi = DefaultDPI
		}
		c := vgimg.NewWith(vgimg.UseWH(f.Width, f.Height), vgimg.UseDPI(dpi))
		f.draw(draw.New(c))
		cw = vgimg.PngCanvas{Canvas: c}
	case SVG:
		return writeSVG(w, f)
	case PDF:
		c := newPDFCanvas(f.Width, f.Height)
		f.draw(draw.New(c))
		cw = c
	default:
		return fmt.Errorf("unknown figure format %q (want png, svg or pdf)", format)
	}
	_, err := cw.WriteTo(w)
	return err
}

// Save writes the figure to path atomically (nothing appears under path unless the
// whole file was written), in the format named by its extension.
func (f *Figure) Save(path string) error {
	format, err := FormatOf(path)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteWith(path, func(w io.Writer) error { return f.WriteTo(w, format) }); err != nil {
		return fmt.Errorf("save figure: %w", err)
	}
	return nil
}
