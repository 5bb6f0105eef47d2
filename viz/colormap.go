package viz

import (
	"fmt"
	"image/color"
	"math"
	"strings"
)

// Colormap maps a value in [0, 1] to a colour. It is a 256-entry lookup table built by
// linear interpolation between anchor colours (sRGB), like matplotlib's
// LinearSegmentedColormap.
type Colormap struct {
	Name string
	lut  [256]color.RGBA
}

// At returns the colour of t, clamped to [0, 1]; NaN maps to light grey.
func (c *Colormap) At(t float64) color.RGBA {
	if math.IsNaN(t) {
		return color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	}
	if t <= 0 {
		return c.lut[0]
	}
	if t >= 1 {
		return c.lut[255]
	}
	return c.lut[int(t*255+0.5)]
}

func newColormap(name string, hex ...uint32) *Colormap {
	c := &Colormap{Name: name}
	n := len(hex) - 1
	for i := range c.lut {
		t := float64(i) / 255 * float64(n)
		k := min(int(t), n-1)
		f := t - float64(k)
		a, b := hex[k], hex[k+1]
		mix := func(shift uint) uint8 {
			x := float64((a>>shift)&0xff)*(1-f) + float64((b>>shift)&0xff)*f
			return uint8(math.Round(x))
		}
		c.lut[i] = color.RGBA{mix(16), mix(8), mix(0), 0xff}
	}
	return c
}

// Colormaps available by name. Reds and YlOrRd are ColorBrewer's 9-class ramps (the
// maps of followup-attention's heatmaps and Text_to_Python's alignment plots), Viridis
// is matplotlib's default (sampled every 0.1), Gray goes from black to white
// (AttentionSpan's reference figure), Blues is ColorBrewer's.
var (
	Reds    = newColormap("reds", 0xfff5f0, 0xfee0d2, 0xfcbba1, 0xfc9272, 0xfb6a4a, 0xef3b2c, 0xcb181d, 0xa50f15, 0x67000d)
	YlOrRd  = newColormap("ylorrd", 0xffffcc, 0xffeda0, 0xfed976, 0xfeb24c, 0xfd8d3c, 0xfc4e2a, 0xe31a1c, 0xbd0026, 0x800026)
	Viridis = newColormap("viridis", 0x440154, 0x482475, 0x414487, 0x355f8d, 0x2a788e, 0x21918c, 0x22a884, 0x44bf70, 0x7ad151, 0xbddf26, 0xfde725)
	Gray    = newColormap("gray", 0x000000, 0xffffff)
	Blues   = newColormap("blues", 0xf7fbff, 0xdeebf7, 0xc6dbef, 0x9ecae1, 0x6baed6, 0x4292c6, 0x2171b5, 0x08519c, 0x08306b)
)

// ColormapByName returns the colormap called name (case-insensitive).
func ColormapByName(name string) (*Colormap, error) {
	for _, c := range []*Colormap{Reds, YlOrRd, Viridis, Gray, Blues} {
		if strings.EqualFold(c.Name, name) {
			return c, nil
		}
	}
	return nil, fmt.Errorf("unknown colormap %q (want reds, ylorrd, viridis, gray or blues)", name)
}
