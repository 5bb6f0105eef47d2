package tokenizer

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/attnscope/attnscope/tokenizer/internal/corpus"
)

// benchSize is the amount of source code the throughput benchmark encodes.
const benchSize = 10 << 20

var (
	benchOnce  sync.Once
	benchDir   string
	benchTexts []string
	benchBytes int64
	benchErr   error
)

// benchSetup builds the full-size tokenizers and writes the corpus (10 MB of Go
// source, one text per file) once per process.
func benchSetup(b *testing.B, oracles string) {
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "tokbench")
		if benchErr != nil {
			return
		}
		buildFixtures(b, oracles, benchDir)
		benchTexts, benchErr = corpus.GoSource(benchSize)
		if benchErr != nil {
			return
		}
		for _, t := range benchTexts {
			benchBytes += int64(len(t))
		}
		data, err := json.Marshal(map[string]any{"texts": benchTexts})
		if err != nil {
			benchErr = err
			return
		}
		benchErr = os.WriteFile(filepath.Join(benchDir, "corpus.json"), data, 0o644)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
}

// hfThroughput runs tools/oracles/bench.js: HF tokenizers' MB/s on the same corpus.
func hfThroughput(b *testing.B, oracles, tokPath string) (single, batch float64) {
	cmd := exec.Command("node", "bench.js", tokPath, filepath.Join(benchDir, "corpus.json"))
	cmd.Dir = oracles
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("node bench.js: %v\n%s", err, stderr.String())
	}
	var r struct {
		Single float64 `json:"single_mbs"`
		Batch  float64 `json:"batch_mbs"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		b.Fatalf("node bench.js output %q: %v", out, err)
	}
	return r.Single, r.Batch
}

// BenchmarkThroughput encodes 10 MB of Go source (the GOROOT src tree, one text per
// file) with the full-size GPT-2 and Llama-2 tokenizers, single-threaded and batched
// (EncodeBatch), and reports beside Go's MB/s the MB/s of Hugging Face's tokenizers
// (npm, Rust) measured in the same run on the same corpus (hf-MB/s) and the ratio.
//
//	go test ./tokenizer -run '^$' -bench Throughput -benchtime 1x
func BenchmarkThroughput(b *testing.B) {
	oracles := oracleDir(b)
	benchSetup(b, oracles)
	for _, name := range []string{"gpt2", "llama2"} {
		tokPath := filepath.Join(benchDir, name, "tokenizer.json")
		tk, err := Load(tokPath)
		if err != nil {
			b.Fatal(err)
		}
		hfSingle, hfBatch := hfThroughput(b, oracles, tokPath)
		report := func(b *testing.B, hf float64) {
			goMBs := float64(benchBytes) * float64(b.N) / 1e6 / b.Elapsed().Seconds()
			b.ReportMetric(hf, "hf-MB/s")
			b.ReportMetric(goMBs/hf, "go/hf")
		}
		b.Run(name+"/single", func(b *testing.B) {
			b.SetBytes(benchBytes)
			for b.Loop() {
				for _, t := range benchTexts {
					if _, err := tk.Encode(t, false); err != nil {
						b.Fatal(err)
					}
				}
			}
			report(b, hfSingle)
		})
		b.Run(name+"/batch", func(b *testing.B) {
			b.SetBytes(benchBytes)
			for b.Loop() {
				if _, err := tk.EncodeBatch(context.Background(), benchTexts, false); err != nil {
					b.Fatal(err)
				}
			}
			report(b, hfBatch)
		})
	}
}
