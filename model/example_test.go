package model_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/attnscope/attnscope/model"
)

// Load a Hugging Face checkpoint folder (here the bundled default model, a
// 2-layer GPT-2) and run one forward pass, receiving every layer's attention
// pattern and queries/keys/values through a Recorder as they are computed.
func ExampleLoad() {
	m, err := model.Load("../models/default", model.LoadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	cfg := m.Config()
	fmt.Printf("%s: %d layers × %d heads\n", cfg.ModelType, cfg.Layers, cfg.Heads)

	ids := []int{1, 20, 21, 22, 23, 24} // token ids, special tokens included
	rec := model.RecorderFunc(func(name string, shape []int, data []float32) error {
		if strings.HasSuffix(name, ".attn.pattern") {
			// data is [heads, query, key] row-major; every row sums to 1.
			n := shape[2]
			sum := 0.0
			for _, v := range data[(shape[1]-1)*n : shape[1]*n] { // head 0, last query
				sum += float64(v)
			}
			fmt.Printf("%s %v, head 0's last row sums to %.3f\n", name, shape, sum)
		} else {
			fmt.Printf("%s %v\n", name, shape)
		}
		return nil
	})
	out, err := m.Forward(context.Background(), model.Input{IDs: ids}, rec, model.ForwardOptions{QKV: true, Logits: model.LogitsLast})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("logits of the last position:", out.LogitsShape)
	// Output:
	// gpt2: 2 layers × 4 heads
	// blocks.0.attn.pattern [4 6 6], head 0's last row sums to 1.000
	// blocks.0.attn.hook_q [4 6 16]
	// blocks.0.attn.hook_k [4 6 16]
	// blocks.0.attn.hook_v [4 6 16]
	// blocks.1.attn.pattern [4 6 6], head 0's last row sums to 1.000
	// blocks.1.attn.hook_q [4 6 16]
	// blocks.1.attn.hook_k [4 6 16]
	// blocks.1.attn.hook_v [4 6 16]
	// logits of the last position: [99]
}
