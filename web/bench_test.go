package web

import (
	"context"
	"encoding/binary"
	"fmt"
	"github.com/attnscope/attnscope/internal/chromiumtest"
	"github.com/attnscope/attnscope/internal/procstat"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/store"
)

// gpt2Sized writes a 12-layer, 12-head, 1,024-token sample stored as float16 (a
// GPT-2-small capture's shape; 302 MB), one layer in memory at a time.
func gpt2Sized(b *testing.B, dir string) {
	const L, H, n = 12, 12, 1024
	r := newRun(b, dir)
	if err := os.MkdirAll(r.SampleDir("s"), 0o755); err != nil {
		b.Fatal(err)
	}
	var infos []checkpoint.TensorInfo
	for l := range L {
		infos = append(infos, checkpoint.TensorInfo{Name: store.AttentionName(l), DType: checkpoint.F16, Shape: []int{H, n, n}})
	}
	w, err := checkpoint.CreateSafetensors(r.AttentionPath("s"), infos, nil)
	if err != nil {
		b.Fatal(err)
	}
	layer := make([]float32, H*n*n)
	head := synthetic(n)
	for l := range L {
		for h := range H {
			rot := (l*H + h) * 37 % n
			for q := range n {
				for k := 0; k <= q; k++ {
					layer[(h*n+q)*n+k] = head[q*n+(k+rot)%(q+1)]
				}
			}
		}
		if err := w.Write(store.AttentionName(l), layer); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		b.Fatal(err)
	}
	s := &store.Sample{ID: "s", PromptLen: n, Attention: &store.TensorsInfo{Layers: L, Heads: H, Query: n, Key: n, DType: "F16"}}
	for i := range n {
		s.Tokens = append(s.Tokens, "w"+strconv.Itoa(i))
	}
	if err := r.WriteSample(s); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkFirstPaint measures, in headless Chromium, the time from starting a
// server on a 12 × 12 × 1,024-token sample (tile cache removed: cold) until the
// matrix view (the default for long samples) and the model view (144 thumbnails)
// have painted. Goal: under 1 s.
func BenchmarkFirstPaint(b *testing.B) {
	exe := chromiumtest.Path(b)
	dir := filepath.Join(b.TempDir(), "run")
	gpt2Sized(b, dir)
	actx, cancel := newChromium(b, exe)
	defer cancel()
	ctx, cancelTab := chromedp.NewContext(actx)
	defer cancelTab()
	if err := chromedp.Run(ctx, chromedp.Navigate("about:blank")); err != nil {
		b.Fatal(err)
	}
	for _, view := range []string{"matrix", "model"} {
		b.Run(view, func(b *testing.B) {
			var total, cpu time.Duration
			for range b.N {
				os.RemoveAll(filepath.Join(dir, "cache"))
				sctx, stop := context.WithCancel(context.Background())
				start, c0 := time.Now(), procstat.CPUTime()
				s, err := New([]string{dir}, Options{})
				if err != nil {
					b.Fatal(err)
				}
				addrc := make(chan string, 1)
				done := make(chan error, 1)
				go func() {
					done <- s.ListenAndServe(sctx, "127.0.0.1:0", func(a net.Addr) { addrc <- a.String() })
				}()
				addr := <-addrc
				tctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
				err = chromedp.Run(tctx, chromedp.Navigate("http://"+addr+"/#run=run&sample=s&view="+view),
					chromedp.WaitReady(`body[data-painted="1"]`, chromedp.ByQuery))
				elapsed := time.Since(start)
				cpu += procstat.CPUTime() - c0 // the server's CPU (Chromium is another process)
				cancelT()
				stop()
				<-done
				if err != nil {
					b.Fatal(err)
				}
				total += elapsed
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/first-paint")
			b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "server-cpu-ms")
		})
	}
}

// long8192 writes a one-head 8,192-token float16 sample.
func long8192(b *testing.B) string {
	dir := filepath.Join(b.TempDir(), "run")
	r := newRun(b, dir)
	writeMatrix(b, r, "long", 8192, checkpoint.F16, synthetic(8192))
	return dir
}

func fetch(url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	return err
}

// randomTile is a random tile of a random level and pool of the 8,192-token head.
func randomTile(base string, rng *rand.Rand) string {
	g := newGeometry(8192)
	z := rng.IntN(g.Levels)
	pool := [2]string{"max", "mean"}[rng.IntN(2)]
	return fmt.Sprintf("%s/api/runs/run/samples/long/tile/0/0/%s/%d/%d/%d", base, pool, z, rng.IntN(g.Tiles(z)), rng.IntN(g.Tiles(z)))
}

// BenchmarkTile8192 measures tiles of an 8,192-token head: cold (a new server, no
// cache file: the first tile builds the pyramid) and warm (random tiles at every
// level; p50 and p99 latency). Goals: cold under 500 ms, warm p99 under 50 ms.
func BenchmarkTile8192(b *testing.B) {
	dir := long8192(b)
	b.Run("cold", func(b *testing.B) {
		var total, cpu time.Duration
		for range b.N {
			os.RemoveAll(filepath.Join(dir, "cache"))
			base, _ := startServer(b, dir)
			start, c0 := time.Now(), procstat.CPUTime()
			if err := fetch(base + "/api/runs/run/samples/long/tile/0/0/max/7/0/0"); err != nil {
				b.Fatal(err)
			}
			total, cpu = total+time.Since(start), cpu+procstat.CPUTime()-c0
		}
		b.ReportMetric(float64(total.Microseconds())/1e3/float64(b.N), "ms/cold-tile")
		b.ReportMetric(float64(cpu.Microseconds())/1e3/float64(b.N), "cpu-ms/cold-tile")
	})
	b.Run("warm", func(b *testing.B) {
		base, _ := startServer(b, dir)
		if err := fetch(base + "/api/runs/run/samples/long/tile/0/0/max/7/0/0"); err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		lat := make([]time.Duration, 0, b.N)
		c0 := procstat.CPUTime()
		b.ResetTimer()
		for range b.N {
			u := randomTile(base, rng)
			start := time.Now()
			if err := fetch(u); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		b.ReportMetric(float64((procstat.CPUTime()-c0).Microseconds())/1e3/float64(b.N), "cpu-ms/tile")
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1e3, "ms-p50")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1e3, "ms-p99")
	})
}

// BenchmarkTileLoad runs a load generator on 127.0.0.1 against a warm server: 8
// connections request random tiles of the 8,192-token head for 30 s
// (ATTNSCOPE_LOAD_SECONDS overrides) and it reports requests per second, errors
// and the process's peak RSS after the fixture was written (server and generator
// together). Goal: ≥ 1,000/s,
// no error.
func BenchmarkTileLoad(b *testing.B) {
	secs := 30.0
	if v, err := strconv.ParseFloat(os.Getenv("ATTNSCOPE_LOAD_SECONDS"), 64); err == nil && v > 0 {
		secs = v
	}
	dir := long8192(b)
	base, _ := startServer(b, dir)
	if err := fetch(base + "/api/runs/run/samples/long/tile/0/0/max/7/0/0"); err != nil {
		b.Fatal(err)
	}
	// Peak RSS from here on: the fixture's generation is not the server's.
	runtime.GC()
	debug.FreeOSMemory()
	procstat.ResetPeakRSS()
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	cl := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	for range b.N {
		var ok, failed atomic.Int64
		deadline := time.Now().Add(time.Duration(secs * float64(time.Second)))
		var wg sync.WaitGroup
		start, c0 := time.Now(), procstat.CPUTime()
		for c := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(c), 9))
				for time.Now().Before(deadline) {
					resp, err := cl.Get(randomTile(base, rng))
					if err != nil {
						failed.Add(1)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						failed.Add(1)
					} else {
						ok.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		el := time.Since(start).Seconds()
		b.ReportMetric(float64(ok.Load())/el, "req/s")
		b.ReportMetric(float64((procstat.CPUTime()-c0).Microseconds())/1e3/float64(ok.Load()+failed.Load()), "cpu-ms/req")
		b.ReportMetric(float64(failed.Load()), "errors")
		b.ReportMetric(float64(procstat.PeakRSS())/(1<<20), "peak-RSS-MB")
		if failed.Load() > 0 {
			b.Errorf("%d of %d tile requests failed", failed.Load(), failed.Load()+ok.Load())
		}
	}
}

// BenchmarkBuildPyramid8192 is the cold path without HTTP or disk: one pass over
// an 8,192-token float16 head (decode, histogram, pooling to level 2, levels above).
func BenchmarkBuildPyramid8192(b *testing.B) {
	const n = 8192
	m := synthetic(n)
	raw := make([]byte, 2*n*n)
	for i, v := range m {
		binary.LittleEndian.PutUint16(raw[2*i:], checkpoint.Float32ToHalf(v))
	}
	m = nil
	b.ResetTimer()
	for range b.N {
		buildPyramid(rawMatrix{b: raw, dt: checkpoint.F16, n: n})
	}
}

// BenchmarkThumbs1024 is the model view's cold work for one layer without HTTP or
// disk: the thumbnails of 12 float16 heads of 1,024 tokens (one pass per head).
func BenchmarkThumbs1024(b *testing.B) {
	const n, H = 1024, 12
	m := synthetic(n)
	raw := make([]byte, 2*H*n*n)
	for h := range H {
		for i, v := range m {
			binary.LittleEndian.PutUint16(raw[2*(h*n*n+i):], checkpoint.Float32ToHalf(v))
		}
	}
	heads := make([]matrix, H)
	for h := range heads {
		heads[h] = rawMatrix{b: raw, dt: checkpoint.F16, n: n, off: h * n * n}
	}
	b.ResetTimer()
	c0 := procstat.CPUTime()
	for range b.N {
		buildThumbs(heads)
	}
	b.ReportMetric(float64((procstat.CPUTime()-c0).Microseconds())/1e3/float64(b.N), "cpu-ms/layer")
}
