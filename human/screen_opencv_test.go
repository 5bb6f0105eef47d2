package human

import (
	"encoding/json"
	"fmt"
	"image"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/pyoracle"
)

// The detection equals OpenCV's, step by step, on a synthetic editor frame: gray
// conversion, Canny edges of the gray frame and of a colour marker, INTER_AREA
// resizing, and the located markers of get_code_coordinates.
func TestLocateCodeAreaMatchesOpenCV(t *testing.T) {
	py := pyoracle.Python(t, "cv2", "numpy")
	dir := t.TempDir()
	frame := testFrame(image.Pt(37, 151), image.Pt(1811, 517), 9)
	writePNG(t, filepath.Join(dir, "frame.png"), frame)
	writePNG(t, filepath.Join(dir, "tl.png"), testMarker(0))
	writePNG(t, filepath.Join(dir, "br.png"), testMarker(1))
	out, err := exec.Command(py, filepath.Join("testdata", "opencv_oracle.py"), filepath.Join(dir, "frame.png"), filepath.Join(dir, "tl.png"), filepath.Join(dir, "br.png"), dir).Output()
	if err != nil {
		t.Fatalf("opencv_oracle.py: %v", err)
	}
	var want struct{ TL, BR [2]int }
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	load := func(name string) []float64 {
		a, err := checkpoint.ReadNpyFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return a.Float64s()
	}
	same := func(what string, got []uint8, scale float64, want []float64) {
		if len(got) != len(want) {
			t.Fatalf("%s: %d values, OpenCV %d", what, len(got), len(want))
		}
		diff, first := 0, -1
		for i := range got {
			if float64(got[i])*scale != want[i] {
				if first < 0 {
					first = i
				}
				diff++
			}
		}
		if diff > 0 {
			t.Errorf("%s: %d of %d values differ from OpenCV's (first at %d: %v, OpenCV %v)", what, diff, len(got), first, float64(got[first])*scale, want[first])
		}
	}
	screen := toGray(channels(frame))
	same("gray", screen.pix, 1, load("gray.npy"))
	same("Canny of the gray frame", canny([]*gray{screen}, cannyLow, cannyHigh), 255, load("canny_frame.npy"))
	tl := channels(testMarker(0))
	same("Canny of the colour marker", canny(tl[:], cannyLow, cannyHigh), 255, load("canny_tl.npy"))
	for _, w := range []int{1823, 1162, 384} {
		h := int(float64(screen.h) * (float64(w) / float64(screen.w)))
		same(fmt.Sprintf("INTER_AREA to width %d", w), resizeArea(screen, w, h).pix, 1, load(fmt.Sprintf("area_%d.npy", w)))
	}
	cut := crop(screen, int(float64(screen.w)*0.3), int(float64(screen.h)*0.2))
	x0, y0, _, _, err := locateMarker(tl, cut)
	if err != nil {
		t.Fatal(err)
	}
	x1, y1, _, _, err := locateMarker(channels(testMarker(1)), screen)
	if err != nil {
		t.Fatal(err)
	}
	if [2]int{x0, y0} != want.TL || [2]int{x1, y1} != want.BR {
		t.Fatalf("markers at %v and %v, OpenCV %v and %v", [2]int{x0, y0}, [2]int{x1, y1}, want.TL, want.BR)
	}
}
