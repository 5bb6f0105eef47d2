package derive

import (
	"path/filepath"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
)

// needsOwnInput lists the functions derive-all.yaml leaves out: they need inputs that only
// some runs have.
var needsOwnInput = map[string]string{
	"ground_truth_lines": "the ground truth of prompts made by attnscope tasks create (configs/followup/ground-truth.yaml)",
}

// configs/derive-all.yaml is valid and uses every registered pass function.
func TestDeriveAllConfigCoversEveryFunction(t *testing.T) {
	reg := DefaultRegistry()
	cfg, err := LoadConfig(filepath.Join(refdata.RepoRoot(), "configs", "derive-all.yaml"), reg)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, p := range cfg.Passes {
		used[p.Function] = true
	}
	for _, name := range reg.Names() {
		if !used[name] && needsOwnInput[name] == "" {
			t.Errorf("configs/derive-all.yaml does not run function %s", name)
		}
	}
}
