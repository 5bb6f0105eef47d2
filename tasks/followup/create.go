package followup

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/tasks"
)

// Prompt is one created prompt and its ground truth.
type Prompt struct {
	// Name is the file stem: prompt_<i>_<strategy> for creators, prompt_<i> for
	// complete_gibberish (the original's names).
	Name string
	// Text is the prompt file's content.
	Text  string
	Truth GroundTruth
}

// GroundTruth is the original's ground-truth JSON (PromptCreator.create_prompts):
// <ground_truth_folder>/<name>.json. AttentionWeights[k] is the weight of
// AttendableParts[k], the k-th line (0-based) of the prompt; it is null for gibberish,
// which has no expected pattern.
type GroundTruth struct {
	AttendableParts  []string       `json:"attendable_parts"`
	AttentionLevel   string         `json:"attention_level"`
	AttentionWeights []float64      `json:"attention_weights"`
	Args             map[string]any `json:"args"`
	CreationStrategy string         `json:"creation_strategy"`
}

// creationStrategy is the class name the original records.
var creationStrategy = map[string]string{
	AssignmentChain:   "AssignmentChainCreator",
	TwoFunctionsTest:  "TwoFunctionsOneTestCreator",
	CompleteGibberish: "complete_gibberish",
}

// Create generates the configured prompts: Python's random seeded with kwargs.seed once,
// then n_prompts prompts in order (PromptCreator.create_prompts).
// Its errors name the key through the Errorf given to Check.
func Create(s *Strategy) ([]Prompt, error) {
	if s.errf == nil {
		return nil, fmt.Errorf("prompt_creation_strategy %q was not checked (Strategy.Check) before Create", s.Name)
	}
	rng := tasks.NewPyRandom(*seedField(s.args()))
	var next func() ([]string, []float64, error)
	switch s.Name {
	case AssignmentChain:
		next = func() ([]string, []float64, error) { return assignmentChain(rng, s.assignment) }
	case TwoFunctionsTest:
		gen, err := twoFunctions(rng, s.twoFuncs, s.NPrompts)
		if err != nil {
			return nil, s.errf("kwargs.folder_with_seed_functions", "%v", err)
		}
		next = func() ([]string, []float64, error) { p, w := gen(); return p, w, nil }
	default:
		var out []Prompt
		for i := 0; i < s.NPrompts; i++ {
			text := gibberish(rng, s.gibberish)
			out = append(out, Prompt{Name: fmt.Sprintf("prompt_%d", i), Text: text, Truth: GroundTruth{
				AttendableParts: strings.Split(strings.TrimSuffix(text, "\n"), "\n"), AttentionLevel: s.AttentionLevel,
				Args: s.Kwargs, CreationStrategy: creationStrategy[s.Name]}})
		}
		return out, nil
	}
	var out []Prompt
	for i := 0; i < s.NPrompts; i++ {
		parts, w, err := next()
		if err != nil {
			return nil, s.errf("", "prompt %d: %v", i, err)
		}
		out = append(out, Prompt{Name: fmt.Sprintf("prompt_%d_%s", i, s.Name), Text: strings.Join(parts, "\n"),
			Truth: GroundTruth{AttendableParts: parts, AttentionLevel: s.AttentionLevel, AttentionWeights: w,
				Args: s.Kwargs, CreationStrategy: creationStrategy[s.Name]}})
	}
	return out, nil
}

func (s *Strategy) args() any {
	switch {
	case s.assignment != nil:
		return s.assignment
	case s.twoFuncs != nil:
		return s.twoFuncs
	}
	return s.gibberish
}

// CSVName is the table of every prompt's line weights written beside the JSON files.
const CSVName = "ground_truth.csv"

// Write stores the prompts as <input_data_folder>/<name>.txt (promptsDir) (the prompts folder that
// capture --prompts and attnscope run read), the ground truth as
// <ground_truth_folder>/<name>.json (truthDir) and one long table <ground_truth_folder>/ground_truth.csv
// (columns prompt, line, text, weight; line 0-based; weight empty for gibberish).
// Without force it refuses a prompts folder already holding .txt files, as the
// original asked before overwriting. Every file is written atomically.
func Write(promptsDir, truthDir string, prompts []Prompt, force bool) error {
	if !force {
		old, _ := filepath.Glob(filepath.Join(promptsDir, "*.txt"))
		if len(old) > 0 {
			return fmt.Errorf("%s already holds %d .txt files (e.g. %s); use --force to overwrite", promptsDir, len(old), filepath.Base(old[0]))
		}
	}
	gt := truthDir
	for _, d := range []string{promptsDir, gt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, p := range prompts {
		if err := atomicfile.WriteFile(filepath.Join(promptsDir, p.Name+".txt"), []byte(p.Text)); err != nil {
			return err
		}
		b, err := json.Marshal(p.Truth)
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(filepath.Join(gt, p.Name+".json"), b); err != nil {
			return err
		}
	}
	return atomicfile.WriteWith(filepath.Join(gt, CSVName), func(w io.Writer) error { return writeCSV(w, prompts) })
}

func writeCSV(w io.Writer, prompts []Prompt) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"prompt", "line", "text", "weight"}); err != nil {
		return err
	}
	for _, p := range prompts {
		for k, part := range p.Truth.AttendableParts {
			weight := ""
			if p.Truth.AttentionWeights != nil {
				weight = strconv.FormatFloat(p.Truth.AttentionWeights[k], 'g', -1, 64)
			}
			if err := cw.Write([]string{p.Name, strconv.Itoa(k), part, weight}); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// ReadGroundTruth reads a ground-truth JSON file and checks that it has one weight per
// attendable part.
func ReadGroundTruth(path string) (*GroundTruth, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var g GroundTruth
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, fmt.Errorf("%s: not a ground-truth JSON file: %v", path, err)
	}
	if g.AttentionWeights == nil {
		return nil, fmt.Errorf("%s: attention_weights is null (a prompt without an expected pattern, e.g. gibberish)", path)
	}
	if len(g.AttentionWeights) != len(g.AttendableParts) {
		return nil, fmt.Errorf("%s: %d attention_weights for %d attendable_parts", path, len(g.AttentionWeights), len(g.AttendableParts))
	}
	if g.AttentionLevel != "line" {
		return nil, fmt.Errorf("%s: attention_level is %q, only line is supported", path, g.AttentionLevel)
	}
	return &g, nil
}
