package web

import (
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/store"
)

// getTile fetches one tile over HTTP.
func getTile(t testing.TB, base, url string) (rows, cols int, data []float32) {
	t.Helper()
	resp, err := client.Get(base + url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	sh := strings.Split(resp.Header.Get("X-Shape"), ",")
	rows, _ = strconv.Atoi(sh[0])
	cols, _ = strconv.Atoi(sh[1])
	if len(b) != 4*rows*cols {
		t.Fatalf("GET %s: %d bytes for shape %v", url, len(b), sh)
	}
	data = make([]float32, rows*cols)
	for i := range data {
		data[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return rows, cols, data
}

// checkPyramid fetches every tile of every level of one head, max and mean, and
// compares each cell with the pooling of the full matrix m ([n, n]) computed here
// in float64: max exactly, mean to 1e-6 of the block's mean absolute value.
func checkPyramid(t *testing.T, base, prefix string, n int, m []float32) {
	t.Helper()
	g := newGeometry(n)
	if g.Dim(g.Levels-1) > thumbMax || (g.Levels > 1 && g.Dim(g.Levels-2) <= thumbMax) {
		t.Fatalf("N=%d: %d levels, top side %d", n, g.Levels, g.Dim(g.Levels-1))
	}
	for z := range g.Levels {
		for _, pool := range []string{"max", "mean"} {
			bad := 0
			for ty := range g.Tiles(z) {
				for tx := range g.Tiles(z) {
					rows, cols, data := getTile(t, base, fmt.Sprintf("%s/%s/%d/%d/%d", prefix, pool, z, ty, tx))
					if want := min(g.Tile, g.Dim(z)-ty*g.Tile); rows != want {
						t.Fatalf("level %d tile (%d,%d): %d rows, want %d", z, ty, tx, rows, want)
					}
					if want := min(g.Tile, g.Dim(z)-tx*g.Tile); cols != want {
						t.Fatalf("level %d tile (%d,%d): %d cols, want %d", z, ty, tx, cols, want)
					}
					bad += checkCells(t, fmt.Sprintf("N=%d level %d %s", n, z, pool), n, m, pool, z, ty*g.Tile, tx*g.Tile, rows, cols, data, bad)
				}
			}
			if bad > 0 {
				t.Fatalf("N=%d level %d %s: %d cells differ", n, z, pool, bad)
			}
		}
	}
}

// checkCells compares cells [r0, r0+rows) × [c0, c0+cols) of level z of the
// pool ("max" or "mean") pyramid, given row-major in data, with the pooling of the
// full matrix m ([n, n]) computed here in float64: max exactly, mean to 1e-6 of
// the block's mean absolute value. It reports at most 5 - shown differences and
// returns how many cells differ.
func checkCells(t *testing.T, what string, n int, m []float32, pool string, z, r0, c0, rows, cols int, data []float32, shown int) int {
	t.Helper()
	f, bad := 1<<z, 0
	for i := range rows {
		mr0 := (r0 + i) * f
		mr1 := min(mr0+f, n)
		for j := range cols {
			mc0 := (c0 + j) * f
			mc1 := min(mc0+f, n)
			mx, sum, abs := math.Inf(-1), 0.0, 0.0
			for r := mr0; r < mr1; r++ {
				for _, v := range m[r*n+mc0 : r*n+mc1] {
					mx = max(mx, float64(v))
					sum += float64(v)
					abs += math.Abs(float64(v))
				}
			}
			cells := float64((mr1 - mr0) * (mc1 - mc0))
			want := mx
			if pool == "mean" {
				want = sum / cells
			}
			got := float64(data[i*cols+j])
			ok := got == want
			if pool == "mean" {
				// Float32 rounding of the cached means is relative to the
				// values' size (equal to the mean's for attention, which is
				// non-negative).
				ok = math.Abs(got-want) <= 1e-6*abs/cells+1e-12
			}
			if !ok {
				if shown+bad < 5 {
					t.Errorf("%s cell (%d, %d): %g, pooling the matrix gives %g", what, r0+i, c0+j, got, want)
				}
				bad++
			}
		}
	}
	return bad
}

// TestTilesEqualPooling checks every level of the max and mean pyramids of a
// 1,000-token sample (F32) against the pooling of the full matrix, then again
// from a second server that reads the cache file the first one wrote.
func TestTilesEqualPooling(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	r := newRun(t, dir)
	writeSample(t, r, "s", fixture{layers: 2, heads: 2, n: 1000}, 11)
	st, err := checkpoint.OpenSafetensors(r.AttentionPath("s"))
	if err != nil {
		t.Fatal(err)
	}
	data, _, err := st.Float32(store.AttentionName(1))
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	head1 := data[1000*1000:]
	before := snapshot(t, dir)
	base, s1 := startServer(t, dir)
	checkPyramid(t, base, "/api/runs/run/samples/s/tile/1/1", 1000, head1)
	s1.writers.Wait()
	cache := filepath.Join(dir, CacheDir, "s", "attention-l1-h1.pyr")
	if _, err := os.Stat(cache); err != nil {
		t.Fatalf("no cache file after the first requests: %v", err)
	}
	after := snapshot(t, dir)
	for p, v := range before {
		if after[p] != v {
			t.Errorf("run file %s changed while serving", p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok && !strings.HasPrefix(p, "cache/tiles/") {
			t.Errorf("server wrote %s outside the tile cache", p)
		}
	}
	// A second server reads the cached levels from the file.
	base2, s2 := startServer(t, dir)
	checkPyramid(t, base2, "/api/runs/run/samples/s/tile/1/1", 1000, head1)
	if len(s2.calls) != 0 || s2.lru.Len() != 1 {
		t.Errorf("second server: %d pyramids held", s2.lru.Len())
	}
}

// TestTilesEqualPooling8192 does the same on a synthetic 8,192-token head stored
// as float16 (values rounded to float16 here before pooling).
func TestTilesEqualPooling8192(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the 8,192-token pyramid check reads 1,365 tiles")
	}
	const n = 8192
	dir := filepath.Join(t.TempDir(), "run")
	r := newRun(t, dir)
	m := synthetic(n)
	writeMatrix(t, r, "long", n, checkpoint.F16, m)
	for i, v := range m {
		m[i] = checkpoint.HalfToFloat32(checkpoint.Float32ToHalf(v))
	}
	base, _ := startServer(t, dir)
	checkPyramid(t, base, "/api/runs/run/samples/long/tile/0/0", n, m)
}

// synthetic is an n × n causal matrix with a diagonal band, a few strong
// columns and pseudo-random texture.
func synthetic(n int) []float32 {
	m := make([]float32, n*n)
	x := uint32(2463534242)
	for q := range n {
		for k := 0; k <= q; k++ {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			v := float32(x>>8) / (1 << 24) * 0.01
			if q-k < 4 {
				v += 0.3
			}
			if k%997 == 0 {
				v += 0.2
			}
			m[q*n+k] = v
		}
	}
	return m
}

// writeMatrix writes a one-layer, one-head sample holding m.
func writeMatrix(t testing.TB, r *store.Run, id string, n int, dt checkpoint.DType, m []float32) {
	t.Helper()
	if err := os.MkdirAll(r.SampleDir(id), 0o755); err != nil {
		t.Fatal(err)
	}
	err := checkpoint.WriteSafetensors(r.AttentionPath(id), []checkpoint.TensorInfo{{Name: store.AttentionName(0), DType: dt, Shape: []int{1, n, n}}}, [][]float32{m}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &store.Sample{ID: id, PromptLen: n, Attention: &store.TensorsInfo{Layers: 1, Heads: 1, Query: n, Key: n, DType: string(dt)}}
	for i := range n {
		s.Tokens = append(s.Tokens, "w"+strconv.Itoa(i))
	}
	if err := r.WriteSample(s); err != nil {
		t.Fatal(err)
	}
}

// snapshot maps every file of dir (relative, slash-separated) to its size and
// modification time.
func snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPercentiles checks the recorded percentiles against sorted values.
func TestPercentiles(t *testing.T) {
	n := 300
	m := synthetic(n)
	p := buildPyramid(denseMatrix{n, m})
	sorted := append([]float32(nil), m...)
	slices.Sort(sorted)
	for i, pc := range Percentiles {
		k := int(math.Ceil(pc/100*float64(len(sorted)))) - 1
		want := sorted[max(k, 0)]
		got := p.pct[i]
		if got < want || float64(got) > float64(want)*1.01+1e-30 {
			t.Errorf("p%v = %g, sorted values give %g (bin upper edge within 1%% expected)", pc, got, want)
		}
	}
	if p.min != 0 {
		t.Errorf("min %g, want 0", p.min)
	}
}

// TestDerivedTilesEqualPooling checks the pyramid of matrix 1 of a derived
// [2, 300, 300] float64 output (values taken as float32) against pooling it here.
func TestDerivedTilesEqualPooling(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	r := newRun(t, dir)
	writeSample(t, r, "s", fixture{layers: 1, heads: 1, n: 300}, 12)
	const n = 300
	v := make([]float64, 2*n*n)
	for i := range v {
		v[i] = math.Sin(float64(i)*0.013) * float64(i%7)
	}
	writeDerived(t, r, "rollout", "s", []string{store.AxisLayer, store.AxisQuery, store.AxisKey}, []int{2, n, n}, v)
	m := make([]float32, n*n)
	for i := range m {
		m[i] = float32(v[n*n+i])
	}
	base, _ := startServer(t, dir)
	checkPyramid(t, base, "/api/runs/run/samples/s/dtile/rollout/1", n, m)
	resp, body := rawGet(t, base, "GET", "/api/runs/run/samples/s/dtile/rollout/2/max/0/0/0")
	if resp.StatusCode != 404 {
		t.Errorf("matrix 2 of 2: %d %s, want 404", resp.StatusCode, body)
	}
}
