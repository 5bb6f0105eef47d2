package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/attnscope/attnscope/diagnose"
	"github.com/attnscope/attnscope/internal/chromiumtest"
	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/internal/testutil"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/web"
)

// runOutputsFixture runs similarity and match-heads between two runs and diagnose
// layernorm and jacobian on the reference BERT, returning the run folders (the
// similarity and match-heads outputs are in a) and the CSV rows of the two commands.
func runOutputsFixture(t *testing.T) (a, ln, jac string, sim, match [][]string) {
	tmp := t.TempDir()
	samples := map[string]int{"s0": 6, "s1": 5, "s2": 6}
	a = simRun(t, filepath.Join(tmp, "a"), 1, samples, 2, 3, 4, nil)
	b := simRun(t, filepath.Join(tmp, "b"), 2, samples, 2, 3, 4, nil)
	simCSV, matchCSV := filepath.Join(tmp, "sim.csv"), filepath.Join(tmp, "match.csv")
	if _, _, err := execCmd(t, "similarity", a, b, "--csv", simCSV, "--figure", filepath.Join(tmp, "sim.png")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := execCmd(t, "match-heads", a, b, "--csv", matchCSV, "--figure", filepath.Join(tmp, "match.png")); err != nil {
		t.Fatal(err)
	}
	model := refdata.Path(t, "models", "tiny-bert")
	text := filepath.Join(tmp, "in.txt")
	if err := os.WriteFile(text, []byte("a = 1\nprint(a)\nb = a + 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, jac = filepath.Join(tmp, "ln"), filepath.Join(tmp, "jac")
	if _, _, err := execCmd(t, "diagnose", "layernorm", "--model", model, "--text", text, "--batches", "2", "--batch-size", "1", "--max-len", "8", "-o", ln); err != nil {
		t.Fatal(err)
	}
	if _, _, err := execCmd(t, "diagnose", "jacobian", "--model", model, "--text", text, "--batches", "2", "--max-len", "8", "-o", jac); err != nil {
		t.Fatal(err)
	}
	return a, ln, jac, readCSV(t, simCSV), readCSV(t, matchCSV)
}

// wantValues are the values a run output must show, computed here from the commands'
// CSV files and the diagnostics' per-example outputs (not from the run outputs).
func wantValues(t *testing.T, a, ln string, sim, match [][]string) map[string][]float64 {
	want := map[string][]float64{}
	for _, r := range sim[1:] {
		v, _ := strconv.ParseFloat(r[3], 64)
		want["similarity_linear_cka_b"] = append(want["similarity_linear_cka_b"], v)
	}
	for _, r := range match[1:] { // run, layer, samples, mean, std, ...
		m, _ := strconv.ParseFloat(r[3], 64)
		s, _ := strconv.ParseFloat(r[4], 64)
		want["match_heads_b_summary"] = append(want["match_heads_b_summary"], m, s)
	}
	// The mean per-token std of every layer and criterion over the batches' outputs.
	r, err := store.Open(ln)
	if err != nil {
		t.Fatal(err)
	}
	var sum []float64
	n := 0
	for _, id := range []string{"b00000", "b00001"} {
		o, err := r.Derived("layernorm", id)
		if err != nil {
			t.Fatal(err)
		}
		L, T := o.Shape[0], o.Shape[2]
		if sum == nil {
			sum = make([]float64, 2*L)
		}
		for i, v := range o.Data {
			sum[i/T] += v
		}
		n += T
	}
	for i := range sum {
		sum[i] /= float64(n)
	}
	want[diagnose.LayerNormMeanStd] = sum
	return want
}

// TestRunOutputsReachReportAndServe: the run-level outputs of similarity (the matrix
// over every sample's tokens), match-heads (per-layer summary) and diagnose (a run
// without samples) appear in the HTML report and in the web view with their values.
func TestRunOutputsReachReportAndServe(t *testing.T) {
	a, ln, jac, sim, match := runOutputsFixture(t)
	want := wantValues(t, a, ln, sim, match)
	if len(want["similarity_linear_cka_b"]) != 4 || len(want["match_heads_b_summary"]) != 4 {
		t.Fatalf("fixture: %v", want)
	}
	where := map[string]string{"similarity_linear_cka_b": a, "match_heads_b_summary": a, diagnose.LayerNormMeanStd: ln}
	for name, dir := range where {
		html := filepath.Join(t.TempDir(), "r.html")
		if _, _, err := execCmd(t, "report", dir, "--out", html); err != nil {
			t.Fatal(err)
		}
		page, _ := os.ReadFile(html)
		sec := reportFigure(t, string(page), "Run output: "+name)
		for _, v := range want[name] {
			if cell := "<td>" + strconv.FormatFloat(v, 'g', 6, 64) + "</td>"; !strings.Contains(sec, cell) {
				t.Errorf("report of %s: run output %s lacks the value %s", dir, name, cell)
			}
		}
	}
	html := filepath.Join(t.TempDir(), "j.html")
	if _, _, err := execCmd(t, "report", jac, "--out", html); err != nil {
		t.Fatal(err)
	}
	page, _ := os.ReadFile(html)
	reportFigure(t, string(page), "Run output: "+diagnose.JacobianDensity)
	// plot draws a run output of a run without samples; an unknown one is a usage error.
	png := filepath.Join(t.TempDir(), "j.png")
	if got := run([]string{"plot", "run-output", jac, "--pass", diagnose.JacobianDensity, "--out", png}); got != exitOK {
		t.Errorf("plot run-output exited %d", got)
	}
	if st, err := os.Stat(png); err != nil || st.Size() == 0 {
		t.Errorf("plot run-output wrote no figure: %v", err)
	}
	if got := run([]string{"plot", "run-output", jac, "--pass", "nope", "--out", png}); got != exitUsage {
		t.Errorf("plot run-output --pass nope exited %d, want %d", got, exitUsage)
	}

	srv, err := web.New([]string{a, ln, jac}, web.Options{Log: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	for name, dir := range where {
		var got struct {
			Values []float64 `json:"values"`
			Kind   string    `json:"kind"`
		}
		getJSON(t, hs.URL+"/api/runs/"+filepath.Base(dir)+"/run-outputs/"+name, &got)
		if !closeAll(got.Values, want[name], 1e-12) {
			t.Errorf("serve: run output %s = %v, want %v", name, got.Values, want[name])
		}
	}
	// The jacobian density integrates to 1 over the bins.
	var jd struct {
		Values []float64 `json:"values"`
		XTicks []string  `json:"x_ticks"`
	}
	getJSON(t, hs.URL+"/api/runs/jac/run-outputs/"+diagnose.JacobianDensity, &jd)
	if len(jd.Values) != diagnose.HistogramBins || !integratesToOne(jd.Values, jd.XTicks) {
		t.Errorf("jacobian density %v over %v", jd.Values, jd.XTicks)
	}
	// Bad input: an unknown output is a 404 naming the run's outputs.
	resp, err := http.Get(hs.URL + "/api/runs/a/run-outputs/nope")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(b), "match_heads_b_summary") {
		t.Errorf("unknown run output: %d %s", resp.StatusCode, b)
	}
	browseRunOutputs(t, hs.URL, want)
}

// browseRunOutputs opens the run pages in headless Chromium and reads the values the
// page shows for each run output.
func browseRunOutputs(t *testing.T, base string, want map[string][]float64) {
	exe := chromiumtest.Path(t)
	actx, cancel := chromiumtest.Start(t, exe, chromedp.WindowSize(1200, 800))
	defer cancel()
	ctx, cancelTab := chromedp.NewContext(actx)
	defer cancelTab()
	ctx, cancelT := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelT()
	for _, c := range []struct{ run, name string }{{"a", "similarity_linear_cka_b"}, {"a", "match_heads_b_summary"}, {"ln", diagnose.LayerNormMeanStd}, {"jac", diagnose.JacobianDensity}} {
		var cells []string
		var options int
		err := chromedp.Run(ctx, chromedp.Navigate(fmt.Sprintf("%s/#run=%s&ro=%s", base, c.run, c.name)),
			chromedp.WaitReady(`body[data-painted="1"]`, chromedp.ByQuery),
			chromedp.Evaluate(`document.querySelectorAll("#run-output option").length`, &options),
			chromedp.Evaluate(`Array.from(document.querySelectorAll("#main td.num")).map(td => td.textContent)`, &cells))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if options == 0 || len(cells) == 0 {
			t.Errorf("web view of run %s: %d run outputs listed, %d values shown for %s", c.run, options, len(cells), c.name)
			continue
		}
		for _, v := range want[c.name] {
			if s := toPrecision4(v); !contains(cells, s) {
				t.Errorf("web view of %s shows %v, lacks %s", c.name, cells, s)
			}
		}
	}
}

// reportFigure returns the report's figure titled title (failing without it).
func reportFigure(t *testing.T, page, title string) string {
	t.Helper()
	i := strings.Index(page, "<figcaption>"+title)
	if i < 0 {
		t.Fatalf("report lacks the figure %q", title)
	}
	sec := page[i:]
	if j := strings.Index(sec, "</figure>"); j >= 0 {
		sec = sec[:j]
	}
	if !strings.Contains(sec, "data:image/png;base64,") && !strings.Contains(sec, "<table") {
		t.Errorf("report figure %q draws nothing", title)
	}
	return sec
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	if b := testutil.Get(t, url); json.Unmarshal(b, v) != nil {
		t.Fatalf("GET %s: not the JSON expected: %s", url, b)
	}
}

func closeAll(a, b []float64, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > tol*math.Max(1, math.Abs(b[i])) {
			return false
		}
	}
	return true
}

// integratesToOne sums density × bin width, the widths read from the "lo…hi" ticks.
func integratesToOne(d []float64, ticks []string) bool {
	s := 0.0
	for i, tk := range ticks {
		lo, hi, ok := strings.Cut(tk, "…")
		l, err1 := strconv.ParseFloat(lo, 64)
		h, err2 := strconv.ParseFloat(hi, 64)
		if !ok || err1 != nil || err2 != nil {
			return false
		}
		s += d[i] * (h - l)
	}
	return math.Abs(s-1) < 1e-2 // the ticks are rounded to 4 digits
}

// toPrecision4 formats v as JavaScript's v.toPrecision(4) does for these magnitudes.
func toPrecision4(v float64) string {
	if v == 0 {
		return "0.000"
	}
	e := int(math.Floor(math.Log10(math.Abs(v))))
	if e < -6 || e >= 4 {
		s := strconv.FormatFloat(v, 'e', 3, 64)
		return strings.Replace(strings.Replace(s, "e-0", "e-", 1), "e+0", "e+", 1)
	}
	return strconv.FormatFloat(v, 'f', max(0, 3-e), 64)
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
