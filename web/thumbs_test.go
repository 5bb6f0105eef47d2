package web

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/store"
)

// TestThumbsEqualPooling checks the model view's thumbnails (/thumbs, pooled
// without building pyramids) of every head of a 2-layer, 3-head, 1,000-token
// sample stored as float32, float16 and bfloat16 against the top pyramid level
// pooled here from the full matrices, then again from a second server that reads
// the thumbnail cache files the first one wrote.
func TestThumbsEqualPooling(t *testing.T) {
	const L, H, n = 2, 3, 1000
	g := newGeometry(n)
	z := g.Levels - 1
	d := g.Dim(z)
	for _, dt := range []checkpoint.DType{checkpoint.F32, checkpoint.F16, checkpoint.BF16} {
		t.Run(string(dt), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			r := newRun(t, dir)
			writeSample(t, r, "s", fixture{layers: L, heads: H, n: n, dtype: dt}, 5)
			st, err := checkpoint.OpenSafetensors(r.AttentionPath("s"))
			if err != nil {
				t.Fatal(err)
			}
			var att [][]float32
			for l := range L {
				a, _, err := st.Float32(store.AttentionName(l))
				if err != nil {
					t.Fatal(err)
				}
				att = append(att, a)
			}
			st.Close()
			var first []string
			for round := range 2 {
				base, s := startServer(t, dir)
				for l := range L {
					for _, pool := range []string{"max", "mean"} {
						url := fmt.Sprintf("/api/runs/run/samples/s/thumbs/%d/%s", l, pool)
						resp, body := rawGet(t, base, "GET", url)
						if resp.StatusCode != 200 || resp.Header.Get("X-Shape") != fmt.Sprintf("%d,%d,%d", H, d, d) || len(body) != 4*H*d*d {
							t.Fatalf("GET %s: %d, shape %q, %d bytes", url, resp.StatusCode, resp.Header.Get("X-Shape"), len(body))
						}
						if round == 1 {
							if body != first[0] {
								t.Errorf("%s from the cache file differs from the pooled one", url)
							}
							first = first[1:]
							continue
						}
						first = append(first, body)
						data := make([]float32, H*d*d)
						for i := range data {
							data[i] = math.Float32frombits(binary.LittleEndian.Uint32([]byte(body[4*i : 4*i+4])))
						}
						for h := range H {
							what := fmt.Sprintf("%s layer %d head %d %s thumbnail (level %d)", dt, l, h, pool, z)
							if bad := checkCells(t, what, n, att[l][h*n*n:(h+1)*n*n], pool, z, 0, 0, d, d, data[h*d*d:(h+1)*d*d], 0); bad > 0 {
								t.Fatalf("%s: %d cells differ", what, bad)
							}
						}
					}
				}
				s.writers.Wait()
				if round == 0 {
					for l := range L {
						if _, err := os.Stat(filepath.Join(dir, CacheDir, "s", fmt.Sprintf("thumbs-l%d.thm", l))); err != nil {
							t.Fatalf("no thumbnail cache file after the first requests: %v", err)
						}
					}
					if s.lru.Len() != L {
						t.Errorf("%d items held after the thumbnails of %d layers; no pyramid should be built", s.lru.Len(), L)
					}
				}
			}
		})
	}
}

// TestPool16MatchesFloat checks the bit-pattern pooling of float16 and bfloat16
// heads (max over order-preserving keys, sums from a table, histogram of raw
// patterns) against decoding every cell to float32 first, on values of both
// signs, zeros of both signs, subnormals and infinities: the same pyramid, max
// cells and percentiles exactly, means to float32 rounding.
func TestPool16MatchesFloat(t *testing.T) {
	const n = 300
	rng := rand.New(rand.NewPCG(3, 4))
	for _, dt := range []checkpoint.DType{checkpoint.F16, checkpoint.BF16} {
		raw := make([]byte, 2*(n*n+7))
		dense := make([]float32, n*n)
		const off = 7 // the head starts mid-file
		for i := range dense {
			var u uint16
			switch k := rng.IntN(10); {
			case k < 3:
				u = 0 // a causal mask's zeros
			case k == 3:
				u = 0x8000 // -0
			case k == 4:
				u = uint16(rng.IntN(0x400)) | uint16(rng.IntN(2))<<15 // subnormal (float16)
			default:
				u = uint16(rng.IntN(0x7c00)) | uint16(rng.IntN(2))<<15
			}
			if i == 1234 {
				u = 0x7c00 // +Inf in float16
				if dt == checkpoint.BF16 {
					u = 0x7f80
				}
			}
			binary.LittleEndian.PutUint16(raw[2*(off+i):], u)
			dense[i] = decode16(dt, u)
		}
		got := buildPyramid(rawMatrix{b: raw, dt: dt, n: n, off: off})
		want := buildPyramid(denseMatrix{n, dense})
		if fmt.Sprint(got.pct, got.min) != fmt.Sprint(want.pct, want.min) {
			t.Errorf("%s: percentiles %v min %g, decoding to float32 gives %v min %g", dt, got.pct, got.min, want.pct, want.min)
		}
		for z := range got.max {
			for i := range got.max[z] {
				if got.max[z][i] != want.max[z][i] {
					t.Fatalf("%s level %d max cell %d: %g, decoding to float32 gives %g", dt, z+cacheFrom, i, got.max[z][i], want.max[z][i])
				}
				g, w := float64(got.mean[z][i]), float64(want.mean[z][i])
				if !(g == w || math.Abs(g-w) <= 1e-6*math.Abs(w)) {
					t.Fatalf("%s level %d mean cell %d: %g, decoding to float32 gives %g", dt, z+cacheFrom, i, g, w)
				}
			}
		}
		// The thumbnails of the same head equal its pyramid's top level.
		th := buildThumbs([]matrix{rawMatrix{b: raw, dt: dt, n: n, off: off}})
		top := len(want.max) - 1
		for i := range th.max[0] {
			if th.max[0][i] != want.max[top][i] {
				t.Fatalf("%s thumbnail max cell %d: %g, pyramid top level %g", dt, i, th.max[0][i], want.max[top][i])
			}
		}
	}
}
