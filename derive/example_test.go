package derive_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/attnscope/attnscope/derive"
	"github.com/attnscope/attnscope/store"
)

// Run an analysis: derive one pass (the entropy of every attention row) over a run,
// then read its output, the axes pass.json records, and its metrics.
func Example_runAnalysis() {
	dir := filepath.Join(os.TempDir(), "attnscope-example-derive")
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	run, err := store.Create(dir, store.Meta{Kind: "import"})
	if err != nil {
		log.Fatal(err)
	}
	w, _ := run.NewSample("s0", store.SampleOptions{Layers: 1})
	w.Record(store.AttentionName(0), []int{1, 2, 2}, []float32{1, 0, 0.5, 0.5}) // one layer, one head, two tokens
	if err := w.Commit(&store.Sample{ID: "s0", Text: "ab", Tokens: []string{"a", "b"}, PromptLen: 2}); err != nil {
		log.Fatal(err)
	}

	cfg, err := derive.ParseConfig("example.yaml", []byte(`passes:
  - name: entropy
    input: attention
    function: attention_entropy
`), derive.DefaultRegistry())
	if err != nil {
		log.Fatal(err)
	}
	sum, err := derive.Derive(context.Background(), run, cfg, derive.Options{})
	if err != nil {
		log.Fatal(err)
	}
	out, _ := run.Derived("entropy", "s0")
	pass, _ := run.Pass("entropy")
	fmt.Printf("%d output(s); entropy %s = %.4f\n", sum.Computed, store.AxesString(pass.Axes), out.Data)
	rows, _ := run.Metrics()
	fmt.Printf("%d metric rows; overall mean %s = %.4f\n", len(rows), rows[len(rows)-1].Metric, rows[len(rows)-1].Value)
	// Output:
	// 1 output(s); entropy [layer, head, query] = [0.0000 0.6931]
	// 3 metric rows; overall mean entropy = 0.3466
}
