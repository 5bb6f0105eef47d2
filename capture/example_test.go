package capture_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/attnscope/attnscope/capture"
	"github.com/attnscope/attnscope/store"
)

// Capture the attention of a model over texts into a run folder, then read
// it back with package store.
func ExampleRun() {
	dir, err := os.MkdirTemp("", "attnscope-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "run")
	inputs := []capture.Input{
		{ID: "short", Text: "12+34="},
		{ID: "long", Text: "1234+5678="},
	}
	sum, err := capture.Run(context.Background(), out, inputs, capture.Options{
		ModelDir:  "../models/default", // a Hugging Face checkpoint folder with its tokenizer
		QKV:       true,                // also store queries, keys and values
		BatchSize: 2,                   // both texts in one padded batch
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("captured:", sum.Captured)

	run, err := store.Open(out)
	if err != nil {
		log.Fatal(err)
	}
	ids, _ := run.Samples()
	for _, id := range ids {
		s, _ := run.Sample(id)
		att, _ := run.AttentionLayer(id, 0)
		q, _, _, _ := run.QKV(id, 0)
		fmt.Printf("%s: %d tokens %q, layer 0 attention %v, queries %v\n",
			id, len(s.IDs), s.Tokens, att.Shape, q.Shape)
	}
	// Output:
	// captured: 2
	// long: 11 tokens ["<bos>" "1" "2" "3" "4" "+" "5" "6" "7" "8" "="], layer 0 attention [4 11 11], queries [4 11 16]
	// short: 7 tokens ["<bos>" "1" "2" "+" "3" "4" "="], layer 0 attention [4 7 7], queries [4 7 16]
}
