package viz

import (
	"bytes"
	"flag"
	"fmt"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden PNGs in testdata/golden")

// Golden-image tolerances: a pixel differs when any channel differs by more than
// pixelTolerance (anti-aliasing and font rasterisation wobble by a few levels), and a
// figure matches when at most maxDiffFraction of its pixels differ.
const (
	pixelTolerance  = 24
	maxDiffFraction = 0.005
)

// checkGolden renders fig as PNG at 72 dpi and compares it with
// testdata/golden/<name>.png (rewritten with -update).
func checkGolden(t *testing.T, name string, fig *Figure) {
	t.Helper()
	fig.DPI = 72
	var buf bytes.Buffer
	if err := fig.WriteTo(&buf, PNG); err != nil {
		t.Fatalf("render %s: %v", name, err)
	}
	path := filepath.Join("testdata", "golden", name+".png")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden %s: %v (run go test -update to create it)", path, err)
	}
	got, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	exp, err := png.Decode(bytes.NewReader(want))
	if err != nil {
		t.Fatalf("decode golden %s: %v", path, err)
	}
	if n, frac := diffImages(got, exp); frac > maxDiffFraction {
		out := filepath.Join(t.TempDir(), name+".png")
		os.WriteFile(out, buf.Bytes(), 0o644)
		t.Errorf("%s: %d pixels (%.3f%%) differ from %s by more than %d levels (limit %.3f%%); got image written to %s",
			name, n, 100*frac, path, pixelTolerance, 100*maxDiffFraction, out)
	}
}

// diffImages returns the number and fraction of pixels of a and b whose channels
// differ by more than pixelTolerance; images of different sizes differ everywhere.
func diffImages(a, b image.Image) (int, float64) {
	ra, rb := a.Bounds(), b.Bounds()
	if ra.Size() != rb.Size() {
		return ra.Dx() * ra.Dy(), 1
	}
	n := 0
	for y := 0; y < ra.Dy(); y++ {
		for x := 0; x < ra.Dx(); x++ {
			r1, g1, b1, a1 := a.At(ra.Min.X+x, ra.Min.Y+y).RGBA()
			r2, g2, b2, a2 := b.At(rb.Min.X+x, rb.Min.Y+y).RGBA()
			if far(r1, r2) || far(g1, g2) || far(b1, b2) || far(a1, a2) {
				n++
			}
		}
	}
	return n, float64(n) / float64(ra.Dx()*ra.Dy())
}

func far(a, b uint32) bool {
	d := int(a>>8) - int(b>>8)
	return d > pixelTolerance || d < -pixelTolerance
}

func TestDiffImagesDetectsChange(t *testing.T) {
	a := image.NewRGBA(image.Rect(0, 0, 10, 10))
	b := image.NewRGBA(image.Rect(0, 0, 10, 10))
	if n, _ := diffImages(a, b); n != 0 {
		t.Fatalf("identical images: %d differing pixels", n)
	}
	b.Pix[0] = 200                // one pixel, red channel
	b.Pix[4*5+1] = pixelTolerance // within tolerance
	if n, frac := diffImages(a, b); n != 1 || frac != 0.01 {
		t.Fatalf("got %d pixels (%.3f), want 1 (0.01)", n, frac)
	}
	if _, frac := diffImages(a, image.NewRGBA(image.Rect(0, 0, 9, 10))); frac != 1 {
		t.Fatalf("size mismatch: fraction %.3f, want 1", frac)
	}
}

var fixedTokens = []string{"def", "Ġsum", "(", "a", ",", "Ġb", "):", "Ċ", "Ġ", "Ġ", "Ġ", "Ġc", "Ġ=", "Ġa", "Ġ+", "Ġb"}

func TestGoldenHeatmap(t *testing.T) {
	f, err := Heatmap(randomCausal(16, 1), HeatmapOptions{Title: "Layer 2, head 1", RowLabels: fixedTokens, ColLabels: fixedTokens, PromptLen: 13})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "heatmap", f)
}

func TestGoldenHeatmap512(t *testing.T) {
	labels := make([]string, 512)
	for i := range labels {
		labels[i] = fixedTokens[i%len(fixedTokens)]
	}
	f, err := Heatmap(smoothCausal(512), HeatmapOptions{Title: "512 tokens", RowLabels: labels, ColLabels: labels, ClipPercentile: 99})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "heatmap512", f)
}

func TestGoldenGrid(t *testing.T) {
	units := make([][]Matrix, 3)
	for l := range units {
		for h := range 4 {
			units[l] = append(units[l], randomCausal(24, uint64(10*l+h)))
		}
	}
	f, err := Grid(units, GridOptions{Title: "tiny model: all heads"})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "grid", f)
}

// smoothCausal returns a structured n×n causal attention (a sink on token 0 plus a
// decaying band along the diagonal), which compresses well as a golden PNG.
func smoothCausal(n int) Matrix {
	return causal(n, func(i, j int) float64 {
		v := math.Exp(-float64(i-j) / 6)
		if j == 0 {
			v += 2
		}
		return v
	})
}

// causal returns the n×n causal matrix whose row i is w(i, j) for j ≤ i (called in
// row-major order), normalised to sum 1.
func causal(n int, w func(i, j int) float64) Matrix {
	d := make([]float64, n*n)
	for i := range n {
		s := 0.0
		for j := 0; j <= i; j++ {
			d[i*n+j] = w(i, j)
			s += d[i*n+j]
		}
		for j := 0; j <= i; j++ {
			d[i*n+j] /= s
		}
	}
	return Matrix{Rows: n, Cols: n, Data: d}
}

// TestLabelsNeverOverlap checks on the final layout of 512-token heatmaps that the
// distance between two drawn token labels is at least the label line height.
func TestLabelsNeverOverlap(t *testing.T) {
	for _, n := range []int{8, 45, 46, 100, 512, 2000} {
		labels := make([]string, n)
		for i := range labels {
			labels[i] = "Ġtoken"
		}
		f, err := Heatmap(smoothCausal(n), HeatmapOptions{RowLabels: labels, ColLabels: labels})
		if err != nil {
			t.Fatal(err)
		}
		c := draw.New(vgimg.NewWith(vgimg.UseWH(f.Width, f.Height), vgimg.UseDPI(72)))
		main := draw.Crop(c, 0, -80, 0, 0)
		p := heatmapPlot(smoothCausal(n), HeatmapOptions{}, 0, 1, readable(labels, n, 0), readable(labels, n, 0), main)
		da := p.DataCanvas(main)
		lineH := float64(p.X.Tick.Label.Font.Size) * 1.2
		for axis, ticks := range map[string][]plot.Tick{"x": p.X.Tick.Marker.Ticks(0, float64(n)), "y": p.Y.Tick.Marker.Ticks(0, float64(n))} {
			length := float64(da.Size().X)
			if axis == "y" {
				length = float64(da.Size().Y)
			}
			if len(ticks) < 2 {
				t.Fatalf("n=%d axis %s: %d labels", n, axis, len(ticks))
			}
			gap := math.Abs(ticks[1].Value-ticks[0].Value) * length / float64(n)
			if gap < lineH {
				t.Errorf("n=%d axis %s: labels %.1f pt apart, font line %.1f pt", n, axis, gap, lineH)
			}
			if n <= 45 && len(ticks) != n {
				t.Errorf("n=%d axis %s: %d labels drawn, want all", n, axis, len(ticks))
			}
		}
	}
}

const goldenCode = "def sum(a, b):\n\tc = a + b\n    return c  # total\n"

func codeWeights(text string) []float64 {
	w := make([]float64, len([]rune(text)))
	for i := range w {
		w[i] = math.Abs(math.Sin(float64(i) / 5))
	}
	return w
}

func TestGoldenCode(t *testing.T) {
	f, err := CodeHeatmap(goldenCode, codeWeights(goldenCode), CodeOptions{Title: "Attention of the first predicted token"})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "code", f)
}

// §1.9's companion line: the code heatmap's character weights sorted against
// linspace(0, 1, n, endpoint=False).
func TestGoldenCodeSortedWeights(t *testing.T) {
	f, err := SortedWeights(codeWeights(goldenCode), "Sorted character weights")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "code-weights", f)
	if _, err := SortedWeights(nil, ""); err == nil {
		t.Error("no weights: no error")
	}
	if _, err := SortedWeights([]float64{1, math.NaN()}, ""); err == nil {
		t.Error("NaN weight: no error")
	}
}

func TestGoldenHistograms(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	ent, mx := make([]float64, 500), make([]float64, 500)
	for i := range ent {
		ent[i] = 1.5 + 0.4*r.NormFloat64()
		mx[i] = math.Min(1, math.Max(0, 0.5+0.15*r.NormFloat64()))
	}
	f, err := Histograms([]HistPanel{
		{Values: ent, Title: "Attention entropy (lower = more focused)", XLabel: "Entropy (nats)", Color: SteelBlue},
		{Values: mx, Title: "Max attention weight (higher = more confident)", XLabel: "Max weight", Color: Coral},
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "histograms", f)
}

func TestGoldenCurves(t *testing.T) {
	var series []Series
	for h := range 4 {
		s := Series{Name: fmt.Sprintf("L0 H%d", h)}
		for i := range 100 {
			x := float64(i) / 100
			s.X = append(s.X, x)
			s.Y = append(s.Y, math.Pow(x, float64(h+1)))
		}
		series = append(series, s)
	}
	f, err := Curves(series, CurvesOptions{Title: "Crispiness", XLabel: "fraction of keys", YLabel: "sorted weight"})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "curves", f)
}

func TestGoldenReceived(t *testing.T) {
	m := randomCausal(16, 4)
	v := make([]float64, 16)
	for i := range 16 {
		for j := range 16 {
			v[j] += m.At(i, j)
		}
	}
	f, err := Received(v, fixedTokens, "Attention received")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "received", f)
}

func referenceFixture() (Matrix, []int, []string) {
	toks := []string{"<s>", "5", "1", "0", "+", "5", "7", "0", "=", "0", "9", "0"}
	n := len(toks)
	labels := make([]int, n*n)
	for i := range labels {
		labels[i] = IgnoreLabel
	}
	for r := 8; r < 12; r++ {
		for c := 0; c < n; c++ {
			if c <= r {
				labels[r*n+c] = 0
			}
		}
	}
	for _, rc := range [][2]int{{8, 1}, {8, 5}, {9, 2}, {9, 6}, {10, 3}, {10, 7}} {
		labels[rc[0]*n+rc[1]] = 1
	}
	return randomCausal(n, 5), labels, toks
}

func TestGoldenReference(t *testing.T) {
	m, labels, toks := referenceFixture()
	for name, mode := range map[string]ReferenceMode{"reference-outline": ReferenceOutline, "reference-scores": ReferenceScores} {
		f, err := Reference(m, labels, toks, toks, mode, "Long addition")
		if err != nil {
			t.Fatal(err)
		}
		checkGolden(t, name, f)
	}
}

func dashboardFixture(full bool) DashboardData {
	const L = 6
	d := DashboardData{Title: "tiny-gpt2: attention analysis"}
	for k := range L {
		x := float64(k)
		d.LayerNames = append(d.LayerNames, fmt.Sprintf("h%d", k))
		d.InMean = append(d.InMean, 0.01*x)
		d.OutMean = append(d.OutMean, 0.01*x+0.02*math.Sin(x))
		d.InStd = append(d.InStd, 1+0.3*x)
		d.OutStd = append(d.OutStd, 1.3+0.3*x)
		d.Transform = append(d.Transform, math.Abs(0.02*math.Sin(x)))
		d.LayerComparison = append(d.LayerComparison, []float64{x / 5, x / 5, math.Abs(math.Sin(x)), x / 5, math.Abs(math.Sin(x))})
	}
	d.Pearson, d.HasPearson = 0.93, true
	d.SummaryNames = []string{"Avg Transform", "Representation Diversity", "I/O Correlation"}
	d.SummaryValues = []float64{0.012, 2.05, 0.93}
	if full {
		for k := range L {
			var e, s []float64
			for h := range 4 {
				e = append(e, 0.5+0.1*float64(k)+0.05*float64(h))
				s = append(s, 0.5+0.04*float64(h)-0.02*float64(k))
			}
			d.HeadEntropy = append(d.HeadEntropy, e)
			d.HeadSparsity = append(d.HeadSparsity, s)
			d.WeightNames = append(d.WeightNames, fmt.Sprintf("h%d", k))
			d.HiddenNorm = append(d.HiddenNorm, 10+3*float64(k))
		}
		for i := range 3 {
			d.Received = append(d.Received, []float64{3 - float64(i)*0.5, 1, 0.8, 0.6, 0.4 + float64(i)*0.2, 0.2})
		}
		for i := range 16 {
			d.PCACumulative = append(d.PCACumulative, 1-math.Exp(-float64(i+1)/3))
		}
		d.SummaryNames = append(d.SummaryNames, "Attention Sparsity")
		d.SummaryValues = append(d.SummaryValues, 0.48)
	}
	return d
}

func TestGoldenDashboard(t *testing.T) {
	for name, full := range map[string]bool{"dashboard": true, "dashboard-no-weights": false} {
		f, err := Dashboard(dashboardFixture(full))
		if err != nil {
			t.Fatal(err)
		}
		checkGolden(t, name, f)
	}
}

func TestDownsampleAndRasterizeKeepPeaks(t *testing.T) {
	m := Matrix{Rows: 100, Cols: 100, Data: make([]float64, 10000)}
	m.Data[57*100+13] = 1
	d := Downsample(m, 10)
	if d.Rows != 10 || d.Cols != 10 || d.At(5, 1) != 1 {
		t.Fatalf("downsample: %d×%d, peak cell %v, want 10×10 with 1 at (5,1)", d.Rows, d.Cols, d.At(5, 1))
	}
	sum := 0.0
	for _, v := range d.Data {
		sum += v
	}
	if sum != 1 {
		t.Fatalf("downsample: total %v, want one peak", sum)
	}
	img := Rasterize(m, 7, 7, 0, 1, Gray)
	if c := img.RGBAAt(0, 4); /* pixel (0,4) covers rows 57..70, columns 0..13 */ c.G != 255 {
		t.Fatalf("rasterize: pixel under the peak is %v, want white", c)
	}
	if same := Downsample(m, 200); same.Rows != 100 {
		t.Fatal("downsample of a small matrix changed it")
	}
}

// The source × target alignment heatmap of a seq2seq model (Text_to_Python's
// plot_attention: generated code tokens × docstring tokens, YlOrRd).
func TestGoldenAlignment(t *testing.T) {
	src := []string{"return", "the", "sum", "of", "a", "and", "b", "<eos>"}
	trg := []string{"def", "f", "(", "a", ",", "b", ")", ":", "return", "a", "+", "b"}
	m := Matrix{Rows: len(trg), Cols: len(src), Data: make([]float64, len(trg)*len(src))}
	for i := range trg {
		s := 0.0
		for j := range src {
			v := math.Exp(-math.Abs(float64(j) - float64(i)*float64(len(src))/float64(len(trg))))
			m.Data[i*len(src)+j] = v
			s += v
		}
		for j := range src {
			m.Data[i*len(src)+j] /= s
		}
	}
	f, err := Alignment(m, src, trg, "Attention alignment")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "alignment", f)
}

// Alignment crops to T = min(len(trg), rows, 30) rows and S = min(len(src), cols, 30)
// columns, as plot_attention does, and refuses to draw nothing.
func TestAlignmentCrop(t *testing.T) {
	tokens := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprint("t", i)
		}
		return out
	}
	m := randomCausal(40, 3)
	small, err := Alignment(m, tokens(5), tokens(7), "")
	if err != nil {
		t.Fatal(err)
	}
	big, err := Alignment(m, tokens(40), tokens(40), "")
	if err != nil {
		t.Fatal(err)
	}
	if !(small.Width < big.Width && small.Height < big.Height) {
		t.Errorf("5×7 tokens gave %v×%v, 40×40 (cropped to 30) gave %v×%v: crop not applied", small.Width, small.Height, big.Width, big.Height)
	}
	same, err := Alignment(m, tokens(35), tokens(50), "")
	if err != nil {
		t.Fatal(err)
	}
	if same.Width != big.Width || same.Height != big.Height {
		t.Errorf("more than 30 tokens changed the figure: %v×%v vs %v×%v", same.Width, same.Height, big.Width, big.Height)
	}
	if _, err := Alignment(m, nil, tokens(3), ""); err == nil {
		t.Error("no source tokens: no error")
	}
}

func TestHeatmapInputErrors(t *testing.T) {
	m := randomCausal(4, 1)
	for name, o := range map[string]HeatmapOptions{
		"row labels": {RowLabels: []string{"a"}},
		"col labels": {ColLabels: []string{"a", "b", "c", "d", "e"}},
		"prompt":     {PromptLen: 5},
		"outline":    {Outline: []image.Point{{4, 0}}},
	} {
		if _, err := Heatmap(m, o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Heatmap(Matrix{}, HeatmapOptions{}); err == nil {
		t.Error("empty matrix: no error")
	}
	if _, err := Grid([][]Matrix{{m}, {m, m}}, GridOptions{}); err == nil {
		t.Error("ragged grid: no error")
	}
	if _, err := CodeHeatmap("ab", []float64{1}, CodeOptions{}); err == nil {
		t.Error("code: weight count mismatch: no error")
	}
	if _, err := CodeHeatmap("ab", []float64{1, math.NaN()}, CodeOptions{}); err == nil {
		t.Error("code: NaN weight: no error")
	}
	if _, err := Reference(m, make([]int, 3), nil, nil, ReferenceOutline, ""); err == nil {
		t.Error("reference: label count mismatch: no error")
	}
	bad := make([]int, 16)
	bad[3] = 7
	if _, err := Reference(m, bad, nil, nil, ReferenceOutline, ""); err == nil {
		t.Error("reference: label 7: no error")
	}
}

func TestTokenLabel(t *testing.T) {
	for in, want := range map[string]string{
		" cat": "␣cat", "Ġcat": "␣cat", "▁cat": "␣cat", "\n": "⏎", "Ċ": "⏎", "\t": "⇥", "\r\n": "␍⏎",
		"": "∅", "\x00": "␀", "abcdefghijklmnopqrstuvwxyz": "abcdefghijklmn…", "日本": "日本",
	} {
		if got := TokenLabel(in); got != want {
			t.Errorf("TokenLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzTokenLabel: any token string gives a short, valid, printable label.
func FuzzTokenLabel(f *testing.F) {
	for _, s := range []string{"", " ", "Ġthe", "\xff\xfe", "a\x00b", "\u200d", strings.Repeat("x", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l := TokenLabel(s)
		if !utf8.ValidString(l) {
			t.Fatalf("TokenLabel(%q) = %q is not valid UTF-8", s, l)
		}
		if n := utf8.RuneCountInString(l); n == 0 || n > MaxLabelRunes+1 {
			t.Fatalf("TokenLabel(%q) = %q has %d runes", s, l, n)
		}
		for _, r := range l {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("TokenLabel(%q) = %q holds control character %U", s, l, r)
			}
		}
	})
}

// FuzzCodeHTML: any text yields HTML whose only tags are the ones the writer emits
// (the text is escaped).
func FuzzCodeHTML(f *testing.F) {
	for _, s := range []string{"def f():\n\treturn 1\n", "<script>alert(1)</script>", "a & b \"c\" 'd'", "\r\n\x00"} {
		f.Add(s)
	}
	tag := regexp.MustCompile(`<(/?)([a-z0-9]+)`)
	f.Fuzz(func(t *testing.T, s string) {
		n := utf8.RuneCountInString(s)
		if n == 0 {
			return
		}
		w := make([]float64, n)
		for i := range w {
			w[i] = float64(i % 7)
		}
		var b strings.Builder
		if err := WriteCodeHTML(&b, s, w, CodeOptions{Title: s}); err != nil {
			t.Fatal(err)
		}
		for _, m := range tag.FindAllStringSubmatch(b.String(), -1) {
			if m[2] != "span" && m[2] != "pre" && m[2] != "h3" {
				t.Fatalf("text %q produced tag <%s%s>", s, m[1], m[2])
			}
		}
	})
}

func TestGoldenAttentionGraph(t *testing.T) {
	var layers []Matrix
	for l := range 3 {
		layers = append(layers, randomCausal(10, uint64(40+l)))
	}
	f, err := AttentionGraph(layers, fixedTokens[:10], 3, "Layer-wise attention graph (top 3)")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "attention-graph", f)
	if got := topIndices([]float64{0.1, 0.5, 0.5, math.NaN(), 0.2}, 3); fmt.Sprint(got) != "[1 2 4]" {
		t.Errorf("topIndices = %v, want [1 2 4]", got)
	}
	if _, err := AttentionGraph([]Matrix{layers[0], randomCausal(9, 1)}, nil, 3, ""); err == nil {
		t.Error("mismatched layers: no error")
	}
}

// A Jensen–Shannon distance matrix between 48 units (4 layers × 12 heads), labelled
// L<l>H<h>, viridis.
func TestGoldenJSUnits(t *testing.T) {
	const n = 48
	m := Matrix{Rows: n, Cols: n, Data: make([]float64, n*n)}
	labels := make([]string, n)
	for i := range n {
		labels[i] = fmt.Sprintf("L%dH%d", i/12, i%12)
		for j := range n {
			m.Data[i*n+j] = math.Sqrt(math.Abs(math.Sin(float64(i*j)/40))) * 0.8 * float64(min(1, (i-j)*(i-j)))
		}
	}
	f, err := Heatmap(m, HeatmapOptions{Title: "Jensen–Shannon distance between heads", XLabel: "unit", YLabel: "unit",
		RowLabels: labels, ColLabels: labels, Colormap: Viridis, ColorbarLabel: "Jensen–Shannon distance"})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "js-units", f)
}

// Slices of a 3-D tensor on a 5-column grid with a shorter last row.
func TestGoldenSlices(t *testing.T) {
	var units [][]Matrix
	for k := range 7 {
		if k%5 == 0 {
			units = append(units, nil)
		}
		units[len(units)-1] = append(units[len(units)-1], smoothCausal(20+k))
	}
	f, err := Grid(units, GridOptions{Title: "rollout: every slice", RowNames: []string{"0–4", "5–6"}, ColNames: []string{"+0", "+1", "+2", "+3", "+4"}, ClipPercentile: 99.9, Unit: "slice"})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "slices", f)
}
