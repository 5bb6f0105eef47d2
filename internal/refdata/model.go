package refdata

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// ModelWithConfig returns a temporary copy of reference model name whose files are
// links to the originals except config.json, which is the original's after edit has
// changed its keys (for example a longer max_position_embeddings: RoPE weights do not
// depend on the context length).
func ModelWithConfig(t testing.TB, name string, edit func(cfg map[string]any)) string {
	t.Helper()
	src := Path(t, "models", name)
	dir := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "config.json" {
			if err := os.Symlink(filepath.Join(src, e.Name()), filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	raw, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("%s/config.json: %v", src, err)
	}
	edit(cfg)
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
