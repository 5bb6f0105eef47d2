package train

import (
	"os"
	"testing"
)

// FuzzParseExperiment: any config bytes and override give a config or an error,
// never a panic.
func FuzzParseExperiment(f *testing.F) {
	def, err := os.ReadFile(defaultConfig)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(def, "training.steps=5")
	f.Add(def, "training=null")
	f.Add([]byte("name: x\nmodel: {n_layer: 1, n_head: 1, n_embd: 4, n_positions: 8}\n"), "+training.steps=1")
	f.Add([]byte("model: [1, 2"), "a=b")
	f.Add([]byte("training:\n  train_dataset:\n    generator_parameters: !!binary x\n"), "training.x.y=1")
	f.Fuzz(func(t *testing.T, data []byte, override string) {
		_, _ = ParseExperiment("fuzz.yaml", data, nil)
		_, _ = ParseExperiment("fuzz.yaml", data, []string{override})
	})
}
