package store

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fakeForward records what a model's forward pass would: embed, then per layer the
// attention [heads, n, n] and the residual stream, then final_norm.
func fakeForward(t *testing.T, w *SampleWriter, layers, heads, n, width int) [][]float32 {
	t.Helper()
	var atts [][]float32
	hidden := make([]float32, n*width)
	for i := range hidden {
		hidden[i] = float32(i) / 8
	}
	if err := w.Record(EmbedName, []int{n, width}, hidden); err != nil {
		t.Fatal(err)
	}
	for l := range layers {
		a := make([]float32, heads*n*n)
		for h := range heads {
			for q := range n {
				for k := 0; k <= q; k++ {
					a[(h*n+q)*n+k] = 1 / float32(q+1) * float32(1+l+h) / float32(1+l+h)
				}
			}
		}
		atts = append(atts, append([]float32{}, a...))
		if err := w.Record(AttentionName(l), []int{heads, n, n}, a); err != nil {
			t.Fatal(err)
		}
		// The writer must copy: the model reuses its buffers.
		for i := range a {
			a[i] = -1
		}
		if err := w.Record("blocks.0.attn.hook_q", []int{heads, n, 2}, make([]float32, heads*n*2)); err != nil {
			t.Fatal(err)
		}
		if err := w.Record(ResidName(l), []int{n, width}, hidden); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Record(FinalNormName, []int{n, width}, hidden); err != nil {
		t.Fatal(err)
	}
	return atts
}

func TestRunWriteRead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	r, err := Create(dir, Meta{Version: "test", Command: []string{"attnscope", "capture"}, Kind: "capture", DType: "float32", StartTime: time.Unix(1700000000, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Create(dir, Meta{}); err == nil {
		t.Error("Create over an existing run succeeded")
	}
	for _, fp16 := range []bool{false, true} {
		id := "s32"
		if fp16 {
			id = "s16"
		}
		w, err := r.NewSample(id, SampleOptions{Layers: 3, Hidden: true, FinalNorm: true, FP16: fp16})
		if err != nil {
			t.Fatal(err)
		}
		atts := fakeForward(t, w, 3, 2, 4, 5)
		if ids, _ := r.Samples(); len(ids) != 0 && !fp16 {
			t.Errorf("unfinished sample listed: %v", ids)
		}
		s := &Sample{ID: id, Text: "a b", PromptText: "a b", IDs: []int{1, 2, 3, 4}, Tokens: []string{"a", "Ġb", "c", "d"}, Offsets: [][2]int{{0, 1}, {1, 3}, {3, 3}, {3, 3}}, PromptLen: 4}
		if err := w.Commit(s); err != nil {
			t.Fatal(err)
		}
		r2, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if r2.Meta.Version != "test" || r2.Meta.Kind != "capture" {
			t.Errorf("meta %+v", r2.Meta)
		}
		got, err := r2.Sample(id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Text != "a b" || !reflect.DeepEqual(got.Offsets, s.Offsets) || got.Attention == nil || got.Attention.Heads != 2 || got.Hidden == nil {
			t.Errorf("sample read back: %+v", got)
		}
		if n, err := r2.NumLayers(id); err != nil || n != 3 {
			t.Errorf("NumLayers = %d, %v", n, err)
		}
		tol := 0.0
		if fp16 {
			tol = 1e-3
		}
		for l := range 3 {
			a, err := r2.AttentionLayer(id, l)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a.Shape, []int{2, 4, 4}) {
				t.Fatalf("layer %d shape %v", l, a.Shape)
			}
			for i, v := range a.Data {
				if d := v - float64(atts[l][i]); d > tol || d < -tol {
					t.Fatalf("layer %d value %d = %g, want %g", l, i, v, atts[l][i])
				}
			}
		}
		all, err := r2.Attention(id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(all.Shape, []int{3, 2, 4, 4}) || all.At(2, 1, 3, 3) != float64(atts[2][(1*4+3)*4+3]) && !fp16 {
			t.Errorf("Attention: shape %v", all.Shape)
		}
		if _, err := r2.AttentionLayer(id, 3); err == nil || !strings.Contains(err.Error(), "no layer 3") {
			t.Errorf("layer out of range: %v", err)
		}
		names, err := r2.HiddenNames(id)
		if err != nil || len(names) != 5 || names[0] != "embed" || names[4] != "final_norm" {
			t.Errorf("hidden names %v %v", names, err)
		}
		h, err := r2.Hidden(id, ResidName(1))
		if err != nil || !reflect.DeepEqual(h.Shape, []int{4, 5}) || h.Data[3] != 3.0/8 {
			t.Errorf("hidden %+v %v", h, err)
		}
	}
	ids, err := r.Samples()
	if err != nil || !reflect.DeepEqual(ids, []string{"s16", "s32"}) {
		t.Errorf("Samples = %v, %v", ids, err)
	}
	if p := r.DerivedPath("rollout", "s16"); p != filepath.Join(dir, "derived", "rollout", "s16.npy") {
		t.Errorf("DerivedPath = %s", p)
	}
	if _, err := r.Sample("missing"); err == nil || !strings.Contains(err.Error(), "no finished sample") {
		t.Errorf("missing sample: %v", err)
	}
}

func TestSampleWriterAbortAndErrors(t *testing.T) {
	r, err := Create(t.TempDir(), Meta{})
	if err != nil {
		t.Fatal(err)
	}
	// Aborting midway leaves no file.
	w, _ := r.NewSample("x", SampleOptions{Layers: 2})
	if err := w.Record(AttentionName(0), []int{1, 2, 2}, []float32{1, 0, .5, .5}); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	entries, _ := os.ReadDir(r.SampleDir("x"))
	if len(entries) != 0 {
		t.Errorf("files left after Abort: %v", entries)
	}
	// Committing with a layer missing fails and leaves nothing.
	w, _ = r.NewSample("x", SampleOptions{Layers: 2})
	w.Record(AttentionName(0), []int{1, 2, 2}, []float32{1, 0, .5, .5})
	if err := w.Commit(&Sample{ID: "x"}); err == nil || !strings.Contains(err.Error(), "1 of 2 attention layers") {
		t.Errorf("incomplete commit: %v", err)
	}
	if r.Finished("x") {
		t.Error("incomplete sample marked finished")
	}
	entries, _ = os.ReadDir(r.SampleDir("x"))
	if len(entries) != 0 {
		t.Errorf("files left after a failed Commit: %v", entries)
	}
	// Layers out of order, and a wrongly shaped first tensor.
	w, _ = r.NewSample("y", SampleOptions{Layers: 2})
	if err := w.Record(AttentionName(1), []int{1, 2, 2}, make([]float32, 4)); err == nil {
		t.Error("layer 1 before layer 0 accepted")
	}
	w, _ = r.NewSample("y", SampleOptions{Layers: 2})
	if err := w.Record(AttentionName(0), []int{1, 2, 3}, make([]float32, 6)); err == nil {
		t.Error("non-square attention accepted")
	}
	if _, err := r.NewSample("../evil", SampleOptions{Layers: 1}); err == nil {
		t.Error("sample id with a path accepted")
	}
	// Hidden states of a run captured without them.
	w, _ = r.NewSample("z", SampleOptions{Layers: 1})
	w.Record(EmbedName, []int{2, 3}, make([]float32, 6)) // ignored: Hidden off
	w.Record(AttentionName(0), []int{1, 2, 2}, []float32{1, 0, .5, .5})
	if err := w.Commit(&Sample{ID: "z"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Hidden("z", EmbedName); !errors.Is(err, ErrNotCaptured) {
		t.Errorf("Hidden without capture: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "not a run folder") {
		t.Errorf("Open of an empty folder: %v", err)
	}
	os.WriteFile(filepath.Join(dir, RunFile), []byte("{"), 0o644)
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "run.json") {
		t.Errorf("Open of bad JSON: %v", err)
	}
}

func TestSampleID(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Nqueens_Q1.cpp_0", "Nqueens_Q1.cpp_0"},
		{"a b/c", "a_b_c"},
		{".hidden", "hidden"},
		{"", "_"},
	} {
		if got := SampleID(c.in); got != c.want {
			t.Errorf("SampleID(%q) = %q, want %q", c.in, got, c.want)
		}
		if err := CheckSampleID(SampleID(c.in)); err != nil {
			t.Errorf("SampleID(%q) is invalid: %v", c.in, err)
		}
	}
	for _, bad := range []string{"", "..", "a/b", ".x", "é"} {
		if CheckSampleID(bad) == nil {
			t.Errorf("CheckSampleID(%q) accepted", bad)
		}
	}
}

// TestSampleWriterMemory checks that recording does not accumulate layers: the
// bytes allocated while streaming 12 layers stay under three layers' worth (the
// two buffers of the background writer plus small I/O buffers).
func TestSampleWriterMemory(t *testing.T) {
	const layers, heads, n = 12, 8, 256
	r, err := Create(t.TempDir(), Meta{})
	if err != nil {
		t.Fatal(err)
	}
	layer := make([]float32, heads*n*n)
	for i := range layer {
		layer[i] = 1 / float32(n)
	}
	layerBytes := uint64(len(layer) * 4)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	w, err := r.NewSample("big", SampleOptions{Layers: layers})
	if err != nil {
		t.Fatal(err)
	}
	for l := range layers {
		if err := w.Record(AttentionName(l), []int{heads, n, n}, layer); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if err := w.Commit(&Sample{ID: "big"}); err != nil {
		t.Fatal(err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 3*layerBytes {
		t.Errorf("recording %d layers of %d bytes allocated %d bytes (more than three layers)", layers, layerBytes, got)
	}
	st, _ := os.Stat(r.AttentionPath("big"))
	if st.Size() < int64(layers)*int64(layerBytes) {
		t.Errorf("attention file is %d bytes, want at least %d", st.Size(), layers*int(layerBytes))
	}
}
