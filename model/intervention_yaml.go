package model

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"

	"github.com/attnscope/attnscope/internal/strictyaml"
)

// interventionFile is the YAML form of an Intervention:
//
//	name: ablate-l1h2            # optional label, recorded with the run
//	edits:
//	  - hook: attn.hook_z        # one of Hooks; also blocks.<l>.attn.hook_z (sets layers) or hook_z
//	    layers: [1]              # optional: every layer
//	    heads: [2]               # optional: every head
//	    positions: [0, 3]        # optional: every position (query positions for the pattern)
//	    key_positions: [1]       # optional, hook_pattern / hook_attn_scores
//	    cells: [[3, 1], [4, 2]]  # optional (query, key) cells instead of positions
//	    op: zero                 # zero | scale | add | set | noise | patch
//	    value: 0.5               # scale factor, added value, constant, noise std
//	    seed: 7                  # noise
//	    threshold: 0.003         # optional: only cells whose value is ≥ it
//	    renormalize: false       # hook_pattern: divide edited rows by their sum
//	    source_text: "..."       # patch: the clean text whose activations are copied
//	    source_run: runs/clean   # patch, instead of source_text: a run folder captured earlier
//	    source_sample: a         # its sample (optional when the run has one)
type interventionFile struct {
	Name  string     `yaml:"name"`
	Edits []editFile `yaml:"edits"`
}

type editFile struct {
	Hook         string   `yaml:"hook"`
	Layers       []int    `yaml:"layers"`
	Heads        []int    `yaml:"heads"`
	Positions    []int    `yaml:"positions"`
	KeyPositions []int    `yaml:"key_positions"`
	Cells        [][]int  `yaml:"cells"`
	Op           string   `yaml:"op"`
	Value        *float64 `yaml:"value"`
	Seed         uint64   `yaml:"seed"`
	Threshold    *float64 `yaml:"threshold"`
	Renormalize  bool     `yaml:"renormalize"`
	SourceText   string   `yaml:"source_text"`
	SourceRun    string   `yaml:"source_run"`
	SourceSample string   `yaml:"source_sample"`
}

// SourceRun names a patch edit's source in a stored run folder: Dir (as
// written, relative to the working directory) and the sample ID ("" when the
// file names none).
type SourceRun struct {
	Dir, Sample string
}

// InterventionFile is an Intervention read from YAML, with what error
// messages need to point into the file.
type InterventionFile struct {
	Path string
	Name string
	*Intervention
	// SourceTexts[i] is edit i's source_text (patch edits): the caller runs
	// it and fills Edits[i].Source.
	SourceTexts []string
	// SourceRuns[i] is edit i's source_run and source_sample (patch edits
	// without source_text): the caller reads the stored run's activations
	// and fills Edits[i].Source.
	SourceRuns []SourceRun
	line       func(path string) int
}

// ReadIntervention reads and checks the syntax of an intervention file; the
// edits are checked against a model with Explain(iv.Check(cfg)).
func ReadIntervention(path string) (*InterventionFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseIntervention(path, data)
}

// ParseIntervention parses the YAML data of file path.
func ParseIntervention(path string, data []byte) (*InterventionFile, error) {
	var f interventionFile
	file, err := strictyaml.Decode(data, &f)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	out := &InterventionFile{Path: path, Name: f.Name, Intervention: &Intervention{}, line: func(p string) int { return strictyaml.Line(file, p) }}
	if len(f.Edits) == 0 {
		return nil, fmt.Errorf("%s: the file has no edits (expected a list under \"edits:\")", path)
	}
	for i, e := range f.Edits {
		e.Hook, e.Layers = canonicalHook(e.Hook, e.Layers)
		ed := Edit{Hook: e.Hook, Layers: e.Layers, Heads: e.Heads, Positions: e.Positions, KeyPositions: e.KeyPositions,
			Op: Op(e.Op), Seed: e.Seed, Threshold: e.Threshold, Renormalize: e.Renormalize}
		bad := func(field, format string, args ...any) error {
			return out.Explain(&EditError{Index: i, Field: field, Msg: fmt.Sprintf(format, args...)})
		}
		for _, c := range e.Cells {
			if len(c) != 2 {
				return nil, bad("cells", "a cell is a [query, key] pair, got %v", c)
			}
			ed.Cells = append(ed.Cells, [2]int{c[0], c[1]})
		}
		needsValue := ed.Op == OpScale || ed.Op == OpAdd || ed.Op == OpSet || ed.Op == OpNoise
		switch {
		case e.Value != nil && !needsValue:
			return nil, bad("value", "op %s takes no value", e.Op)
		case e.Value == nil && needsValue:
			return nil, bad("op", "op %s needs a value", e.Op)
		case e.Value != nil:
			ed.Value = *e.Value
		}
		hasSource := e.SourceText != "" || e.SourceRun != ""
		switch {
		case e.SourceText != "" && e.SourceRun != "":
			return nil, bad("source_run", "give source_text or source_run, not both")
		case hasSource != (ed.Op == OpPatch):
			return nil, bad("source_text", "source_text or source_run goes with op patch, and op patch needs one")
		case e.SourceSample != "" && e.SourceRun == "":
			return nil, bad("source_sample", "source_sample names a sample of source_run, which is missing")
		}
		out.Edits = append(out.Edits, ed)
		out.SourceTexts = append(out.SourceTexts, e.SourceText)
		out.SourceRuns = append(out.SourceRuns, SourceRun{Dir: e.SourceRun, Sample: e.SourceSample})
	}
	return out, nil
}

// Explain prefixes an *EditError with the file and the line of the edit's
// field ("file:line: edits[i].field: message"); other errors pass unchanged.
func (f *InterventionFile) Explain(err error) error {
	var ee *EditError
	if f == nil || !errors.As(err, &ee) {
		return err
	}
	field := fmt.Sprintf("$.edits[%d].%s", ee.Index, ee.Field)
	line := f.line(field)
	if line == 0 {
		line = f.line(fmt.Sprintf("$.edits[%d]", ee.Index))
	}
	return fmt.Errorf("%s:%d: edits[%d].%s: %s", f.Path, line, ee.Index, ee.Field, ee.Msg)
}

var fullHookRE = regexp.MustCompile(`^blocks\.(\d+)\.(.+)$`)

// canonicalHook accepts TransformerLens's full names ("blocks.3.attn.hook_pattern":
// layer 3, when layers is not given) and the attention hooks without "attn."
// ("hook_pattern").
func canonicalHook(hook string, layers []int) (string, []int) {
	if m := fullHookRE.FindStringSubmatch(hook); m != nil && layers == nil {
		l, err := strconv.Atoi(m[1])
		if err == nil {
			hook, layers = m[2], []int{l}
		}
	}
	if !slices.Contains(Hooks, hook) && slices.Contains(Hooks, "attn."+hook) {
		hook = "attn." + hook
	}
	return hook, layers
}
