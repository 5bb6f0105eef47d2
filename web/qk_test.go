package web

import (
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/capture/capturetest"
	"github.com/attnscope/attnscope/store"
)

// TestQKSampleServesTiles: a sample captured with --store qk (queries, keys and
// log-sum-exps, no attention file) is served by recomputing tiles through the
// store's tile API: every tile of every pyramid level (max and mean), the
// thumbnails and the head view of every layer and head equal those of a full
// capture of the same model and text within 1e-6 (the tolerance of tiles
// against the materialised attention).
func TestQKSampleServesTiles(t *testing.T) {
	model := capturetest.TinyLlama(t, 500)
	root := t.TempDir()
	for _, name := range []string{"full", "qk"} {
		capturetest.Capture(t, model, filepath.Join(root, name), capturetest.Code(60), name == "qk")
	}
	qr, err := store.Open(filepath.Join(root, "qk"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := qr.Sample("s")
	if err != nil || s.QK == nil {
		t.Fatalf("qk sample: %+v, %v", s, err)
	}
	info := s.QK
	base, _ := startServer(t, filepath.Join(root, "full"), filepath.Join(root, "qk"))
	worst := 0.0
	compare := func(what, url string) {
		t.Helper()
		fs, want := getFloats(t, base, "/api/runs/full/samples/s/"+url)
		gs, got := getFloats(t, base, "/api/runs/qk/samples/s/"+url)
		if fs != gs || len(got) != len(want) {
			t.Fatalf("%s: qk shape %s, full %s", what, gs, fs)
		}
		for i := range want {
			d := math.Abs(float64(got[i]) - float64(want[i]))
			if d > 1e-6 || math.IsNaN(float64(got[i])) {
				t.Fatalf("%s value %d: qk %.9g, full %.9g", what, i, got[i], want[i])
			}
			worst = max(worst, d)
		}
	}
	g := newGeometry(info.Tokens)
	if g.Levels < 2 {
		t.Fatalf("%d tokens give %d pyramid levels, want several", info.Tokens, g.Levels)
	}
	for l := range info.Layers {
		for _, pool := range []string{"max", "mean"} {
			compare(fmt.Sprintf("layer %d thumbnails %s", l, pool), fmt.Sprintf("thumbs/%d/%s", l, pool))
		}
		compare(fmt.Sprintf("layer %d heads", l), fmt.Sprintf("layer/%d", l))
		for h := range info.Heads {
			for z := range g.Levels {
				for ty := range g.Tiles(z) {
					for tx := range g.Tiles(z) {
						for _, pool := range []string{"max", "mean"} {
							compare(fmt.Sprintf("layer %d head %d level %d tile (%d, %d) %s", l, h, z, ty, tx, pool), fmt.Sprintf("tile/%d/%d/%s/%d/%d/%d", l, h, pool, z, ty, tx))
						}
					}
				}
			}
		}
	}
	t.Logf("%d tokens, %d layers × %d heads, %d levels: largest difference from the full capture %.3g", info.Tokens, info.Layers, info.Heads, g.Levels, worst)
	for _, url := range []string{fmt.Sprintf("tile/%d/0/max/0/0/0", info.Layers), fmt.Sprintf("tile/0/%d/max/0/0/0", info.Heads)} {
		if resp, body := rawGet(t, base, "GET", "/api/runs/qk/samples/s/"+url); resp.StatusCode != 404 || body == "" {
			t.Errorf("GET %s: %d %s, want 404 with a message", url, resp.StatusCode, body)
		}
	}
}

// getFloats fetches a binary float32 answer over HTTP: its X-Shape and values.
func getFloats(t testing.TB, base, url string) (string, []float32) {
	t.Helper()
	resp, b := rawGet2(t, base, url)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	n := 1
	for _, d := range strings.Split(resp.Header.Get("X-Shape"), ",") {
		v, err := strconv.Atoi(d)
		if err != nil {
			t.Fatalf("GET %s: X-Shape %q", url, resp.Header.Get("X-Shape"))
		}
		n *= v
	}
	if len(b) != 4*n {
		t.Fatalf("GET %s: %d bytes for shape %s", url, len(b), resp.Header.Get("X-Shape"))
	}
	data := make([]float32, n)
	for i := range data {
		data[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return resp.Header.Get("X-Shape"), data
}
