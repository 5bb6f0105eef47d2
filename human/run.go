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

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/internal/buildinfo"
	"github.com/attnscope/attnscope/store"
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

// writePassSettings writes RUN/derived/<pass>/pass.json, refusing a folder derived
// with other settings.
func writePassSettings(r *store.Run, pass string, s store.PassSettings) error {
	if err := os.MkdirAll(filepath.Dir(r.PassSettingsPath(pass)), 0o755); err != nil {
		return err
	}
	want, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	want = append(want, '\n')
	got, err := os.ReadFile(r.PassSettingsPath(pass))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return atomicfile.WriteFile(r.PassSettingsPath(pass), want)
	case err != nil:
		return err
	case !bytes.Equal(got, want):
		return fmt.Errorf("%s was made with other settings (%s); delete that folder to remake it", r.PassSettingsPath(pass), strings.TrimSpace(string(got)))
	}
	return nil
}

// writeArray writes a derived array (float64 .npy) atomically.
func writeArray(r *store.Run, pass, sample string, shape []int, data []float64) error {
	return checkpoint.WriteNpyFile(r.DerivedPath(pass, sample), shape, data)
}

// readArray reads a derived array as float64.
func readArray(r *store.Run, pass, sample string) ([]int, []float64, error) {
	a, err := checkpoint.ReadNpyFile(r.DerivedPath(pass, sample))
	if err != nil {
		return nil, nil, err
	}
	return a.Shape, a.Float64s(), nil
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
