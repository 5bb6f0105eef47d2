package seq2seq

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/seq2seq/corpus"
)

// Checkpoint files inside a checkpoint folder.
const (
	WeightsFile  = "model.safetensors"
	ConfigFile   = "config.json"
	SrcVocabFile = "src_vocab.json"
	TrgVocabFile = "trg_vocab.json"
)

// Checkpoint is a trained model with its vocabularies.
type Checkpoint struct {
	Config   Config
	Weights  [][]float32
	Src, Trg *corpus.Vocab
	// Meta is free information (epoch, val_loss, …) kept in config.json.
	Meta map[string]any
}

type configFile struct {
	ModelType string `json:"model_type"` // "seq2seq"
	Config
	SrcVocabSHA256 string         `json:"src_vocab_sha256"`
	TrgVocabSHA256 string         `json:"trg_vocab_sha256"`
	Meta           map[string]any `json:"meta,omitempty"`
}

func vocabHash(v *corpus.Vocab) string {
	b, _ := json.Marshal(v.Itos)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Save writes dir/model.safetensors (float32, PyTorch state-dict names),
// dir/config.json (the Config with the vocabularies' SHA-256) and the two
// vocabularies, each atomically.
func (c *Checkpoint) Save(dir string) error {
	if err := c.check(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	specs := c.Config.Params()
	infos := make([]checkpoint.TensorInfo, len(specs))
	for i, s := range specs {
		infos[i] = checkpoint.TensorInfo{Name: s.Name, DType: checkpoint.F32, Shape: s.Shape}
	}
	if err := checkpoint.WriteSafetensors(filepath.Join(dir, WeightsFile), infos, c.Weights, map[string]string{"format": "pt", "model": "attnscope seq2seq " + c.Config.Kind}); err != nil {
		return err
	}
	if err := c.Src.Save(filepath.Join(dir, SrcVocabFile)); err != nil {
		return err
	}
	if err := c.Trg.Save(filepath.Join(dir, TrgVocabFile)); err != nil {
		return err
	}
	js, err := json.MarshalIndent(configFile{ModelType: "seq2seq", Config: c.Config, SrcVocabSHA256: vocabHash(c.Src), TrgVocabSHA256: vocabHash(c.Trg), Meta: c.Meta}, "", "  ")
	if err != nil {
		return fmt.Errorf("save %s: %w", dir, err)
	}
	return atomicfile.WriteFile(filepath.Join(dir, ConfigFile), append(js, '\n'))
}

func (c *Checkpoint) check(dir string) error {
	if err := c.Config.Validate(); err != nil {
		return fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	if c.Src.Len() != c.Config.SrcVocab {
		return fmt.Errorf("checkpoint %s: %s has %d tokens, the model's encoder embedding has %d rows", dir, SrcVocabFile, c.Src.Len(), c.Config.SrcVocab)
	}
	if c.Trg.Len() != c.Config.TrgVocab {
		return fmt.Errorf("checkpoint %s: %s has %d tokens, the model's decoder embedding and output have %d", dir, TrgVocabFile, c.Trg.Len(), c.Config.TrgVocab)
	}
	return nil
}

// Load reads a checkpoint folder written by Save. A vocabulary whose size or
// content does not match the one the weights were trained with is an error.
func Load(dir string) (*Checkpoint, error) {
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, fmt.Errorf("load checkpoint: %w", err)
	}
	var cf configFile
	if err := json.Unmarshal(b, &cf); err != nil {
		return nil, fmt.Errorf("load %s: invalid JSON: %w", filepath.Join(dir, ConfigFile), err)
	}
	if cf.ModelType != "seq2seq" {
		return nil, fmt.Errorf("load %s: model_type %q, \"seq2seq\" expected", filepath.Join(dir, ConfigFile), cf.ModelType)
	}
	c := &Checkpoint{Config: cf.Config, Meta: cf.Meta}
	if c.Src, err = corpus.LoadVocab(filepath.Join(dir, SrcVocabFile)); err != nil {
		return nil, err
	}
	if c.Trg, err = corpus.LoadVocab(filepath.Join(dir, TrgVocabFile)); err != nil {
		return nil, err
	}
	if err := c.check(dir); err != nil {
		return nil, err
	}
	if h := vocabHash(c.Src); h != cf.SrcVocabSHA256 {
		return nil, fmt.Errorf("checkpoint %s: %s is not the vocabulary the model was trained with (SHA-256 %s, config.json records %s)", dir, SrcVocabFile, h[:12], short(cf.SrcVocabSHA256))
	}
	if h := vocabHash(c.Trg); h != cf.TrgVocabSHA256 {
		return nil, fmt.Errorf("checkpoint %s: %s is not the vocabulary the model was trained with (SHA-256 %s, config.json records %s)", dir, TrgVocabFile, h[:12], short(cf.TrgVocabSHA256))
	}
	w, err := checkpoint.OpenWeights(dir)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	for _, s := range c.Config.Params() {
		v, err := w.Float32(s.Name, s.Shape)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", dir, err)
		}
		c.Weights = append(c.Weights, append([]float32(nil), v...))
	}
	return c, nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
