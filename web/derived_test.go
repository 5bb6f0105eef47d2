package web

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/store"
)

// TestDerivedDrawnByDeclaredAxes checks that /derived draws an output by the axes
// its pass.json declares, not by its shape: two outputs of one shape [2, 3] are a
// heatmap of layers × heads and a table of records with named columns; a
// [layer, query, key] output is the selected layer's matrix with token ticks; a
// [layer, head, point] output is curves; a pass without axes, or with axes that
// do not fit the output, is refused with a message naming the pass; the matrix
// view serves tiles only of outputs whose axes end in [query, key].
func TestDerivedDrawnByDeclaredAxes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	r := newRun(t, dir)
	const n = 5
	writeSample(t, r, "s", fixture{layers: 2, heads: 3, n: n}, 4)
	seq := func(k int) []float64 {
		v := make([]float64, k)
		for i := range v {
			v[i] = float64(i)
		}
		return v
	}
	writeDerived(t, r, "units", "s", []string{store.AxisLayer, store.AxisHead}, []int{2, 3}, seq(6))
	rec := store.PassSettings{Function: "records", Axes: []store.Axis{{Name: store.AxisRecord}, {Name: store.AxisColumn, Labels: []string{"a", "b", "c"}}}}
	if err := r.PreparePass("records", rec); err != nil {
		t.Fatal(err)
	}
	writeDerivedData(t, r, "records", "s", []int{2, 3}, seq(6))
	writeDerived(t, r, "rollout", "s", []string{store.AxisLayer, store.AxisQuery, store.AxisKey}, []int{2, n, n}, seq(2*n*n))
	writeDerived(t, r, "crisp", "s", []string{store.AxisLayer, store.AxisHead, store.AxisPoint}, []int{2, 3, 4}, seq(24))
	writeDerived(t, r, "heads", "s", []string{store.AxisLayer, store.AxisHead, store.AxisQuery, store.AxisKey}, []int{2, 3, n, n}, seq(2*3*n*n))
	writeDerived(t, r, "misfit", "s", []string{store.AxisLayer}, []int{2, 3}, seq(6))
	// An output from before axes were recorded.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "derived", "old"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "derived", "old", "pass.json"), []byte(`{"function":"old","input":"attention","kwargs":{}}`), 0o644))
	writeDerivedData(t, r, "old", "s", []int{2, 3}, seq(6))
	base, _ := startServer(t, dir)

	get := func(url string, want int) derivedJSON {
		t.Helper()
		resp, body := rawGet(t, base, "GET", url)
		if resp.StatusCode != want {
			t.Fatalf("GET %s: %d %s, want %d", url, resp.StatusCode, body, want)
		}
		var d derivedJSON
		if want == 200 {
			must(json.Unmarshal([]byte(body), &d))
		} else if !strings.Contains(body, "error") {
			t.Errorf("GET %s: %s: no error message", url, body)
		}
		return d
	}
	d := get("/api/runs/run/derived/units/s", 200)
	if d.Kind != "heatmap" || d.Rows != 2 || d.Cols != 3 || !slices.Equal(d.YTicks, []string{"L0", "L1"}) || !slices.Equal(d.XTicks, []string{"H0", "H1", "H2"}) || d.YTitle != "layer" || d.XTitle != "head" {
		t.Errorf("[layer, head] output drawn as %s %d×%d, y %q %v, x %q %v", d.Kind, d.Rows, d.Cols, d.YTitle, d.YTicks, d.XTitle, d.XTicks)
	}
	d = get("/api/runs/run/derived/records/s", 200)
	if d.Kind != "table" || !slices.Equal(d.XTicks, []string{"a", "b", "c"}) || !slices.Equal(d.Values, seq(6)) {
		t.Errorf("[record, column(a, b, c)] output drawn as %s, columns %v, values %v", d.Kind, d.XTicks, d.Values)
	}
	d = get("/api/runs/run/derived/rollout/s?layer=0", 200)
	if d.Kind != "heatmap" || d.Rows != n || d.Cols != n || !d.UsedLayer || d.Values[0] != 0 || d.XTicks[1] != "t1" || d.YTitle != "query token (attending)" {
		t.Errorf("[layer, query, key] at layer 0: %s %d×%d, used layer %v, first value %v, x ticks %v, y %q", d.Kind, d.Rows, d.Cols, d.UsedLayer, d.Values[0], d.XTicks, d.YTitle)
	}
	if d = get("/api/runs/run/derived/rollout/s", 200); d.Values[0] != float64(n*n) {
		t.Errorf("[layer, query, key] by default: first value %v, want the last layer's %d", d.Values[0], n*n)
	}
	d = get("/api/runs/run/derived/crisp/s", 200)
	if d.Kind != "curves" || len(d.Series) != 6 || d.Series[0].Name != "L0 H0" || len(d.Series[5].Y) != 4 {
		t.Errorf("[layer, head, point] output: %s with %d series", d.Kind, len(d.Series))
	}
	if d = get("/api/runs/run/derived/units/s?head=1", 200); d.Kind != "heatmap" || d.UsedHead {
		t.Errorf("[layer, head] with head 1 selected: %s, used head %v (a figure of layers × heads selects none)", d.Kind, d.UsedHead)
	}
	d = get("/api/runs/run/derived/heads/s?layer=1&head=2", 200)
	if want := seq(2 * 3 * n * n)[(1*3+2)*n*n:]; d.Kind != "heatmap" || !slices.Equal(d.Values, want) || !d.UsedHead || !d.UsedLayer || d.XTicks[4] != "t4" {
		t.Errorf("[layer, head, query, key] at layer 1, head 2: %s %v ticks %v, want %v", d.Kind, d.Values, d.XTicks, want)
	}
	if d = get("/api/runs/run/derived/heads/s?layer=0&reduce=max", 200); !slices.Equal(d.Values, seq(3 * n * n)[2*n*n:]) {
		t.Errorf("[layer, head, query, key] at layer 0, max of heads: %v", d.Values)
	}
	get("/api/runs/run/derived/units/s?reduce=median", 400)
	get("/api/runs/run/derived/old/s", 422)
	get("/api/runs/run/derived/misfit/s", 422)
	get("/api/runs/run/derived/nosuch/s", 404)

	// The sample lists every pass with its axes and the output's shape.
	resp, body := rawGet(t, base, "GET", "/api/runs/run/samples/s")
	var sj struct {
		Derived []derivedPass `json:"derived"`
	}
	must(json.Unmarshal([]byte(body), &sj))
	if resp.StatusCode != 200 || len(sj.Derived) != 7 || sj.Derived[5].Name != "rollout" || store.AxesString(sj.Derived[5].Axes) != "[layer, query, key]" || fmt.Sprint(sj.Derived[5].Shape) != "[2 5 5]" {
		t.Errorf("sample listing: %d %+v", resp.StatusCode, sj.Derived)
	}
	// Matrix view tiles: outputs ending in [query, key] only.
	for url, want := range map[string]int{
		"/api/runs/run/samples/s/dpyramid/rollout/1": 200,
		"/api/runs/run/samples/s/dpyramid/units/0":   400,
		"/api/runs/run/samples/s/dpyramid/old/0":     400,
	} {
		if resp, body := rawGet(t, base, "GET", url); resp.StatusCode != want {
			t.Errorf("GET %s: %d %s, want %d", url, resp.StatusCode, body, want)
		}
	}
}

// writeDerivedData writes an output file only (its pass.json is written apart).
func writeDerivedData(t testing.TB, r *store.Run, pass, id string, shape []int, v []float64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(r.DerivedPath(pass, id)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.WriteNpyFile(r.DerivedPath(pass, id), shape, v); err != nil {
		t.Fatal(err)
	}
}
