package store_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

// Read a run: its samples, each sample's tokens and one layer of attention
// ([head, query, key]), and the outputs of derive passes with the axes their
// functions declared. (The run is written here first, as attnscope capture would.)
func Example_readRun() {
	dir := filepath.Join(os.TempDir(), "attnscope-example-run")
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	writeTinyRun(dir)

	run, err := store.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	ids, _ := run.Samples()
	for _, id := range ids {
		s, _ := run.Sample(id)
		layers, _ := run.NumLayers(id)
		att, _ := run.AttentionLayer(id, layers-1) // [head, query, key]
		fmt.Printf("%s: tokens %q, %d layer(s), last layer %v\n", id, s.Tokens, layers, att.Shape)
		fmt.Printf("  head 0, query 1 attends to key 0 with %.2f\n", att.At(0, 1, 0))
	}
	passes, _ := run.DerivedPasses()
	for _, p := range passes {
		out, _ := run.Derived(p.Name, ids[0])
		fmt.Printf("pass %s (%s): axes %s, shape %v\n", p.Name, p.Function, store.AxesString(p.Axes), out.Shape)
	}
	// Output:
	// s0: tokens ["a" "b"], 1 layer(s), last layer [1 2 2]
	//   head 0, query 1 attends to key 0 with 0.25
	// pass received (attention_received): axes [layer, key], shape [1 2]
}

// writeTinyRun writes a run of one sample (two tokens, one layer, one head) and one
// derived output.
func writeTinyRun(dir string) {
	run, err := store.Create(dir, store.Meta{Kind: "import"})
	if err != nil {
		log.Fatal(err)
	}
	w, err := run.NewSample("s0", store.SampleOptions{Layers: 1})
	if err != nil {
		log.Fatal(err)
	}
	if err := w.Record(store.AttentionName(0), []int{1, 2, 2}, []float32{1, 0, 0.25, 0.75}); err != nil {
		log.Fatal(err)
	}
	if err := w.Commit(&store.Sample{ID: "s0", Text: "ab", Tokens: []string{"a", "b"}, Offsets: [][2]int{{0, 1}, {1, 2}}, PromptLen: 2}); err != nil {
		log.Fatal(err)
	}
	axes := []store.Axis{{Name: store.AxisLayer}, {Name: store.AxisKey}}
	if err := run.PreparePass("received", store.PassSettings{Function: "attention_received", Input: "attention", Kwargs: map[string]any{}, Axes: axes}); err != nil {
		log.Fatal(err)
	}
	att, _ := run.Attention("s0")
	// Column sums of the one head of layer 0: [layer, key].
	received := tensor.New(1, 2)
	for q := range 2 {
		for k := range 2 {
			received.Data[k] += att.At(0, 0, q, k)
		}
	}
	if err := run.WriteDerived("received", "s0", received, nil); err != nil {
		log.Fatal(err)
	}
}
