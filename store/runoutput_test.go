package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/tensor"
)

// Run-level outputs round-trip with their axes, are listed beside (not among) the
// per-sample passes, replace an older output of the same name, and refuse bad input
// without leaving anything behind.
func TestRunOutputRoundTrip(t *testing.T) {
	r, err := Create(t.TempDir(), Meta{})
	if err != nil {
		t.Fatal(err)
	}
	axes := []Axis{{Name: AxisLayer, Labels: []string{"a0", "a1"}}, {Name: AxisLayer}}
	set := PassSettings{Function: "similarity_linear-cka", Input: "hidden", Kwargs: map[string]any{"run_b": "b"}, Axes: axes}
	src := tensor.New(2, 3)
	for i := range src.Data {
		src.Data[i] = float64(i) / 7
	}
	if err := r.WriteRunOutput("cka", set, src); err != nil {
		t.Fatal(err)
	}
	info, got, err := r.RunOutput("cka")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Shape, src.Shape) || !reflect.DeepEqual(got.Data, src.Data) {
		t.Errorf("read %v %v, wrote %v %v", got.Shape, got.Data, src.Shape, src.Data)
	}
	if !reflect.DeepEqual(info.Axes, axes) || info.Function != set.Function || info.Kwargs["run_b"] != "b" {
		t.Errorf("settings %+v, wrote %+v", info.PassSettings, set)
	}
	list, err := r.RunOutputs()
	if err != nil || len(list) != 1 || list[0].Name != "cka" || !reflect.DeepEqual(list[0].Shape, []int{2, 3}) {
		t.Fatalf("RunOutputs = %+v, %v", list, err)
	}
	if passes, err := r.DerivedPasses(); err != nil || len(passes) != 0 {
		t.Errorf("a run output is listed as a per-sample pass: %+v %v", passes, err)
	}
	// Replacing keeps one folder, with the new values.
	src2 := tensor.New(2, 1)
	src2.Data[0], src2.Data[1] = 3, 4
	if err := r.WriteRunOutput("cka", set, src2); err != nil {
		t.Fatal(err)
	}
	if _, got, err = r.RunOutput("cka"); err != nil || !reflect.DeepEqual(got.Data, []float64{3, 4}) {
		t.Errorf("after replacing: %v, %v", got, err)
	}
	ents, _ := os.ReadDir(filepath.Join(r.Dir(), RunOutputDir))
	if len(ents) != 1 {
		t.Errorf("run-outputs holds %d entries after a replacement, want 1", len(ents))
	}
	// Bad input: nothing is written.
	for name, c := range map[string]struct {
		name string
		set  PassSettings
		t    *tensor.Tensor
		want string
	}{
		"axes":  {"x", set, tensor.New(3, 2), "declares 2"},
		"rank":  {"x", set, tensor.New(6), "has 1 axes"},
		"none":  {"x", PassSettings{Function: "f"}, tensor.New(2), "no axes"},
		"name":  {"a/x", set, src, "not allowed"},
		"short": {"x", set, &tensor.Tensor{Shape: []int{2, 2}, Data: []float64{1}}, "holds 4 values"},
	} {
		err := r.WriteRunOutput(c.name, c.set, c.t)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want one containing %q", name, err, c.want)
		}
	}
	ents, _ = os.ReadDir(filepath.Join(r.Dir(), RunOutputDir))
	if len(ents) != 1 {
		t.Errorf("bad input left %d entries in run-outputs", len(ents))
	}
	if _, _, err := r.RunOutput("missing"); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "cka") {
		t.Errorf("missing output: %v (want ErrNotExist naming cka)", err)
	}
	// A pass.json that does not describe the array is an error, not a guess.
	bad := set
	bad.Axes = []Axis{{Name: AxisLayer, Labels: []string{"only"}}, {Name: AxisLayer}}
	if err := r.WriteRunOutput("bad", set, src); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(r.Dir(), RunOutputDir, "bad", PassFile))
	b = []byte(strings.Replace(string(b), `"a1"`, `"a1", "a2"`, 1))
	if err := os.WriteFile(filepath.Join(r.Dir(), RunOutputDir, "bad", PassFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.RunOutput("bad"); err == nil || !strings.Contains(err.Error(), "bad") {
		t.Errorf("mismatched pass.json read without error: %v", err)
	}
}
