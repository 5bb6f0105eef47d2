package store

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/tensor"
)

// Derived outputs round-trip as float64 .npy files, pass.json records the axes, and
// DerivedPasses lists them with their settings.
func TestDerivedRoundTrip(t *testing.T) {
	r, err := Create(t.TempDir(), Meta{})
	if err != nil {
		t.Fatal(err)
	}
	axes := []Axis{{Name: AxisLayer}, {Name: AxisHead}, {Name: AxisCriterion, Labels: []string{"a", "b"}}}
	set := PassSettings{Function: "f", Input: "attention", Kwargs: map[string]any{"k": 1.0}, Axes: axes}
	if err := r.PreparePass("p", set); err != nil {
		t.Fatal(err)
	}
	src := tensor.New(2, 3, 2)
	for i := range src.Data {
		src.Data[i] = float64(i) - 0.5
	}
	if err := CheckAxes(axes, src.Shape); err != nil {
		t.Fatal(err)
	}
	if err := CheckAxes(axes, []int{2, 3, 4}); err == nil || !strings.Contains(err.Error(), "criterion") {
		t.Errorf("CheckAxes accepted 4 entries for 2 labels: %v", err)
	}
	if err := CheckAxes(axes, []int{6, 2}); err == nil {
		t.Error("CheckAxes accepted a rank-2 output for 3 axes")
	}
	rows := []MetricRow{{Sample: "s", Pass: "p", Layer: 0, Head: 1, Metric: "m", Value: 2}}
	if err := r.WriteDerived("p", "s", src, rows); err != nil {
		t.Fatal(err)
	}
	got, err := r.Derived("p", "s")
	if err != nil || !reflect.DeepEqual(got, src) {
		t.Fatalf("Derived = %v, %v; want %v", got, err, src)
	}
	raw, _ := os.ReadFile(r.DerivedPath("p", "s"))
	if !bytes.Contains(raw, []byte("'descr': '<f8'")) {
		t.Errorf("outputs are not float64 .npy: %q", raw[:64])
	}
	if _, err := r.Derived("p", "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing output: err = %v, want fs.ErrNotExist", err)
	}
	passes, err := r.DerivedPasses()
	if err != nil || len(passes) != 1 || passes[0].Name != "p" || !reflect.DeepEqual(passes[0].Axes, axes) {
		t.Fatalf("DerivedPasses = %+v, %v", passes, err)
	}
	if _, err := r.Pass("q"); err == nil || !strings.Contains(err.Error(), "passes: p") {
		t.Errorf("unknown pass: %v", err)
	}
	n, err := r.GatherMetrics(context.Background(), []string{"p"}, []string{"s"})
	if err != nil || n != 1 {
		t.Fatalf("GatherMetrics = %d, %v", n, err)
	}
	if m, err := r.Metrics(); err != nil || !reflect.DeepEqual(m, rows) {
		t.Errorf("Metrics = %v, %v", m, err)
	}
	// Same settings again: accepted; other kwargs: refused.
	if err := r.PreparePass("p", set); err != nil {
		t.Error(err)
	}
	set.Kwargs = map[string]any{"k": 2.0}
	if err := r.PreparePass("p", set); err == nil || !strings.Contains(err.Error(), "other settings") {
		t.Errorf("changed kwargs: %v", err)
	}
}

// A pass.json written before axes were recorded is completed, not refused.
func TestPreparePassAddsAxes(t *testing.T) {
	r, _ := Create(t.TempDir(), Meta{})
	old := PassSettings{Function: "f", Input: "attention", Kwargs: map[string]any{}}
	if err := r.PreparePass("p", old); err != nil {
		t.Fatal(err)
	}
	old.Axes = []Axis{{Name: AxisQuery}, {Name: AxisKey}}
	if err := r.PreparePass("p", old); err != nil {
		t.Fatal(err)
	}
	s, err := r.ReadPassSettings("p")
	if err != nil || len(s.Axes) != 2 {
		t.Errorf("axes not recorded: %+v %v", s, err)
	}
}
