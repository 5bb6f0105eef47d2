package human

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/internal/buildinfo"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
	"github.com/attnscope/attnscope/tokenizer"
)

// Kind is the run.json kind of a run made from eye-tracking data.
const Kind = "human"

// Folders and pass names inside a human run folder (besides the store layout).
const (
	// HumanDir holds the files of the eye-tracking pipeline that are not per-sample
	// arrays: RUN/human/intermediate_char_events/<id>.csv, data_mapping.json,
	// answers/<id>.txt, answers_dataset.csv, decay_<δ>/data_avg_followup/*.csv.
	HumanDir = "human"
	// PassCharWeights is the derived output of getweights: one weight per character.
	PassCharWeights = "char_weights"
)

// PassTokenWeights is the derived output of derivetokenweights for a model.
func PassTokenWeights(model string) string { return "token_weights." + modelSlug(model) }

// PassFollowupTokens is getfollowup's token × token output for a decay.
func PassFollowupTokens(decay float64) string { return "followup_tokens.decay_" + decayName(decay) }

// PassFollowupLines is getfollowup's line × line output for a decay.
func PassFollowupLines(decay float64) string { return "followup_lines.decay_" + decayName(decay) }

// PassFollowupTokensLines is derivefollowupline's token × line output for a decay.
func PassFollowupTokensLines(decay float64) string {
	return "followup_tokens_lines.decay_" + decayName(decay)
}

// Axes of the human outputs, recorded in their pass.json.
var (
	// CharWeightsAxes: one weight per character (code point) of the sample's text.
	CharWeightsAxes = []store.Axis{{Name: store.AxisChar}}
	// FollowupLinesAxes: line × line follow-up, one row and column per source line.
	FollowupLinesAxes = []store.Axis{{Name: store.AxisLine}, {Name: store.AxisLine}}
)

// followupTokensAxes are the axes of the token × token follow-up matrix: the
// sample's tokens with force_model_tokens, else the records (tokens with their
// newlines split), which are not the sample's tokens.
func (c *Config) followupTokensAxes() []store.Axis {
	if c.forceModelTokens() {
		return []store.Axis{{Name: store.AxisQuery}, {Name: store.AxisKey}}
	}
	return []store.Axis{{Name: store.AxisToken}, {Name: store.AxisToken}}
}

// sameAsFollowupTokenizer reports whether model m of tokenization.model_names is the
// follow-up tokenizer, whose tokens are the samples' own.
func (c *Config) sameAsFollowupTokenizer(m string) bool {
	if c.Followup.ModelTokenizer == "" {
		return false
	}
	a, err1 := c.modelDir(m, c.Tokenization.ModelsFolder)
	b, err2 := c.modelDir(c.Followup.ModelTokenizer, c.Followup.ModelFolder)
	if err1 != nil || err2 != nil {
		return false
	}
	ab, _ := filepath.Abs(a)
	bb, _ := filepath.Abs(b)
	return ab == bb
}

// decayName spells a decay as Python's str(float) in the original's folder names.
func decayName(d float64) string { return pyFloat(d) }

func modelSlug(m string) string {
	return store.SampleID(strings.ReplaceAll(filepath.Base(filepath.Clean(m)), "/", "_"))
}

// openOrCreateRun opens the config's run folder, or creates it with its provenance.
func (c *Config) openOrCreateRun(command []string) (*store.Run, error) {
	dir := c.OutputDir()
	if _, err := os.Stat(filepath.Join(dir, store.RunFile)); err == nil {
		r, err := store.Open(dir)
		if err != nil {
			return nil, err
		}
		if r.Meta.Kind != Kind {
			return nil, fmt.Errorf("%s: folder_output %s holds a %s run, not a human one", c.path, dir, r.Meta.Kind)
		}
		return r, nil
	}
	meta := store.Meta{
		Version: buildinfo.Version(), Command: command, Kind: Kind, DType: "float64",
		Inputs: []string{c.path}, StartTime: time.Now().UTC(),
	}
	if c.Followup.ModelTokenizer != "" {
		info, err := c.tokenizerInfo(c.Followup.ModelTokenizer)
		if err != nil {
			return nil, err
		}
		meta.Model = info
	}
	return store.Create(dir, meta)
}

// openRun opens the config's run folder, which an earlier getweights made.
func (c *Config) openRun() (*store.Run, error) {
	r, err := store.Open(c.OutputDir())
	if err != nil {
		return nil, fmt.Errorf("%w (run getweights first)", err)
	}
	if r.Meta.Kind != Kind {
		return nil, fmt.Errorf("%s: %s holds a %s run, not a human one", c.path, r.Dir(), r.Meta.Kind)
	}
	return r, nil
}

// modelDir finds the folder of a model name: the name itself (relative to the config),
// or models_folder/<name>, or models_folder/<name with / replaced by _>.
func (c *Config) modelDir(name, folder string) (string, error) {
	cands := []string{c.resolve(name)}
	if folder != "" {
		f := c.resolve(folder)
		cands = append(cands, filepath.Join(f, name), filepath.Join(f, strings.ReplaceAll(name, "/", "_")))
	}
	for _, d := range cands {
		if st, err := os.Stat(filepath.Join(d, "tokenizer.json")); err == nil && st.Mode().IsRegular() {
			return d, nil
		}
	}
	return "", fmt.Errorf("%s: model %q: no tokenizer.json in %s", c.path, name, strings.Join(cands, " or "))
}

func (c *Config) loadTokenizer(name, folder string) (*tokenizer.Tokenizer, error) {
	d, err := c.modelDir(name, folder)
	if err != nil {
		return nil, err
	}
	return tokenizer.Load(filepath.Join(d, "tokenizer.json"))
}

// tokenizerInfo records the follow-up tokenizer's folder with the hashes of its
// tokenizer and config files.
func (c *Config) tokenizerInfo(name string) (*store.ModelInfo, error) {
	d, err := c.modelDir(name, c.Followup.ModelFolder)
	if err != nil {
		return nil, err
	}
	info := &store.ModelInfo{Dir: d}
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json", "config.json"} {
		h, err := hashFile(filepath.Join(d, f))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		h.Name = f
		info.Files = append(info.Files, h)
	}
	if b, err := os.ReadFile(filepath.Join(d, "config.json")); err == nil {
		var cfg struct {
			ModelType string `json:"model_type"`
		}
		if json.Unmarshal(b, &cfg) == nil {
			info.ModelType = cfg.ModelType
		}
		var buf bytes.Buffer
		if json.Compact(&buf, b) == nil {
			info.Config = buf.Bytes()
		}
	}
	return info, nil
}

func hashFile(path string) (store.FileHash, error) {
	f, err := os.Open(path)
	if err != nil {
		return store.FileHash{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return store.FileHash{}, err
	}
	return store.FileHash{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// preparePass creates RUN/derived/<pass>/ and records its settings and the axes of
// its outputs (pass.json) through the store, refusing a folder made with other
// settings, so that report, plot, web and derive read human outputs by their axes as
// they read a derive pass's.
func preparePass(r *store.Run, pass string, s store.PassSettings) error {
	return r.PreparePass(pass, s)
}

// writeArray stores sample's output of pass (a float64 .npy) through the store after
// checking its shape against the pass's declared axes.
func writeArray(r *store.Run, pass, sample string, axes []store.Axis, shape []int, data []float64) error {
	if err := store.CheckAxes(axes, shape); err != nil {
		return fmt.Errorf("pass %s, sample %s: %w", pass, sample, err)
	}
	return r.WriteDerived(pass, sample, &tensor.Tensor{Shape: shape, Data: data}, nil)
}

// readArray reads sample's output of pass as float64.
func readArray(r *store.Run, pass, sample string) ([]int, []float64, error) {
	t, err := r.Derived(pass, sample)
	if err != nil {
		return nil, nil, err
	}
	return t.Shape, t.Data, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'))
}

func languageOf(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".py":
		return "python"
	case ".cpp", ".cc", ".cxx", ".hpp", ".h", ".c":
		return "cpp"
	case ".cs":
		return "csharp"
	case ".java":
		return "java"
	case ".js":
		return "javascript"
	case ".go":
		return "go"
	}
	return ""
}
