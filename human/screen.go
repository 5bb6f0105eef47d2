package human

import (
	"errors"
	"fmt"
	"image"
	_ "image/gif"  // frame and marker formats
	_ "image/jpeg" // (image.Decode)
	_ "image/png"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
)

// Finding the code area without manual_screen_coordinates, as the original's
// screen_coordinates_from_video and get_code_coordinates (eye_tracking/utils.py) do:
// in a frame of the participant's screen recording, two marker images of the editor
// (zoom_dependant_parameters.<zoom>.path_marker_top_left / path_marker_bottom_right)
// are located by multi-scale template matching on Canny edge maps, the top-left
// marker in the top-left 30 % × 20 % of the frame, the bottom-right one in the whole
// frame; the code area starts at the top-left marker's corner plus top_left_offsets
// and ends at the bottom-right marker's corner plus bottom_right_offsets (pixels).
//
// Every step equals OpenCV 4.6's (gray conversion, Canny, INTER_AREA, the located
// markers: TestLocateCodeAreaMatchesOpenCV); one difference is deliberate: the
// original writes the top-left cut as a JPEG and reads it back (lossy), here it is cut
// in memory.
//
// The original decodes the middle frame of the task's .avi recording with OpenCV;
// attnscope reads no video: the frame is an image file (PNG, JPEG or GIF) given as
// the participant's screen_frame or found as <participant folder>/<task>_frame.png
// (or .jpg, .jpeg), falling back to an earlier task's frame as the original falls
// back to an earlier task's video.

// Canny thresholds and scales of the original's get_coordinate_of_array.
const (
	cannyLow, cannyHigh = 50, 200
	matchScales         = 20 // np.linspace(0.2, 1.0, 20), largest first
)

// gray is an 8-bit single-channel image, row-major.
type gray struct {
	w, h int
	pix  []uint8
}

func (g *gray) at(x, y int) int { return int(g.pix[y*g.w+x]) }

// channels splits an image into 8-bit B, G, R planes (OpenCV's imread order).
func channels(img image.Image) [3]*gray {
	b := img.Bounds()
	var out [3]*gray
	for c := range out {
		out[c] = &gray{w: b.Dx(), h: b.Dy(), pix: make([]uint8, b.Dx()*b.Dy())}
	}
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			i := y*b.Dx() + x
			out[0].pix[i], out[1].pix[i], out[2].pix[i] = uint8(bl>>8), uint8(g>>8), uint8(r>>8)
		}
	}
	return out
}

// toGray is OpenCV's COLOR_BGR2GRAY for 8-bit images (4.x): (9798 R + 19235 G +
// 3735 B + 2¹⁴) >> 15 (fixed-point 0.299, 0.587, 0.114).
func toGray(bgr [3]*gray) *gray {
	g := &gray{w: bgr[0].w, h: bgr[0].h, pix: make([]uint8, len(bgr[0].pix))}
	for i := range g.pix {
		g.pix[i] = uint8((9798*int(bgr[2].pix[i]) + 19235*int(bgr[1].pix[i]) + 3735*int(bgr[0].pix[i]) + 16384) >> 15)
	}
	return g
}

// crop returns the region [0, w) × [0, h) of g.
func crop(g *gray, w, h int) *gray {
	w, h = min(w, g.w), min(h, g.h)
	out := &gray{w: w, h: h, pix: make([]uint8, w*h)}
	for y := 0; y < h; y++ {
		copy(out.pix[y*w:(y+1)*w], g.pix[y*g.w:y*g.w+w])
	}
	return out
}

// areaTab is OpenCV's computeResizeAreaTab (imgproc/src/resize.cpp): for each output
// index the input indices it covers with their weights (float32), scale = in/out.
type areaEntry struct {
	d, s  int
	alpha float32
}

func areaTab(ssize, dsize int, scale float64) []areaEntry {
	var tab []areaEntry
	for dx := 0; dx < dsize; dx++ {
		fsx1 := float64(dx) * scale
		fsx2 := fsx1 + scale
		cellWidth := math.Min(scale, float64(ssize)-fsx1)
		sx1, sx2 := int(math.Ceil(fsx1)), int(math.Floor(fsx2))
		sx2 = min(sx2, ssize-1)
		sx1 = min(sx1, sx2)
		if float64(sx1)-fsx1 > 1e-3 {
			tab = append(tab, areaEntry{dx, sx1 - 1, float32((float64(sx1) - fsx1) / cellWidth)})
		}
		for sx := sx1; sx < sx2; sx++ {
			tab = append(tab, areaEntry{dx, sx, float32(1.0 / cellWidth)})
		}
		if fsx2-float64(sx2) > 1e-3 {
			tab = append(tab, areaEntry{dx, sx2, float32(math.Min(math.Min(fsx2-float64(sx2), 1), cellWidth) / cellWidth)})
		}
	}
	return tab
}

// resizeArea shrinks g to w × h as OpenCV's INTER_AREA (which imutils.resize uses)
// does for a non-integer factor: each output pixel is the area-weighted mean of the
// input over its footprint, summed in float32 row by row (horizontal weights, then
// vertical) and rounded half to even; a same-size resize is a copy. Checked equal to
// OpenCV 4.6, an integer factor (its block-mean path) included
// (TestLocateCodeAreaMatchesOpenCV).
func resizeArea(g *gray, w, h int) *gray {
	if w == g.w && h == g.h {
		return &gray{w: w, h: h, pix: append([]uint8(nil), g.pix...)}
	}
	sx, sy := 1/(float64(w)/float64(g.w)), 1/(float64(h)/float64(g.h))
	xtab, ytab := areaTab(g.w, w, sx), areaTab(g.h, h, sy)
	out := &gray{w: w, h: h, pix: make([]uint8, w*h)}
	buf := make([]float32, w)
	sum := make([]float32, w)
	prev := -1
	flush := func(dy int) {
		for dx, v := range sum {
			out.pix[dy*w+dx] = uint8(min(255, max(0, math.RoundToEven(float64(v)))))
		}
	}
	for _, y := range ytab {
		for i := range buf {
			buf[i] = 0
		}
		row := g.pix[y.s*g.w : (y.s+1)*g.w]
		for _, x := range xtab {
			buf[x.d] += float32(float32(row[x.s]) * x.alpha)
		}
		if y.d != prev {
			if prev >= 0 {
				flush(prev)
			}
			for dx := range sum {
				sum[dx] = float32(y.alpha * buf[dx])
			}
			prev = y.d
		} else {
			for dx := range sum {
				sum[dx] += float32(y.alpha * buf[dx])
			}
		}
	}
	if prev >= 0 {
		flush(prev)
	}
	return out
}

// canny is OpenCV's Canny edge detector with a 3×3 Sobel aperture and the L1 gradient
// norm (|dx| + |dy|, cv2.Canny's default), borders replicated (its Sobel calls use
// BORDER_REPLICATE):
// non-maximum suppression along the gradient's direction sector (a pixel must exceed
// its neighbour before it and equal or exceed the one after), then hysteresis: pixels
// above high are edges, pixels above low are edges when 8-connected to one. For
// several channels each pixel takes the gradient of the channel with the largest
// norm, as OpenCV does for a colour image. It returns a 0/1 edge map.
func canny(chans []*gray, low, high int) []uint8 {
	w, h := chans[0].w, chans[0].h
	refl := func(i, n int) int { return min(max(i, 0), n-1) }
	dx, dy, mag := make([]int, w*h), make([]int, w*h), make([]int, w*h)
	for y := 0; y < h; y++ {
		ym, yp := refl(y-1, h), refl(y+1, h)
		for x := 0; x < w; x++ {
			xm, xp := refl(x-1, w), refl(x+1, w)
			best := -1
			for _, g := range chans {
				gx := (g.at(xp, ym) + 2*g.at(xp, y) + g.at(xp, yp)) - (g.at(xm, ym) + 2*g.at(xm, y) + g.at(xm, yp))
				gy := (g.at(xm, yp) + 2*g.at(x, yp) + g.at(xp, yp)) - (g.at(xm, ym) + 2*g.at(x, ym) + g.at(xp, ym))
				if m := abs(gx) + abs(gy); m > best {
					best = m
					dx[y*w+x], dy[y*w+x], mag[y*w+x] = gx, gy, m
				}
			}
		}
	}
	// OpenCV's sectors: tan(22.5°) in fixed point (CANNY_SHIFT 15).
	const shift = 15
	const tg22 = 13573 // (int)(0.4142135623730950488·2¹⁵ + 0.5)
	magAt := func(x, y int) int {
		if x < 0 || y < 0 || x >= w || y >= h {
			return 0
		}
		return mag[y*w+x]
	}
	const (
		none = iota
		weak
		strong
	)
	state := make([]uint8, w*h)
	var stack []int
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := y*w + x
			m := mag[i]
			if m <= low {
				continue
			}
			xs, ys := dx[i], dy[i]
			ax, ay := abs(xs), abs(ys)<<shift
			tg22x := ax * tg22
			var keep bool
			switch {
			case ay < tg22x: // horizontal gradient: compare left and right
				keep = m > magAt(x-1, y) && m >= magAt(x+1, y)
			case ay > tg22x+(ax<<(shift+1)): // vertical: compare up and down
				keep = m > magAt(x, y-1) && m >= magAt(x, y+1)
			default: // diagonal
				s := 1
				if (xs ^ ys) < 0 {
					s = -1
				}
				keep = m > magAt(x-s, y-1) && m > magAt(x+s, y+1)
			}
			if !keep {
				continue
			}
			if m > high {
				state[i] = strong
				stack = append(stack, i)
			} else {
				state[i] = weak
			}
		}
	}
	edges := make([]uint8, w*h)
	for _, i := range stack {
		edges[i] = 1
	}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		x, y := i%w, i/w
		for yy := max(y-1, 0); yy <= min(y+1, h-1); yy++ {
			for xx := max(x-1, 0); xx <= min(x+1, w-1); xx++ {
				j := yy*w + xx
				if state[j] == weak && edges[j] == 0 {
					edges[j] = 1
					stack = append(stack, j)
				}
			}
		}
	}
	return edges
}

// matchCCOEFF is OpenCV's matchTemplate with TM_CCOEFF on 0/1 edge maps (scaled by
// 255 as Canny's output is): R(x, y) = Σ T'(x', y') I(x+x', y+y'), T' = T − mean T
// (the window's mean term vanishes as Σ T' = 0). With binary maps R = 255² C −
// 255 mean(T)·255 N, C the coinciding edge pixels and N the image edges in the
// window; both are counted exactly. It returns the maximum and its first position in
// row-major order (cv2.minMaxLoc), ok false when the template does not fit.
func matchCCOEFF(img []uint8, iw, ih int, tpl []uint8, tw, th int) (best float64, bx, by int, ok bool) {
	rw, rh := iw-tw+1, ih-th+1
	if rw < 1 || rh < 1 {
		return 0, 0, 0, false
	}
	var tEdges [][2]int
	for y := 0; y < th; y++ {
		for x := 0; x < tw; x++ {
			if tpl[y*tw+x] != 0 {
				tEdges = append(tEdges, [2]int{x, y})
			}
		}
	}
	cnt := make([]int32, rw*rh)
	for v := 0; v < ih; v++ {
		for u := 0; u < iw; u++ {
			if img[v*iw+u] == 0 {
				continue
			}
			for _, t := range tEdges {
				x, y := u-t[0], v-t[1]
				if x >= 0 && y >= 0 && x < rw && y < rh {
					cnt[y*rw+x]++
				}
			}
		}
	}
	// Integral image of the edges for N.
	integ := make([]int, (iw+1)*(ih+1))
	for y := 0; y < ih; y++ {
		row := 0
		for x := 0; x < iw; x++ {
			row += int(img[y*iw+x])
			integ[(y+1)*(iw+1)+x+1] = integ[y*(iw+1)+x+1] + row
		}
	}
	meanT := 255 * float64(len(tEdges)) / float64(tw*th)
	best = math.Inf(-1)
	for y := 0; y < rh; y++ {
		for x := 0; x < rw; x++ {
			n := integ[(y+th)*(iw+1)+x+tw] - integ[y*(iw+1)+x+tw] - integ[(y+th)*(iw+1)+x] + integ[y*(iw+1)+x]
			r := 255*255*float64(cnt[y*rw+x]) - meanT*255*float64(n)
			if r > best {
				best, bx, by = r, x, y
			}
		}
	}
	return best, bx, by, true
}

// locateMarker is the original's get_coordinate_of_array: the template's Canny edges
// are matched against the Canny edges of the screen (gray) resized to each of 20
// widths from 100 % down to 20 % (height in proportion), stopping at the first size
// smaller than the template; the best score wins (the larger size on ties) and its
// box is scaled back to the screen: start = loc·r, end = (loc + size)·r, truncated.
func locateMarker(tpl [3]*gray, screen *gray) (startX, startY, endX, endY int, err error) {
	te := canny(tpl[:], cannyLow, cannyHigh)
	tw, th := tpl[0].w, tpl[0].h
	found := false
	var best, r float64
	var loc [2]int
	for k := matchScales - 1; k >= 0; k-- {
		scale := 0.2 + 0.8*float64(k)/float64(matchScales-1)
		w := int(float64(screen.w) * scale)
		h := int(float64(screen.h) * (float64(w) / float64(screen.w)))
		if w < 1 || h < 1 {
			break
		}
		resized := resizeArea(screen, w, h)
		ratio := float64(screen.w) / float64(resized.w)
		if resized.h < th || resized.w < tw {
			break
		}
		edges := canny([]*gray{resized}, cannyLow, cannyHigh)
		v, x, y, ok := matchCCOEFF(edges, w, h, te, tw, th)
		if !ok {
			break
		}
		if !found || v > best {
			found, best, loc, r = true, v, [2]int{x, y}, ratio
		}
	}
	if !found {
		return 0, 0, 0, 0, fmt.Errorf("the marker (%d×%d pixels) is larger than the screen region (%d×%d)", tw, th, screen.w, screen.h)
	}
	return int(float64(loc[0]) * r), int(float64(loc[1]) * r), int(float64(loc[0]+tw) * r), int(float64(loc[1]+th) * r), nil
}

// LocateCodeArea finds the code area in a screen frame from the two markers of a
// zoom level (the original's get_code_coordinates): the top-left marker is searched
// in the frame's top-left 30 % × 20 %, the bottom-right one in the whole frame.
func LocateCodeArea(frame, topLeft, bottomRight image.Image, topLeftOffsets, bottomRightOffsets [2]int) (ScreenCoordinates, error) {
	screen := toGray(channels(frame))
	cut := crop(screen, int(float64(screen.w)*0.3), int(float64(screen.h)*0.2))
	x0, y0, _, _, err := locateMarker(channels(topLeft), cut)
	if err != nil {
		return ScreenCoordinates{}, fmt.Errorf("top-left marker: %w", err)
	}
	x1, y1, _, _, err := locateMarker(channels(bottomRight), screen)
	if err != nil {
		return ScreenCoordinates{}, fmt.Errorf("bottom-right marker: %w", err)
	}
	a := ScreenCoordinates{
		XStart: float64(x0 + topLeftOffsets[0]), YStart: float64(y0 + topLeftOffsets[1]),
		XEnd: float64(x1 + bottomRightOffsets[0]), YEnd: float64(y1 + bottomRightOffsets[1]),
	}
	if !(a.XEnd > a.XStart && a.YEnd > a.YStart) {
		return a, fmt.Errorf("the markers give an empty code area (%g, %g)–(%g, %g)", a.XStart, a.YStart, a.XEnd, a.YEnd)
	}
	return a, nil
}

func readImage(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: not a PNG, JPEG or GIF image: %w", path, err)
	}
	return img, nil
}

// frameExts are the image files tried as <task>_frame<ext>.
var frameExts = []string{".png", ".jpg", ".jpeg"}

// screenFrame finds the frame of participant p's task: p.ScreenFrame, or
// <userDir>/<task>_frame.{png,jpg,jpeg}, or the frame of the nearest earlier task.
func (c *Config) screenFrame(p *Participant, userDir string, task int) (string, error) {
	if p.ScreenFrame != "" {
		return c.resolve(p.ScreenFrame), nil
	}
	for t := task; t >= 0; t-- {
		for _, ext := range frameExts {
			path := filepath.Join(userDir, strconv.Itoa(t)+"_frame"+ext)
			if _, err := os.Stat(path); err == nil {
				return path, nil
			} else if !errors.Is(err, fs.ErrNotExist) {
				return "", err
			}
		}
	}
	msg := fmt.Sprintf("participant %q task %d has no manual_screen_coordinates and no screen frame to find the code area in (screen_frame in the config, or %s)",
		p.Name, task, filepath.Join(userDir, fmt.Sprintf("%d_frame.png", task)))
	if v := filepath.Join(userDir, fmt.Sprintf("%d.avi", task)); fileExists(v) {
		msg += fmt.Sprintf("; attnscope reads no video: save the middle frame of %s as that image, e.g. ffmpeg -i %s -vf \"select=eq(n\\,N/2)\" -frames:v 1 %s (N = its number of frames)",
			v, v, filepath.Join(userDir, fmt.Sprintf("%d_frame.png", task)))
	}
	return "", errors.New(msg)
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// codeArea returns the code area of participant p's task: its
// manual_screen_coordinates, or the area the zoom level's markers locate in the
// task's screen frame.
func (c *Config) codeArea(p *Participant, userDir string, task int) (ScreenCoordinates, error) {
	if p.ManualScreenCoordinates != nil {
		return *p.ManualScreenCoordinates, nil
	}
	z := c.Zoom[p.Zoom]
	path, err := c.screenFrame(p, userDir, task)
	if err != nil {
		return ScreenCoordinates{}, err
	}
	key := p.Zoom + "\x00" + path
	if a, ok := c.areas[key]; ok {
		return a, nil // the frame of an earlier task, located already
	}
	frame, err := readImage(path)
	if err != nil {
		return ScreenCoordinates{}, err
	}
	tl, err := readImage(c.resolve(z.PathMarkerTopLeft))
	if err != nil {
		return ScreenCoordinates{}, fmt.Errorf("zoom %q: path_marker_top_left: %w", p.Zoom, err)
	}
	br, err := readImage(c.resolve(z.PathMarkerBotRight))
	if err != nil {
		return ScreenCoordinates{}, fmt.Errorf("zoom %q: path_marker_bottom_right: %w", p.Zoom, err)
	}
	a, err := LocateCodeArea(frame, tl, br, [2]int(z.TopLeftOffsets), [2]int(z.BottomRightOffsets))
	if err != nil {
		return a, fmt.Errorf("participant %q task %d: screen frame %s: %w", p.Name, task, path, err)
	}
	if c.areas == nil {
		c.areas = map[string]ScreenCoordinates{}
	}
	c.areas[key] = a
	return a, nil
}
