package human

import (
	"context"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/store"
)

var screenBG = color.RGBA{30, 30, 30, 255}

// testMarker draws a marker image: shapes on the frame's background with a margin of
// background around them (so its edges are its own wherever it is pasted).
func testMarker(kind int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, 48, 32))
	for i := range m.Pix {
		m.Pix[i] = []uint8{30, 30, 30, 255}[i%4]
	}
	fill := func(x0, y0, x1, y1 int, c color.RGBA) {
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				m.SetRGBA(x, y, c)
			}
		}
	}
	if kind == 0 {
		fill(5, 5, 43, 8, color.RGBA{220, 220, 220, 255})
		fill(5, 5, 8, 27, color.RGBA{220, 220, 220, 255})
		fill(14, 12, 26, 24, color.RGBA{0, 122, 204, 255})
		fill(30, 14, 40, 18, color.RGBA{200, 80, 40, 255})
	} else {
		fill(6, 22, 42, 26, color.RGBA{240, 240, 240, 255})
		fill(38, 6, 42, 26, color.RGBA{240, 240, 240, 255})
		fill(10, 8, 20, 18, color.RGBA{60, 180, 90, 255})
		for k := 0; k < 12; k++ {
			fill(22+k, 8+k/2, 24+k, 10+k/2, color.RGBA{250, 200, 50, 255})
		}
	}
	return m
}

// testFrame draws a 1920×1080 editor screenshot: background, random text-like blocks
// in the code area, the two markers at the given top-left corners.
func testFrame(tl, br image.Point, seed uint64) *image.RGBA {
	f := image.NewRGBA(image.Rect(0, 0, 1920, 1080))
	for i := range f.Pix {
		f.Pix[i] = []uint8{30, 30, 30, 255}[i%4]
	}
	r := rand.New(rand.NewPCG(seed, 3))
	for line := 0; line < 26; line++ {
		x := 420
		for x < 1450 {
			w := 10 + r.IntN(60)
			c := color.RGBA{uint8(120 + r.IntN(120)), uint8(120 + r.IntN(120)), uint8(120 + r.IntN(120)), 255}
			for y := 110 + line*34; y < 122+line*34; y++ {
				for xx := x; xx < min(x+w, 1480); xx++ {
					f.SetRGBA(xx, y, c)
				}
			}
			x += w + 8 + r.IntN(20)
		}
	}
	for k, at := range []image.Point{tl, br} {
		m := testMarker(k)
		for y := 0; y < m.Rect.Dy(); y++ {
			for x := 0; x < m.Rect.Dx(); x++ {
				f.SetRGBA(at.X+x, at.Y+y, m.RGBAAt(x, y))
			}
		}
	}
	return f
}

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// The markers pasted at known places are found there, and the code area is their
// corners plus the offsets.
func TestLocateCodeAreaKnownMarkers(t *testing.T) {
	for _, tc := range []struct{ tl, br image.Point }{
		{image.Pt(100, 40), image.Pt(1400, 1020)},
		{image.Pt(37, 151), image.Pt(1811, 517)},
	} {
		frame := testFrame(tc.tl, tc.br, 5)
		a, err := LocateCodeArea(frame, testMarker(0), testMarker(1), [2]int{300, 60}, [2]int{100, -20})
		if err != nil {
			t.Fatal(err)
		}
		want := ScreenCoordinates{XStart: float64(tc.tl.X + 300), YStart: float64(tc.tl.Y + 60), XEnd: float64(tc.br.X + 100), YEnd: float64(tc.br.Y - 20)}
		if a != want {
			t.Fatalf("markers at %v and %v: code area %+v, want %+v", tc.tl, tc.br, a, want)
		}
	}
}

// Canny's edges of a step image lie on the step, one pixel wide, and nowhere else.
func TestCannyStep(t *testing.T) {
	g := &gray{w: 20, h: 10, pix: make([]uint8, 200)}
	for y := 0; y < 10; y++ {
		for x := 10; x < 20; x++ {
			g.pix[y*20+x] = 200
		}
	}
	e := canny([]*gray{g}, cannyLow, cannyHigh)
	for y := 0; y < 10; y++ {
		for x := 0; x < 20; x++ {
			// |dx| is 800 at x = 9 and x = 10; non-maximum suppression keeps the first
			// (m > left, m ≥ right): x = 9.
			if want := uint8(0); x == 9 {
				if e[y*20+x] != 1 {
					t.Fatalf("no edge at (%d,%d)", x, y)
				}
			} else if e[y*20+x] != want {
				t.Fatalf("edge at (%d,%d)", x, y)
			}
		}
	}
}

// A study whose participants have no manual_screen_coordinates but a frame of their
// screen and the zoom level's markers gives the same character weights as with the
// coordinates (the generator's ground truth); a task without its own frame uses the
// frame of an earlier task, as the original uses an earlier task's video.
func TestGetWeightsFromScreenFrames(t *testing.T) {
	q, files := sensemakingFiles(t, 2)
	out := t.TempDir()
	truth, err := Generate(out, GenerateOptions{Questions: q, Files: files, Participants: 2, TasksPerParticipant: 2, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	// The generator's code area is (400, 100)–(1500, 1000).
	tl, br := image.Pt(100, 40), image.Pt(1400, 1020)
	writePNG(t, filepath.Join(out, "markers", "top_left.png"), testMarker(0))
	writePNG(t, filepath.Join(out, "markers", "bottom_right.png"), testMarker(1))
	cfgPath := filepath.Join(out, "eye.yaml")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	skip := 0
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "- manual_screen_coordinates:"):
			skip = 4
			kept = append(kept, "- screen_frame_note: x")
			continue
		case skip > 0:
			skip--
			continue
		}
		kept = append(kept, l)
	}
	text := strings.ReplaceAll(strings.Join(kept, "\n"), "- screen_frame_note: x\n  name:", "- name:")
	text = strings.Replace(text, "    n_lines: 26\n", "    n_lines: 26\n    path_marker_top_left: markers/top_left.png\n    path_marker_bottom_right: markers/bottom_right.png\n    top_left_offsets: [300, 60]\n    bottom_right_offsets: [100, -20]\n", 1)
	if strings.Contains(text, "manual_screen_coordinates") {
		t.Fatalf("config still has coordinates:\n%s", text)
	}
	c, err := ParseConfig(cfgPath, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	// No frame yet: one sentence saying what is missing (and, beside a recording,
	// how to make the frame).
	p := &c.Participants[0]
	if err := os.WriteFile(filepath.Join(out, "participants", p.Name, "0.avi"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = c.ProcessSession(context.Background(), p, p.Tasks[0])
	if err == nil || !strings.Contains(err.Error(), "has no manual_screen_coordinates and no screen frame") || !strings.Contains(err.Error(), "ffmpeg -i") {
		t.Fatalf("err = %v", err)
	}
	for _, p := range c.Participants {
		writePNG(t, filepath.Join(out, "participants", p.Name, "0_frame.png"), testFrame(tl, br, uint64(len(p.Name))))
	}
	if err := GetWeights(context.Background(), c, Options{}); err != nil {
		t.Fatal(err)
	}
	run, err := store.Open(filepath.Join(out, "run"))
	if err != nil {
		t.Fatal(err)
	}
	tasks := map[int]bool{}
	for id, want := range truth {
		got, err := run.Derived(PassCharWeights, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Data) != len(want) {
			t.Fatalf("session %s: %d weights, want %d", id, len(got.Data), len(want))
		}
		for i := range want {
			if math.Abs(got.Data[i]-want[i]) > 1e-12 {
				t.Fatalf("session %s: character %d has weight %v, want %v", id, i, got.Data[i], want[i])
			}
		}
		s, _ := run.Sample(id)
		tasks[int(s.Extra["task_number"].(float64))] = true
	}
	if !tasks[1] {
		t.Fatalf("no session of task 1 (which has no frame of its own): tasks %v", tasks)
	}
}

func TestConfigWithoutCoordinatesNeedsMarkers(t *testing.T) {
	text := "folder_output: run\nscreen_resolution: {pixel_screen_width: 10, pixel_screen_height: 10}\nzoom_dependant_parameters: {M: {n_lines: 2, n_col: 2}}\nparticipants:\n  - name: a\n    zoom: M\n    tasks: [0]\n"
	_, err := ParseConfig("eye.yaml", []byte(text))
	if err == nil || !strings.Contains(err.Error(), `eye.yaml:5: participant "a" has no manual_screen_coordinates, so zoom "M" needs path_marker_top_left`) {
		t.Fatalf("err = %v", err)
	}
}

// A frame that is not an image, and markers that do not fit the frame: one sentence
// naming the file.
func TestLocateCodeAreaBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "0_frame.png")
	if err := os.WriteFile(bad, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readImage(bad); err == nil || !strings.Contains(err.Error(), bad+": not a PNG, JPEG or GIF image") {
		t.Fatalf("err = %v", err)
	}
	small := image.NewRGBA(image.Rect(0, 0, 40, 20))
	_, err := LocateCodeArea(small, testMarker(0), testMarker(1), [2]int{0, 0}, [2]int{0, 0})
	if err == nil || !strings.Contains(err.Error(), "top-left marker: the marker (48×32 pixels) is larger than the screen region (12×4)") {
		t.Fatalf("err = %v", err)
	}
}

// Any frame and markers (sizes and pixels from the fuzzer) give an area or an error,
// never a panic.
func FuzzLocateCodeArea(f *testing.F) {
	f.Add(uint8(40), uint8(30), uint8(5), uint8(4), []byte{1, 200, 3, 90})
	f.Add(uint8(1), uint8(1), uint8(1), uint8(1), []byte{})
	f.Add(uint8(200), uint8(120), uint8(3), uint8(60), []byte{255, 0, 255, 0, 17})
	f.Fuzz(func(t *testing.T, fw, fh, mw, mh uint8, px []byte) {
		mk := func(w, h int, seed int) *image.RGBA {
			m := image.NewRGBA(image.Rect(0, 0, max(w, 1), max(h, 1)))
			for i := range m.Pix {
				if len(px) > 0 {
					m.Pix[i] = px[(i+seed)%len(px)]
				}
			}
			return m
		}
		frame := mk(int(fw), int(fh), 0)
		a, err := LocateCodeArea(frame, mk(int(mw), int(mh), 1), mk(int(mh), int(mw), 2), [2]int{1, 1}, [2]int{int(fw), int(fh)})
		if err == nil && !(a.XEnd > a.XStart && a.YEnd > a.YStart) {
			t.Fatalf("empty area %+v accepted", a)
		}
	})
}
