package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
)

// BenchmarkSampleWriter streams a GPT-2-small-shaped attention (12 layers, 12
// heads) into attention.safetensors and commits it.
func BenchmarkSampleWriter(b *testing.B) {
	for _, fp16 := range []bool{false, true} {
		for _, n := range []int{128, 512} {
			b.Run(fmt.Sprintf("n=%d/fp16=%v", n, fp16), func(b *testing.B) {
				const layers, heads = 12, 12
				layer := make([]float32, heads*n*n)
				for i := range layer {
					layer[i] = 1 / float32(n)
				}
				r, err := Create(b.TempDir(), Meta{})
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(layers * len(layer) * 4))
				for i := 0; b.Loop(); i++ {
					id := fmt.Sprintf("s%d", i)
					w, err := r.NewSample(id, SampleOptions{Layers: layers, FP16: fp16})
					if err != nil {
						b.Fatal(err)
					}
					for l := range layers {
						if err := w.Record(AttentionName(l), []int{heads, n, n}, layer); err != nil {
							b.Fatal(err)
						}
					}
					if err := w.Commit(&Sample{ID: id}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkImportNpy imports a [12, 12, 256, 256] float32 .npy file.
func BenchmarkImportNpy(b *testing.B) {
	const layers, heads, n = 12, 12, 256
	dir := b.TempDir()
	data := make([]float32, layers*heads*n*n)
	for i := range data {
		data[i] = 1 / float32(n)
	}
	src := filepath.Join(dir, "att.npy")
	if err := checkpoint.WriteNpyFile(src, []int{layers, heads, n, n}, data); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data) * 4))
	for i := 0; b.Loop(); i++ {
		if _, err := Import(context.Background(), filepath.Join(dir, fmt.Sprintf("run%d", i)), []string{src}, ImportOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
