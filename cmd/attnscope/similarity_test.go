package main

import (
	"bytes"
	"encoding/csv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/similarity/runs"
	"github.com/attnscope/attnscope/store"
)

// simRun writes a run with attention and hidden states: tokens[id] tokens per sample,
// L layers, H heads, width D; attention rows are softmaxes of random scores, hidden
// states random (or from hidden when given: layer, sample, token, neuron).
func simRun(t *testing.T, dir string, seed uint64, tokens map[string]int, L, H, D int, hidden func(l int, id string, i, j int) float64) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	r, err := store.Create(dir, store.Meta{Kind: "import", DType: "float32", Hidden: true, Command: []string{"test"}})
	if err != nil {
		t.Fatal(err)
	}
	for id, n := range tokens {
		w, err := r.NewSample(id, store.SampleOptions{Layers: L, Hidden: true})
		if err != nil {
			t.Fatal(err)
		}
		hid := func(l int) []float32 {
			h := make([]float32, n*D)
			for i := range h {
				if hidden != nil {
					h[i] = float32(hidden(l, id, i/D, i%D))
				} else {
					h[i] = float32(rng.NormFloat64())
				}
			}
			return h
		}
		if err := w.Record(store.EmbedName, []int{n, D}, hid(-1)); err != nil {
			t.Fatal(err)
		}
		for l := range L {
			att := make([]float32, H*n*n)
			for row := range H * n {
				var sum float64
				e := make([]float64, n)
				for k := range e {
					e[k] = math.Exp(2 * rng.NormFloat64())
					sum += e[k]
				}
				for k := range e {
					att[row*n+k] = float32(e[k] / sum)
				}
			}
			if err := w.Record(store.AttentionName(l), []int{H, n, n}, att); err != nil {
				t.Fatal(err)
			}
			if err := w.Record(store.ResidName(l), []int{n, D}, hid(l)); err != nil {
				t.Fatal(err)
			}
		}
		ids := make([]int, n)
		if err := w.Commit(&store.Sample{ID: id, Text: id, PromptText: id, IDs: ids, PromptLen: n}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func execCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errb.String(), err
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestSimilarityCommand(t *testing.T) {
	tmp := t.TempDir()
	samples := map[string]int{"s0": 30, "s1": 25}
	a := simRun(t, filepath.Join(tmp, "a"), 1, samples, 3, 2, 8, nil)
	// Run b: layer l of b is a fixed linear map of layer l of a (CKA 1 only on the
	// diagonal for an orthogonal map times a scale) — here a permutation and scale.
	ra, _ := store.Open(a)
	b := simRun(t, filepath.Join(tmp, "b"), 2, samples, 3, 2, 8, func(l int, id string, i, j int) float64 {
		if l < 0 {
			return 0
		}
		h, err := ra.Hidden(id, store.ResidName(l))
		if err != nil {
			t.Fatal(err)
		}
		return 2 * h.Data[i*8+(j+3)%8]
	})
	csvPath, fig := filepath.Join(tmp, "cka.csv"), filepath.Join(tmp, "cka.png")
	out, _, err := execCmd(t, "similarity", a, b, "--measure", "linear-cka", "--per-sample", "--bootstrap", "50", "--csv", csvPath, "--figure", fig)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "55 tokens of 2 samples: 3×3 layers") {
		t.Errorf("output %q", out)
	}
	recs := readCSV(t, csvPath)
	if len(recs) != 1+9*3 {
		t.Fatalf("%d CSV rows, want %d", len(recs), 1+27)
	}
	for _, r := range recs[1:] {
		v, _ := strconv.ParseFloat(r[3], 64)
		diag := strings.TrimPrefix(r[1], "blocks.") == strings.TrimPrefix(r[2], "blocks.")
		if diag && math.Abs(v-1) > 1e-6 || !diag && !(v > 0 && v < 0.9) {
			t.Errorf("row %v: CKA %v", r, v)
		}
		if r[0] == runs.PooledID && (r[4] == "" || r[5] == "") {
			t.Errorf("row %v: no interval", r)
		}
	}
	if st, err := os.Stat(fig); err != nil || st.Size() == 0 {
		t.Fatalf("figure: %v", err)
	}
	run, _ := store.Open(a)
	pass := "similarity_linear_cka_b"
	info, err := run.Pass(pass)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Axes) != 2 || info.Axes[0].Name != store.AxisLayer || len(info.Axes[1].Labels) != 3 {
		t.Errorf("axes %+v", info.Axes)
	}
	pooled, pm, err := run.RunOutput(pass)
	if err != nil || !reflect.DeepEqual(pooled.Axes, info.Axes) {
		t.Fatalf("pooled matrix: %+v, %v", pooled, err)
	}
	for k, r := range recs[1:10] {
		if v, _ := strconv.ParseFloat(r[3], 64); r[0] != runs.PooledID || v != pm.Data[k] {
			t.Errorf("CSV row %v, run output value %v", r, pm.Data[k])
		}
	}
	for _, id := range []string{"s0", "s1"} {
		m, err := run.Derived(pass, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.CheckAxes(info.Axes, m.Shape); err != nil {
			t.Error(err)
		}
	}
	// The per-sample matrices reach the HTML report through their declared axes.
	html := filepath.Join(tmp, "report.html")
	if _, _, err := execCmd(t, "report", a, "--out", html, "--figures", pass); err != nil {
		t.Fatal(err)
	}
	page, _ := os.ReadFile(html)
	if n := strings.Count(string(page), `<img alt="Derived: `+pass+`"`); n != 2 {
		t.Errorf("report shows %d similarity figures, one per sample (2) expected", n)
	}
	_, iv, err := run.RunOutput(pass + "_interval")
	if err != nil || len(iv.Shape) != 3 || iv.Shape[2] != 2 {
		t.Fatalf("interval %v %v", iv, err)
	}
	// PWCCA uncentred/centred and SVCCA run through the same path.
	for i, m := range [][]string{{"pwcca", "--reg", "1e-3"}, {"pwcca", "--uncentred"}, {"svcca"}, {"rbf-cka"}, {"minibatch-cka", "--batch", "16"}} {
		args := append([]string{"similarity", a, b, "--pass", "m" + strconv.Itoa(i), "--csv", filepath.Join(tmp, "m.csv"), "--figure", filepath.Join(tmp, "m.svg"), "--measure"}, m...)
		if _, _, err := execCmd(t, args...); err != nil {
			t.Errorf("%v: %v", m, err)
		}
	}
	// Attention rows of samples of different lengths cannot be stacked.
	if _, _, err := execCmd(t, "similarity", a, b, "--feature", "attention", "--csv", filepath.Join(tmp, "x.csv"), "--figure", filepath.Join(tmp, "x.png")); err == nil || !strings.Contains(err.Error(), "compare per sample") {
		t.Errorf("attention of unequal lengths: %v", err)
	}
}

func TestPairedCommandsRefuseMismatchedRuns(t *testing.T) {
	tmp := t.TempDir()
	a := simRun(t, filepath.Join(tmp, "a"), 1, map[string]int{"s0": 6, "s1": 5}, 2, 2, 4, nil)
	fewer := simRun(t, filepath.Join(tmp, "fewer"), 2, map[string]int{"s0": 6}, 2, 2, 4, nil)
	longer := simRun(t, filepath.Join(tmp, "longer"), 3, map[string]int{"s0": 6, "s1": 7}, 2, 2, 4, nil)
	layers := simRun(t, filepath.Join(tmp, "layers"), 4, map[string]int{"s0": 6, "s1": 5}, 3, 2, 4, nil)
	for _, c := range []struct {
		cmd  []string
		want string
	}{
		{[]string{"similarity", a, fewer}, "hold different samples (only in the first: s1; only in the second: none)"},
		{[]string{"match-heads", a, fewer}, "hold different samples"},
		{[]string{"similarity", a, longer}, "sample s1 has 5 tokens in run"},
		{[]string{"match-heads", a, longer}, "sample s1 has 5 tokens in run"},
		{[]string{"match-heads", a, layers}, "has 2 layers and run"},
	} {
		csvPath := filepath.Join(tmp, "out.csv")
		args := append(c.cmd, "--csv", csvPath, "--figure", filepath.Join(tmp, "out.png"))
		_, _, err := execCmd(t, args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.cmd, err, c.want)
		}
		if _, err := os.Stat(csvPath); err == nil {
			t.Errorf("%v: CSV written despite the error", c.cmd)
		}
		if ents, _ := os.ReadDir(filepath.Join(a, store.DerivedDir)); len(ents) > 0 {
			t.Errorf("%v: derived outputs written despite the error", c.cmd)
		}
		if ents, _ := os.ReadDir(filepath.Join(a, store.RunOutputDir)); len(ents) > 0 {
			t.Errorf("%v: run outputs written despite the error", c.cmd)
		}
	}
	if got := run([]string{"similarity", a, a, "--measure", "nope"}); got != exitUsage {
		t.Errorf("unknown measure: exit %d", got)
	}
	if got := run([]string{"similarity", a}); got != exitUsage {
		t.Errorf("one run: exit %d", got)
	}
}

func TestMatchHeadsCommand(t *testing.T) {
	tmp := t.TempDir()
	samples := map[string]int{"s0": 5, "s1": 5, "s2": 4}
	a := simRun(t, filepath.Join(tmp, "a"), 1, samples, 2, 3, 4, nil)
	b := simRun(t, filepath.Join(tmp, "b"), 2, samples, 2, 3, 4, nil)
	c := simRun(t, filepath.Join(tmp, "c"), 3, samples, 2, 3, 4, nil)
	csvPath, fig := filepath.Join(tmp, "m.csv"), filepath.Join(tmp, "m.png")
	// A run matched with itself: every total is 0.
	if _, _, err := execCmd(t, "match-heads", a, a, "--csv", csvPath, "--figure", fig, "--pass", "self"); err != nil {
		t.Fatal(err)
	}
	for _, r := range readCSV(t, csvPath)[1:] {
		if r[3] != "0" || r[4] != "0" {
			t.Errorf("self-match row %v", r)
		}
	}
	out, _, err := execCmd(t, "match-heads", a, b, c, "--csv", csvPath, "--figure", fig)
	if err != nil {
		t.Fatal(err)
	}
	recs := readCSV(t, csvPath)
	if len(recs) != 1+2*2 || recs[1][0] != b || recs[3][0] != c || recs[1][5] == "" {
		t.Fatalf("CSV %v", recs)
	}
	if !strings.Contains(out, "a–b layer 1: mean") || !strings.Contains(out, "a–c layer 2") {
		t.Errorf("output %q", out)
	}
	// The stored per-head matched costs sum to the totals whose mean the CSV gives.
	ra, _ := store.Open(a)
	var sum float64
	for id := range samples {
		m, err := ra.Derived("match_heads_b", id)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range m.Data[:3] {
			sum += v
		}
		asg, err := ra.Derived("match_heads_b_assignment", id)
		if err != nil || asg.Shape[0] != 2 || asg.Shape[1] != 3 {
			t.Fatalf("assignment %v %v", asg, err)
		}
	}
	mean, _ := strconv.ParseFloat(recs[1][3], 64)
	if math.Abs(sum/3-mean) > 1e-9*mean {
		t.Errorf("layer 1: matched costs sum to %v per sample, CSV mean %v", sum/3, mean)
	}
	// --quirk needs as many samples as heads: 3 samples, 3 heads works; with 2 runs
	// of 2 samples and 3 heads it fails with a sentence.
	if _, _, err := execCmd(t, "match-heads", a, b, "--quirk", "--csv", csvPath, "--figure", fig); err != nil {
		t.Fatal(err)
	}
	two := map[string]int{"s0": 5, "s1": 5}
	d := simRun(t, filepath.Join(tmp, "d"), 4, two, 2, 3, 4, nil)
	e := simRun(t, filepath.Join(tmp, "e"), 5, two, 2, 3, 4, nil)
	if _, _, err := execCmd(t, "match-heads", d, e, "--quirk", "--csv", csvPath, "--figure", fig); err == nil || !strings.Contains(err.Error(), "as many samples as heads") {
		t.Errorf("quirk with 2 samples and 3 heads: %v", err)
	}
}
