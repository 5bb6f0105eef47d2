// Package defaultmodel bundles attnscope's default model: a small GPT-2
// (2 layers × 4 heads × 64 wide, character tokenizer) trained from scratch by
// `attnscope train configs/attentionspan/default-addition.yaml` on long
// addition of two 1–4 digit operands written least-significant digit first
// (AttentionSpan's LongAdditionGenerator). The folder is a Hugging Face
// checkpoint (model.safetensors, config.json, tokenizer.json); training.json
// records the experiment config and train_log.jsonl the training curve.
// `attnscope demo` uses it; `attnscope demo --retrain` reproduces it.
package defaultmodel

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/attnscope/attnscope/internal/atomicfile"
)

//go:embed config.json model.safetensors tokenizer.json tokenizer_config.json training.json train_log.jsonl
var files embed.FS

// Files lists the bundled files.
func Files() []string {
	entries, _ := fs.ReadDir(files, ".")
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// ReadFile returns one bundled file.
func ReadFile(name string) ([]byte, error) { return files.ReadFile(name) }

// WriteTo writes the bundled model folder into dir (created if needed).
func WriteTo(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write default model: %w", err)
	}
	for _, name := range Files() {
		b, err := files.ReadFile(name)
		if err != nil {
			return fmt.Errorf("write default model: %w", err)
		}
		if err := atomicfile.WriteFile(filepath.Join(dir, name), b); err != nil {
			return err
		}
	}
	return nil
}
