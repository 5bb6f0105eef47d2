package model

import (
	"strings"
	"testing"

	"github.com/attnscope/attnscope/model/arch"
)

// TestInterventionFileErrors: a bad intervention file is one sentence naming the
// file, the line of the key and what was expected.
func TestInterventionFileErrors(t *testing.T) {
	cfg := &arch.Config{Layers: 2, Heads: 4, KVHeads: 4, HeadDim: 16, Hidden: 64, MaxPositions: 64}
	for _, c := range []struct{ yaml, want string }{
		{"edits:\n  - hook: attn.hook_z\n    op: zero\n    layer: [1]\n", `x.yaml: [4:5] unknown field "layer"`},
		{"edits:\n  - hook: attn.hook_z\n    op: zero\n  - hook: attn.hook_z\n    layers: [5]\n    op: zero\n", "x.yaml:5: edits[1].layers: layer 5 does not exist (the model has 2 layers, 0 to 1)"},
		{"edits:\n  - hook: attn.hook_z\n    heads: [0, 9]\n    op: zero\n", "x.yaml:3: edits[0].heads: head 9 does not exist"},
		{"edits:\n  - hook: blocks.0.hook_zz\n    op: zero\n", `x.yaml:2: edits[0].hook: "hook_zz" is not a hook point`},
		{"edits:\n  - hook: blocks.4.attn.hook_z\n    op: zero\n", "x.yaml:2: edits[0].layers: layer 4 does not exist"},
		{"edits:\n  - hook: attn.hook_z\n    op: scale\n", "x.yaml:3: edits[0].op: op scale needs a value"},
		{"edits:\n  - hook: attn.hook_z\n    op: patch\n", "x.yaml:2: edits[0].source_text: source_text or source_run goes with op patch"},
		{"edits:\n  - hook: attn.hook_z\n    op: patch\n    source_text: a\n    source_run: r\n", "x.yaml:5: edits[0].source_run: give source_text or source_run, not both"},
		{"edits:\n  - hook: attn.hook_z\n    op: zero\n    source_run: r\n", "x.yaml:2: edits[0].source_text: source_text or source_run goes with op patch"},
		{"edits:\n  - hook: attn.hook_z\n    op: patch\n    source_text: a\n    source_sample: s\n", "x.yaml:5: edits[0].source_sample: source_sample names a sample of source_run, which is missing"},
		{"edits:\n  - hook: attn.hook_pattern\n    cells: [[1, 2, 3]]\n    op: zero\n", "x.yaml:3: edits[0].cells: a cell is a [query, key] pair"},
		{"name: x\n", "x.yaml: the file has no edits"},
	} {
		f, err := ParseIntervention("x.yaml", []byte(c.yaml))
		if err == nil {
			err = f.Explain(f.Check(cfg))
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.yaml, err, c.want)
		}
	}
	f, err := ParseIntervention("ok.yaml", []byte("name: reinforce\nedits:\n  - hook: attn.hook_pattern\n    layers: [1]\n    heads: [0]\n    cells: [[3, 1]]\n    op: add\n    value: 1\n    threshold: 0.003\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Check(cfg); err != nil {
		t.Fatal(err)
	}
	full, err := ParseIntervention("full.yaml", []byte("edits:\n  - hook: blocks.1.hook_pattern\n    op: zero\n"))
	if err != nil {
		t.Fatal(err)
	}
	if e := full.Edits[0]; e.Hook != "attn.hook_pattern" || len(e.Layers) != 1 || e.Layers[0] != 1 {
		t.Errorf("blocks.1.hook_pattern parsed as %s on layers %v", e.Hook, e.Layers)
	}
	e := f.Edits[0]
	if f.Name != "reinforce" || e.Op != OpAdd || e.Value != 1 || *e.Threshold != 0.003 || e.Cells[0] != [2]int{3, 1} {
		t.Fatalf("parsed %+v", e)
	}
}

// FuzzParseIntervention: no input makes the parser panic.
func FuzzParseIntervention(f *testing.F) {
	f.Add([]byte("edits:\n  - hook: attn.hook_z\n    op: zero\n"))
	f.Add([]byte("edits:\n  - {hook: attn.hook_pattern, cells: [[1, 2]], op: add, value: 1, threshold: 0.1}\n"))
	f.Add([]byte("edits:\n  - {hook: hook_resid_post, op: patch, source_run: runs/clean, source_sample: a}\n"))
	cfg := &arch.Config{Layers: 2, Heads: 4, KVHeads: 4, HeadDim: 16, Hidden: 64, MaxPositions: 64}
	f.Fuzz(func(t *testing.T, data []byte) {
		if iv, err := ParseIntervention("f.yaml", data); err == nil {
			_ = iv.Explain(iv.Check(cfg))
		}
	})
}
