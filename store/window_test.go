package store_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attnscope/attnscope/internal/s3test"
	"github.com/attnscope/attnscope/internal/testutil"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

func TestParseSpan(t *testing.T) {
	for text, want := range map[string]store.Span{"0:1": {From: 0, To: 1}, "30000:30200": {From: 30000, To: 30200}, " 5 : 9 ": {From: 5, To: 9}} {
		if got, err := store.ParseSpan(text); err != nil || got != want {
			t.Errorf("ParseSpan(%q) = %v, %v; want %v", text, got, err, want)
		}
	}
	for text, want := range map[string]string{
		"5": "A:B expected", "a:b": "A:B expected", "": "A:B expected", "1:2:3": "A:B expected", ":4": "A:B expected",
		"5:3": "the start 5 is not below the end 3", "5:5": "the start 5 is not below the end 5", "-1:3": "positions start at 0",
	} {
		if _, err := store.ParseSpan(text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSpan(%q): error %v, want %q", text, err, want)
		}
	}
}

// writeFullRun writes a run of one sample "s" with a full capture's attention:
// layers × [heads, n, n] float32 weights (random, not normalised: only their
// positions matter here).
func writeFullRun(t testing.TB, dir string, layers, heads, n int) string {
	t.Helper()
	p := filepath.Join(dir, "full")
	r, err := store.Create(p, store.Meta{Kind: "capture", DType: "float32", StartTime: time.Unix(0, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.NewSample("s", store.SampleOptions{Layers: layers})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for l := range layers {
		att := make([]float32, heads*n*n)
		for i := range att {
			att[i] = rng.Float32()
		}
		if err := w.Record(store.AttentionName(l), []int{heads, n, n}, att); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(&store.Sample{ID: "s", Text: "s"}); err != nil {
		t.Fatal(err)
	}
	return p
}

// window reads window w of layer l.
func window(t *testing.T, a *store.AttentionWindows, l int, w store.Window) *tensor.Tensor {
	t.Helper()
	_, H, _, _ := a.Shape()
	out := tensor.New(H, w.Rows.Len(), w.Cols.Len())
	if err := a.WindowInto(out, l, w); err != nil {
		t.Fatal(err)
	}
	return out
}

func win(r0, r1, c0, c1 int) store.Window {
	return store.Window{Rows: store.Span{From: r0, To: r1}, Cols: store.Span{From: c0, To: c1}}
}

// TestAttentionWindows: a window of a full capture (read in one range per head, or
// one per row when the rows' span would read more than twice the window) equals
// the slice of its whole layer bit for bit; a window of a --store qk sample equals
// QKReader.Tile of each head bit for bit; a window outside the matrix, a layer
// that does not exist and a buffer of the wrong shape are errors.
func TestAttentionWindows(t *testing.T) {
	const layers, heads, n = 2, 3, 50
	full := testutil.Must(store.Open(writeFullRun(t, t.TempDir(), layers, heads, n)))
	a := testutil.Must(full.OpenWindows("s"))
	defer a.Close()
	if L, H, Q, K := a.Shape(); L != layers || H != heads || Q != n || K != n {
		t.Fatalf("shape %d, %d, %d, %d", L, H, Q, K)
	}
	for _, w := range []store.Window{win(0, n, 0, n), win(10, 20, 3, 6), win(5, 45, 1, 50), win(49, 50, 0, 1)} {
		for l := range layers {
			got := window(t, a, l, w)
			whole := testutil.Must(full.AttentionLayer("s", l))
			for h := range heads {
				for i := range w.Rows.Len() {
					for j := range w.Cols.Len() {
						if g, want := got.At(h, i, j), whole.At(h, w.Rows.From+i, w.Cols.From+j); g != want {
							t.Fatalf("full run, layer %d window %v: head %d [%d, %d] = %g, the layer's %g", l, w, h, i, j, g, want)
						}
					}
				}
			}
		}
	}
	const qkHeads, kvHeads, qn, hd = 4, 2, 150, 8
	qkRun := testutil.Must(store.Open(writeQKRun(t, t.TempDir(), layers, qkHeads, kvHeads, qn, hd)))
	qa := testutil.Must(qkRun.OpenWindows("s"))
	defer qa.Close()
	tiles := testutil.Must(qkRun.OpenQK("s"))
	defer tiles.Close()
	for _, w := range []store.Window{win(100, 130, 0, 150), win(7, 90, 60, 75), win(149, 150, 149, 150)} {
		for l := range layers {
			got := window(t, qa, l, w)
			for h := range qkHeads {
				want := testutil.Must(tiles.Tile(l, h, w.Rows.From, w.Rows.To, w.Cols.From, w.Cols.To))
				if !sameBits(got.Sub(h).Data, want.Data) {
					t.Fatalf("qk run, layer %d window %v head %d: differs from QKReader.Tile", l, w, h)
				}
			}
		}
	}
	for _, c := range []struct {
		a    *store.AttentionWindows
		l    int
		w    store.Window
		dst  *tensor.Tensor
		want string
	}{
		{a, 0, win(40, 51, 0, 5), tensor.New(heads, 11, 5), "not a non-empty window inside the 50×50 attention matrix"},
		{a, 0, win(4, 4, 0, 5), tensor.New(heads, 0, 5), "not a non-empty window"},
		{a, layers, win(0, 1, 0, 1), tensor.New(heads, 1, 1), "layer 2 is outside the sample's 2 layers"},
		{a, 0, win(0, 2, 0, 2), tensor.New(heads, 2, 3), "buffer of shape [3 2 3], want [3 2 2]"},
		{qa, 0, win(0, 151, 0, 5), tensor.New(qkHeads, 151, 5), "not a non-empty range inside the 150×150 attention matrix"},
		{qa, 0, win(0, 2, 0, 2), tensor.New(qkHeads, 2, 3), "buffer of shape"},
	} {
		if err := c.a.WindowInto(c.dst, c.l, c.w); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("layer %d window %v: error %v, want %q", c.l, c.w, err, c.want)
		}
	}
}

// TestS3WindowsRanged: a window of a full capture read from S3 fetches the
// safetensors header, then per head the window's rows: one range spanning them, or
// one range per row, never the layer.
func TestS3WindowsRanged(t *testing.T) {
	srv := s3test.StartEnv(t)
	ctx := context.Background()
	const layers, heads, n = 2, 3, 400
	local := writeFullRun(t, t.TempDir(), layers, heads, n)
	b := testutil.Must(store.OpenS3(ctx, "s3://runs/full"))
	if _, err := b.PushRun(ctx, local); err != nil {
		t.Fatal(err)
	}
	rr := testutil.Must(store.OpenRead(ctx, "s3://runs/full"))
	size := testutil.Must(os.Stat(filepath.Join(local, "samples", "s", store.AttentionFile))).Size()
	ra := testutil.Must(rr.OpenWindows("s"))
	defer ra.Close()
	la := testutil.Must(testutil.Must(store.Open(local)).OpenWindows("s"))
	defer la.Close()
	for _, c := range []struct {
		w    store.Window
		sent int64 // float32 weights fetched
	}{
		{win(300, 340, 100, 300), heads * (39*n + 200)}, // one range per head
		{win(10, 20, 390, 393), heads * 10 * 3},         // one range per row
	} {
		before := srv.Sent.Load()
		got := window(t, ra, 1, c.w)
		sent := srv.Sent.Load() - before
		if want := window(t, la, 1, c.w); !sameBits(got.Data, want.Data) {
			t.Fatalf("window %v: the S3 run's differs from the local run's", c.w)
		}
		if sent != 4*c.sent {
			t.Errorf("window %v: the S3 server sent %d bytes, %d expected (the attention file is %d)", c.w, sent, 4*c.sent, size)
		}
	}
}
