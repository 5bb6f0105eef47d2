package web

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"github.com/attnscope/attnscope/internal/chromiumtest"
	"github.com/attnscope/attnscope/store"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/attnscope/attnscope/checkpoint"
)

var update = flag.Bool("update", false, "rewrite the browser test's golden screenshots (testdata/golden)")

// newChromium starts headless Chromium at 1200 × 800, device pixel ratio 1, as the
// golden screenshots were taken.
func newChromium(t testing.TB, exe string) (context.Context, context.CancelFunc) {
	t.Helper()
	return chromiumtest.Start(t, exe, chromedp.WindowSize(1200, 800),
		chromedp.Flag("force-device-scale-factor", "1"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("font-render-hinting", "none"))
}

// watcher records what a page does wrong: console errors, exceptions, failed or
// refused requests, answers of 400 and above, requests to other hosts.
type watcher struct {
	mu       sync.Mutex
	problems []string
	requests int
}

func (w *watcher) listen(ctx context.Context, base string) {
	chromedp.ListenTarget(ctx, func(ev any) {
		w.mu.Lock()
		defer w.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			w.requests++
			if !strings.HasPrefix(e.Request.URL, base+"/") && !strings.HasPrefix(e.Request.URL, "data:") {
				w.problems = append(w.problems, "request outside the server: "+e.Request.URL)
			}
		case *network.EventResponseReceived:
			if e.Response.Status >= 400 {
				w.problems = append(w.problems, fmt.Sprintf("HTTP %d: %s", int(e.Response.Status), e.Response.URL))
			}
		case *network.EventLoadingFailed:
			if !e.Canceled {
				w.problems = append(w.problems, "request failed: "+e.ErrorText)
			}
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError || e.Type == runtime.APITypeAssert || e.Type == runtime.APITypeWarning {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				w.problems = append(w.problems, "console."+string(e.Type)+": "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			w.problems = append(w.problems, "exception: "+msg)
		case *log.EventEntryAdded:
			if e.Entry.Level == log.LevelError || e.Entry.Level == log.LevelWarning {
				w.problems = append(w.problems, "log: "+e.Entry.Text+" "+e.Entry.URL)
			}
		}
	})
}

func (w *watcher) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.problems
	w.problems = nil
	return p
}

// page drives one tab.
type page struct {
	t    *testing.T
	ctx  context.Context
	base string
	w    *watcher
	shot string // folder for the screenshots taken (ATTNSCOPE_SCREENSHOTS), or ""
}

func (p *page) run(what string, actions ...chromedp.Action) {
	p.t.Helper()
	if err := chromedp.Run(p.ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// act clears the painted mark, runs actions and waits until the view has painted.
func (p *page) act(what string, actions ...chromedp.Action) {
	p.t.Helper()
	p.run(what, append(append([]chromedp.Action{chromedp.Evaluate(`document.body.dataset.painted = ""`, nil)}, actions...),
		chromedp.WaitReady(`body[data-painted="1"]`, chromedp.ByQuery))...)
	for _, pr := range p.w.take() {
		p.t.Errorf("%s: %s", what, pr)
	}
}

func (p *page) goHash(what, hash string) {
	p.t.Helper()
	p.act(what, chromedp.Evaluate(`location.hash = `+strconv.Quote(hash), nil))
}

func (p *page) eval(expr string, out any) {
	p.t.Helper()
	p.run(expr, chromedp.Evaluate(expr, out))
}

func (p *page) hash() string {
	var h string
	p.eval(`location.hash`, &h)
	return h
}

// screenshot compares the viewport with testdata/golden/<name>.png: at most 2% of
// the pixels may differ by more than 48 in a channel (font rasterisation differs
// slightly between Chromium builds). -update rewrites the golden.
func (p *page) screenshot(name string) {
	p.t.Helper()
	var buf []byte
	p.run("screenshot "+name,
		chromedp.Evaluate(`document.fonts.ready.then(() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))))`, nil,
			func(e *runtime.EvaluateParams) *runtime.EvaluateParams { return e.WithAwaitPromise(true) }),
		chromedp.CaptureScreenshot(&buf))
	if p.shot != "" {
		os.WriteFile(filepath.Join(p.shot, name+".png"), buf, 0o644)
	}
	golden := filepath.Join("testdata", "golden", name+".png")
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			p.t.Fatal(err)
		}
		if err := os.WriteFile(golden, buf, 0o644); err != nil {
			p.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		p.t.Errorf("screenshot %s: no golden (%v); run go test ./web -run Browser -update", name, err)
		return
	}
	frac, err := pixelDiff(want, buf)
	if err != nil {
		p.t.Errorf("screenshot %s: %v", name, err)
	} else if frac > 0.02 {
		p.t.Errorf("screenshot %s: %.1f%% of pixels differ from %s (at most 2%% allowed); set ATTNSCOPE_SCREENSHOTS=DIR to keep the new one", name, 100*frac, golden)
	}
}

// pixelDiff returns the fraction of pixels whose channels differ by more than 48.
func pixelDiff(a, b []byte) (float64, error) {
	ia, err := png.Decode(bytes.NewReader(a))
	if err != nil {
		return 0, err
	}
	ib, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	if ia.Bounds() != ib.Bounds() {
		return 1, fmt.Errorf("size %v, golden %v", ib.Bounds(), ia.Bounds())
	}
	return diffImages(ia, ib), nil
}

func diffImages(a, b image.Image) float64 {
	r := a.Bounds()
	bad := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			d := max(absDiff(r1, r2), absDiff(g1, g2), absDiff(b1, b2)) >> 8
			if d > 48 {
				bad++
			}
		}
	}
	return float64(bad) / float64(r.Dx()*r.Dy())
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

// TestPixelDiffCanFail checks that the screenshot comparison catches a change.
func TestPixelDiffCanFail(t *testing.T) {
	a := image.NewRGBA(image.Rect(0, 0, 10, 10))
	b := image.NewRGBA(image.Rect(0, 0, 10, 10))
	if d := diffImages(a, b); d != 0 {
		t.Fatalf("equal images differ by %v", d)
	}
	for x := range 10 {
		b.Pix[4*x] = 200
	}
	if d := diffImages(a, b); d != 0.1 {
		t.Fatalf("one changed row of ten: %v, want 0.1", d)
	}
}

// TestBrowser opens every view of two synthetic runs in headless Chromium,
// steps layers and heads with the keyboard, hovers tokens, zooms the matrix to
// token level and back, follows a link of the metrics table, and checks that no
// request fails, nothing is fetched from elsewhere and nothing is logged as an
// error; each view's screenshot is compared with its golden.
func TestBrowser(t *testing.T) {
	exe := chromiumtest.Path(t)
	alpha, beta := demoRuns(t, t.TempDir())
	base, _ := startServer(t, alpha, beta)
	actx, cancel := newChromium(t, exe)
	defer cancel()
	ctx, cancelTab := chromedp.NewContext(actx)
	defer cancelTab()
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	defer cancelT()
	w := &watcher{}
	w.listen(ctx, base)
	p := &page{t: t, ctx: ctx, base: base, w: w, shot: os.Getenv("ATTNSCOPE_SCREENSHOTS")}
	p.run("start", network.Enable(), runtime.Enable(), log.Enable(), chromedp.EmulateViewport(1200, 800))

	p.act("runs page", chromedp.Navigate(base+"/"))
	p.screenshot("runs")
	p.act("open run", chromedp.Click(`a.run-link`, chromedp.ByQuery))
	p.screenshot("run")
	p.act("open sample", chromedp.Click(`a.sample-link`, chromedp.ByQuery))
	if h := p.hash(); h != "#run=alpha&sample=code" {
		t.Errorf("after opening the sample the URL says %q", h)
	}

	// Head view: keyboard stepping and hovering.
	var view string
	p.eval(`document.body.dataset.view`, &view)
	if view != "head" {
		t.Fatalf("a 60-token sample opens in the %q view, want head", view)
	}
	p.act("next layer", chromedp.KeyEvent("]"))
	p.act("next head", chromedp.KeyEvent("."))
	if h := p.hash(); !strings.Contains(h, "layer=1") || !strings.Contains(h, "head=1") {
		t.Errorf("after ] and . the URL says %q, want layer=1 and head=1", h)
	}
	p.act("all heads", chromedp.Click(`#heads-all`, chromedp.ByQuery))
	p.run("hover a token", chromedp.ScrollIntoView(`#headview .left .tok[data-i="20"]`, chromedp.ByQuery), hover(`#headview .left .tok[data-i="20"]`))
	var hovered string
	p.eval(`document.querySelector("#headview").dataset.hover + "/" + !document.querySelector("#tip").hidden`, &hovered)
	if hovered != "q20/true" {
		t.Errorf("hovering query token 20: %q, want q20/true (row isolated, tooltip shown)", hovered)
	}
	p.screenshot("head")
	p.run("hover a key", hover(`#headview .right .tok[data-i="3"]`))
	p.eval(`document.querySelector("#headview").dataset.hover`, &hovered)
	if hovered != "k3" {
		t.Errorf("hovering key token 3: %q, want k3", hovered)
	}
	p.act("reload keeps the state", chromedp.Reload())
	if h := p.hash(); !strings.Contains(h, "layer=1") || !strings.Contains(h, "heads=all") {
		t.Errorf("after reloading the URL says %q", h)
	}

	// Model view: thumbnails, click one.
	p.act("model view", chromedp.Click(`#tab-model`, chromedp.ByQuery))
	var drawn int
	p.eval(`Array.from(document.querySelectorAll("#modelview canvas")).filter(c => c.width > 1).length`, &drawn)
	if drawn != 12 {
		t.Errorf("model view drew %d thumbnails, want 12", drawn)
	}
	p.screenshot("model")
	p.act("open a thumbnail", chromedp.Click(`#modelview canvas[data-layer="2"][data-head="3"]`, chromedp.ByQuery))
	if h := p.hash(); !strings.Contains(h, "view=matrix") || !strings.Contains(h, "layer=2") || !strings.Contains(h, "head=3") {
		t.Errorf("clicking thumbnail (2, 3) led to %q", h)
	}

	// Matrix view of the 1,500-token sample: zoom to token level and back.
	p.goHash("long matrix", "run=alpha&sample=long&view=matrix&layer=1&head=1")
	level := func() (z, labels int) {
		var s string
		p.eval(`document.querySelector("#matrix").dataset.level + "/" + document.querySelector("#matrix").dataset.labels`, &s)
		fmt.Sscanf(s, "%d/%d", &z, &labels)
		return
	}
	// 1,500 rows on a 630-pixel canvas: level 1 (2 × 2 cells per pooled cell).
	if z, l := level(); z != 1 || l != 0 {
		t.Errorf("whole 1,500-token matrix: level %d with %d labels, want level 1 without labels", z, l)
	}
	p.screenshot("matrix")
	for i := 0; i < 12; i++ {
		if z, l := level(); z == 0 && l > 0 {
			break
		}
		p.act("zoom in", wheel(`#matrix`, -300))
	}
	if z, l := level(); z != 0 || l == 0 {
		t.Errorf("zoomed in: level %d with %d token labels, want level 0 with labels", z, l)
	}
	p.act("pan", drag(`#matrix`, 120, 80))
	p.screenshot("matrix-tokens")
	zoomed := p.hash()
	if !strings.Contains(zoomed, "zoom=") {
		t.Errorf("zoom not in the URL: %q", zoomed)
	}
	p.act("reload zoomed", chromedp.Reload())
	if z, l := level(); z != 0 || l == 0 {
		t.Errorf("reloaded %q: level %d with %d labels", zoomed, z, l)
	}
	p.act("reset zoom", chromedp.KeyEvent("0"))
	if z, l := level(); z != 1 || l != 0 {
		t.Errorf("after reset: level %d with %d labels", z, l)
	}
	p.act("mean pool", chromedp.SetValue(`#pool`, "mean", chromedp.ByQuery), chromedp.Evaluate(`document.querySelector("#pool").dispatchEvent(new Event("change"))`, nil))
	p.act("head view of a long sample", chromedp.Click(`#tab-head`, chromedp.ByQuery))
	var note string
	p.eval(`document.querySelector("#toolong") ? "yes" : "no"`, &note)
	if note != "yes" {
		t.Error("head view of 1,500 tokens: no notice pointing to the matrix view")
	}

	// Neuron view: numbers equal q·k from the stored Q/K.
	p.goHash("neuron", "run=alpha&sample=code&view=neuron&layer=1&head=2&q=30")
	var rows [][]float64
	p.eval(`Array.from(document.querySelectorAll("#neuron tr[data-key]")).map(r => [+r.dataset.key, +r.dataset.score, +r.dataset.softmax, +r.dataset.stored])`, &rows)
	checkNeuron(t, filepath.Join(alpha, "samples", "code"), 1, 2, 30, rows)
	p.screenshot("neuron")

	// Source view: click a token to follow its attention.
	p.goHash("source", "run=alpha&sample=code&view=code&layer=2")
	p.screenshot("code")
	p.act("follow a token", chromedp.Click(`pre.code span[data-tok="12"]`, chromedp.ByQuery))
	if h := p.hash(); !strings.Contains(h, "from=12") {
		t.Errorf("clicking token 12 led to %q", h)
	}

	// A derived [N, N] output in the matrix view, through its own tiles.
	p.goHash("derived matrix", "run=alpha&sample=code&view=matrix&src=rollout")
	var src string
	p.eval(`document.querySelector("#source").value + "/" + document.querySelector("#matrix").dataset.tiles`, &src)
	if src != "rollout/1" {
		t.Errorf("matrix view of the rollout output: %q, want rollout/1 (one tile)", src)
	}

	// Derived outputs.
	p.goHash("derived", "run=alpha&sample=code&view=derived&pass=rollout")
	p.screenshot("derived")
	p.goHash("derived bars", "run=alpha&sample=code&view=derived&pass=received")
	// A [layer, head] output: a heatmap with its layer and head ticks (by the
	// axes pass.json declares, not by its shape).
	p.goHash("derived layers × heads", "run=alpha&sample=code&view=derived&pass=entropy")
	p.screenshot("derived-units")

	// Metrics: sort, filter, follow a link.
	p.goHash("metrics", "run=alpha&sample=code&view=metrics")
	p.act("sort by value", chromedp.Click(`#metrics th[data-col="value"]`, chromedp.ByQuery))
	p.act("sort descending", chromedp.Click(`#metrics th[data-col="value"]`, chromedp.ByQuery))
	p.screenshot("metrics")
	var first string
	p.eval(`document.querySelector("#metrics a.open-link").getAttribute("href")`, &first)
	p.act("follow the metrics link", chromedp.Click(`#metrics a.open-link`, chromedp.ByQuery))
	if h := p.hash(); h != first || !strings.Contains(h, "sample=code") || !strings.Contains(h, "layer=2") || !strings.Contains(h, "head=3") {
		t.Errorf("metrics link %q led to %q (the largest value is code's entropy at layer 2, head 3)", first, h)
	}
	p.eval(`document.body.dataset.view`, &view)
	if view != "matrix" {
		t.Errorf("metrics link opened the %q view", view)
	}
	p.act("filter", chromedp.Evaluate(`location.hash = "run=alpha&sample=code&view=metrics&filter=max_weight"`, nil))
	var n int
	p.eval(`document.querySelectorAll("#metrics tr").length - 1`, &n)
	if n != 1 {
		t.Errorf("filter max_weight shows %d rows, want 1", n)
	}

	// Comparison of two runs on one prompt.
	p.goHash("compare", "run=alpha&sample=code&view=compare&run2=beta&sample2=code&layer=1&head=0")
	p.eval(`document.querySelector("#compare-diff") ? 1 : 0`, &n)
	if n != 1 {
		t.Error("comparing two runs on the same text shows no per-character difference")
	}
	p.screenshot("compare")
	if w.requests < 20 {
		t.Errorf("only %d requests seen: the watcher is not listening", w.requests)
	}
}

func hover(sel string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var box []float64
		if err := chromedp.Evaluate(`(() => { const r = document.querySelector(`+strconv.Quote(sel)+`).getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()`, &box).Do(ctx); err != nil {
			return err
		}
		return input.DispatchMouseEvent(input.MouseMoved, box[0], box[1]).Do(ctx)
	})
}

func center(ctx context.Context, sel string) (float64, float64, error) {
	var box []float64
	err := chromedp.Evaluate(`(() => { const r = document.querySelector(`+strconv.Quote(sel)+`).getBoundingClientRect(); return [r.x + r.width / 2 + 50, r.y + r.height / 2 + 50]; })()`, &box).Do(ctx)
	if err != nil {
		return 0, 0, err
	}
	return box[0], box[1], nil
}

func wheel(sel string, dy float64) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		x, y, err := center(ctx, sel)
		if err != nil {
			return err
		}
		return input.DispatchMouseEvent(input.MouseWheel, x, y).WithDeltaX(0).WithDeltaY(dy).Do(ctx)
	})
}

func drag(sel string, dx, dy float64) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		x, y, err := center(ctx, sel)
		if err != nil {
			return err
		}
		if err := input.DispatchMouseEvent(input.MousePressed, x, y).WithButton(input.Left).WithClickCount(1).Do(ctx); err != nil {
			return err
		}
		for i := 1; i <= 4; i++ {
			if err := input.DispatchMouseEvent(input.MouseMoved, x+dx*float64(i)/4, y+dy*float64(i)/4).WithButton(input.Left).WithButtons(1).Do(ctx); err != nil {
				return err
			}
		}
		return input.DispatchMouseEvent(input.MouseReleased, x+dx, y+dy).WithButton(input.Left).WithClickCount(1).Do(ctx)
	})
}

// checkNeuron compares the neuron table (key, score, softmax, stored) with q·k/√d,
// its causal softmax and the stored attention, computed here from the files.
func checkNeuron(t *testing.T, sampleDir string, layer, head, q int, rows [][]float64) {
	t.Helper()
	run, err := store.Open(filepath.Dir(filepath.Dir(sampleDir)))
	if err != nil {
		t.Fatal(err)
	}
	qt, kt, _, err := run.QKV(filepath.Base(sampleDir), layer)
	if err != nil {
		t.Fatal(err)
	}
	qs, ks, shape := qt.Float32(), kt.Float32(), qt.Shape
	st, err := checkpoint.OpenSafetensors(filepath.Join(sampleDir, "attention.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	att, _, err := st.Float32(fmt.Sprintf("blocks.%d.attn.pattern", layer))
	if err != nil {
		t.Fatal(err)
	}
	n, d := shape[1], shape[2]
	if len(rows) != q+1 {
		t.Fatalf("neuron view lists %d keys for query %d of a causal model, want %d", len(rows), q, q+1)
	}
	score := make([]float64, q+1)
	var mx, sum float64 = math.Inf(-1), 0
	for j := range score {
		for c := range d {
			score[j] += float64(qs[(head*n+q)*d+c]) * float64(ks[(head*n+j)*d+c])
		}
		score[j] /= math.Sqrt(float64(d))
		mx = max(mx, score[j])
	}
	for j := range score {
		sum += math.Exp(score[j] - mx)
	}
	for _, r := range rows {
		j := int(r[0])
		sm := math.Exp(score[j]-mx) / sum
		stored := float64(att[(head*n+q)*n+j])
		if math.Abs(r[1]-score[j]) > 1e-9*(1+math.Abs(score[j])) || math.Abs(r[2]-sm) > 1e-12 || float32(r[3]) != float32(stored) || math.Abs(sm-stored) > 1e-5 {
			t.Errorf("key %d: page says score %v softmax %v stored %v; q·k/√d = %v, softmax %v, stored %v", j, r[1], r[2], r[3], score[j], sm, stored)
		}
	}
}
