package report

import (
	"bytes"
	"context"
	"github.com/attnscope/attnscope/internal/chromiumtest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/attnscope/attnscope/viz"
)

// TestReportInChromium renders the HTML report in real headless Chromium and checks
// that the page makes no network request besides loading itself, logs no console
// error or exception, and shows its figures (decoded images with a non-zero size).
func TestReportInChromium(t *testing.T) {
	exe := chromiumtest.Path(t)
	run := newMemRun(testCode, 3, 4, 16, 8)
	var b bytes.Buffer
	if err := WriteHTML(context.Background(), &b, run, HTMLOptions{DPI: 60}); err != nil {
		t.Fatal(err)
	}
	// A broken page must fail this test: append an external image and a failing
	// script to a copy and check that both are caught.
	broken := strings.Replace(b.String(), "</body>", `<img src="http://127.0.0.1:9/x.png"><script>throw new Error("boom")</script></body>`, 1)

	dir := t.TempDir()
	good := filepath.Join(dir, "report.html")
	bad := filepath.Join(dir, "broken.html")
	if err := os.WriteFile(good, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}

	actx, cancel := chromiumtest.Start(t, exe)
	defer cancel()

	visit := func(path string) (requests, problems []string, images int) {
		ctx, cancel := chromedp.NewContext(actx)
		defer cancel()
		ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
		defer cancelT()
		var mu sync.Mutex
		url := "file://" + path
		chromedp.ListenTarget(ctx, func(ev any) {
			mu.Lock()
			defer mu.Unlock()
			switch e := ev.(type) {
			case *network.EventRequestWillBeSent:
				if e.Request.URL != url && !strings.HasPrefix(e.Request.URL, "data:") {
					requests = append(requests, e.Request.URL)
				}
			case *runtime.EventConsoleAPICalled:
				if e.Type == runtime.APITypeError || e.Type == runtime.APITypeAssert {
					problems = append(problems, "console."+string(e.Type))
				}
			case *runtime.EventExceptionThrown:
				problems = append(problems, "exception: "+e.ExceptionDetails.Text)
			case *log.EventEntryAdded:
				if e.Entry.Level == log.LevelError {
					problems = append(problems, "log: "+e.Entry.Text)
				}
			}
		})
		err := chromedp.Run(ctx,
			network.Enable(), runtime.Enable(), log.Enable(),
			chromedp.Navigate(url),
			chromedp.WaitReady("body", chromedp.ByQuery),
			chromedp.Sleep(300*time.Millisecond),
			chromedp.Evaluate(`Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0 && i.src.startsWith("data:image/png")).length`, &images),
		)
		if err != nil {
			t.Fatalf("chromium on %s: %v", path, err)
		}
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), requests...), append([]string(nil), problems...), images
	}

	requests, problems, images := visit(good)
	if len(requests) > 0 {
		t.Errorf("report made network requests: %q", requests)
	}
	if len(problems) > 0 {
		t.Errorf("report logged errors: %q", problems)
	}
	if images != 10 {
		t.Errorf("%d figures decoded in the browser, want 10", images)
	}

	requests, problems, _ = visit(bad)
	t.Logf("broken page: requests %q, errors %q", requests, problems)
	if len(requests) == 0 && len(problems) == 0 {
		t.Error("the deliberately broken page (external image, throwing script) went unnoticed: the checks cannot fail")
	}
}

// TestSVGFontInChromium opens an SVG figure in headless Chromium and checks that the
// embedded DejaVu Sans faces (regular and bold, @font-face data URIs) are the fonts
// it loads, so the figure renders in DejaVu where the font is not installed. The
// same SVG with its <style> removed must load none: the check can fail.
func TestSVGFontInChromium(t *testing.T) {
	exe := chromiumtest.Path(t)
	m := viz.Matrix{Rows: 3, Cols: 4, Data: []float64{0.1, 0.2, 0.3, 0.4, 0.4, 0.3, 0.2, 0.1, 0.25, 0.25, 0.25, 0.25}}
	fig, err := viz.Alignment(m, []string{"a", "b", "c", "d"}, []string{"x", "y", "z"}, "Embedded fonts")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := fig.WriteTo(&b, viz.SVG); err != nil {
		t.Fatal(err)
	}
	svg := b.String()
	i, j := strings.Index(svg, "<style>"), strings.Index(svg, "</style>")
	if i < 0 || j < i || !strings.Contains(svg[i:j], "@font-face") || !strings.Contains(svg[i:j], "data:font/ttf") {
		t.Fatal("SVG has no @font-face data URI in a <style> block")
	}
	dir := t.TempDir()
	with, without := filepath.Join(dir, "fonts.svg"), filepath.Join(dir, "nofonts.svg")
	if err := os.WriteFile(with, []byte(svg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(without, []byte(svg[:i]+svg[j+len("</style>"):]), 0o644); err != nil {
		t.Fatal(err)
	}
	actx, cancel := chromiumtest.Start(t, exe)
	defer cancel()
	loaded := func(path string) []string {
		ctx, cancel := chromedp.NewContext(actx)
		defer cancel()
		ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
		defer cancelT()
		var faces []string
		err := chromedp.Run(ctx,
			chromedp.Navigate("file://"+path),
			// Two animation frames: style and layout have run, so used faces
			// have started loading before fonts.ready is awaited.
			chromedp.Evaluate(`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))).then(() => document.fonts.ready).then(() => Array.from(document.fonts).filter(f => f.status === "loaded").map(f => f.family.replace(/"/g, "") + " " + f.weight).sort())`,
				&faces, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }),
		)
		if err != nil {
			t.Fatalf("chromium on %s: %v", path, err)
		}
		return faces
	}
	if got, want := strings.Join(loaded(with), ", "), "DejaVu Sans bold, DejaVu Sans normal"; got != want {
		t.Errorf("embedded faces loaded: %q, want %q", got, want)
	}
	if got := loaded(without); len(got) != 0 {
		t.Errorf("without the <style> block Chromium still loaded %q: the check cannot fail", got)
	}
}
