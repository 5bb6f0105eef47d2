package web

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/attnscope/attnscope/store"
)

// A sample without attention (a human reading session of attnscope human, or an import
// of derived outputs only) is listed with its derived outputs, which are drawn by their
// declared axes; its attention views answer 404 with a message, never a 5xx.
func TestSampleWithoutAttention(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	r := newRun(t, dir)
	if err := r.WriteSample(&store.Sample{ID: "session", Text: "a = 1\nb = a\n", Tokens: []string{"a = 1\n", "b = a\n"}, Offsets: [][2]int{{0, 6}, {6, 12}}}); err != nil {
		t.Fatal(err)
	}
	writeDerived(t, r, "followup_lines", "session", []string{store.AxisLine, store.AxisLine}, []int{2, 2}, []float64{0, 0, 1, 0})
	base, _ := startServer(t, dir)

	resp, body := rawGet(t, base, "GET", "/api/runs/run/samples/session")
	var sj struct {
		Derived []derivedPass `json:"derived"`
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &sj) != nil || len(sj.Derived) != 1 || sj.Derived[0].Name != "followup_lines" {
		t.Fatalf("sample without attention: %d %s", resp.StatusCode, body)
	}
	resp, body = rawGet(t, base, "GET", "/api/runs/run/derived/followup_lines/session")
	var d derivedJSON
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &d) != nil || d.Kind != "heatmap" || d.Rows != 2 || d.Cols != 2 || d.Values[2] != 1 {
		t.Fatalf("[line, line] output of a sample without attention: %d %s", resp.StatusCode, body)
	}
	for _, url := range []string{"/api/runs/run/samples/session/tile/0/0/max/0/0/0", "/api/runs/run/samples/session/thumbs/0/max"} {
		resp, body := rawGet(t, base, "GET", url)
		if resp.StatusCode != 404 || body == "" {
			t.Errorf("GET %s on a sample without attention: %d %s, want 404 with a message", url, resp.StatusCode, body)
		}
	}
}
