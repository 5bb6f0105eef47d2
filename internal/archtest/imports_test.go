package archtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/attnscope/attnscope/"

// stage is each package's place in the data flow checkpoint/tokenizer → model →
// capture → store → derive/analysis → compare/stats → report/viz → commands: a
// package may import packages of its own or an earlier stage only. The longest
// matching prefix decides (model/gpt2 is model).
var stage = map[string]int{
	"tensor": 0, "internal": 0, "configs": 0,
	"checkpoint": 1, "tokenizer": 1,
	"model": 2, "tasks": 2, "seq2seq/corpus": 2,
	"capture": 3,
	"store":   4,
	"derive":  5, "analysis": 5, "human": 5, "jobs": 5,
	"stats": 6, "similarity": 6, "compare": 6, "evaluate": 6, "intervene": 6, "train": 6, "diagnose": 6, "grading": 6, "seq2seq/metrics": 6, "experiment": 6,
	"report": 7, "viz": 7, "web": 7, "serve": 7,
	"cmd": 8, "demo": 8, "seq2seq/experiment": 8, "bench": 8, "models": 8, "tools": 8, "third_party": 8,
}

// allowed lists the imports against the flow that are known and explained.
var allowed = map[string]string{
	// capture streams each sample to disk through store's SampleWriter while the model
	// runs; inverting it (capture emitting to an interface the command wires to store)
	// belongs to the rewrite of capture.
	"capture -> store": "capture writes runs through store.SampleWriter",
}

func stageOf(t *testing.T, pkg string) int {
	best, s := "", -1
	for p, n := range stage {
		if (pkg == p || strings.HasPrefix(pkg, p+"/")) && len(p) > len(best) {
			best, s = p, n
		}
	}
	if s < 0 {
		t.Errorf("package %s has no stage in the data flow (add it to archtest's table)", pkg)
	}
	return s
}

type listed struct {
	ImportPath string
	Imports    []string
}

func goList(t *testing.T) []listed {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = filepath.Join("..", "..")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v: %s", err, errb.String())
	}
	var pkgs []listed
	dec := json.NewDecoder(&out)
	for dec.More() {
		var p listed
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	return pkgs
}

// No package imports one later in the data flow, and analysis imports no project
// package but the leaf tensor.
func TestImportsFollowDataFlow(t *testing.T) {
	var bad []string
	for _, p := range goList(t) {
		from := strings.TrimPrefix(p.ImportPath, module)
		if strings.HasPrefix(from, "third_party") {
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			to := strings.TrimPrefix(imp, module)
			if from == "analysis" && to != "tensor" {
				bad = append(bad, fmt.Sprintf("analysis imports %s (it stays pure: tensor only)", to))
			}
			edge := strings.SplitN(from, "/", 2)[0] + " -> " + strings.SplitN(to, "/", 2)[0]
			if _, ok := allowed[edge]; ok {
				continue
			}
			if stageOf(t, to) > stageOf(t, from) {
				bad = append(bad, fmt.Sprintf("%s imports %s, later in the data flow", from, to))
			}
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Error(b)
	}
}
