package experiment

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

// Folders of the original's output layout.
const (
	FolderGenerated = "generated_sequence"
	FolderAnswers   = "answers"
)

// Metadata is the original's metadata/<stem>.json, its keys in the original's order.
type Metadata struct {
	TokensAll       []string `json:"tokens_all"`
	TokensPrompt    []string `json:"tokens_prompt"`
	TokensGenerated []string `json:"tokens_generated"`
	// TextGenerated is the decoded whole sequence, prompt included.
	TextGenerated         string  `json:"text_generated"`
	TextPrompt            string  `json:"text_prompt"`
	GenerationTimeSeconds float64 `json:"generation_time_seconds"`
	SourceFile            string  `json:"source_file"`
	ModeName              string  `json:"mode_name"` // sic: the model name
	ConfigOptions         any     `json:"config_options"`
}

// sampleStem returns the original's stem of a run sample.
func sampleStem(s *store.Sample, model string) string {
	return Stem(filepath.Base(s.Source), s.Try, model)
}

// SampleMetadata builds the original's metadata of a run sample.
func (c *Config) SampleMetadata(s *store.Sample, model string) *Metadata {
	p := min(s.PromptLen, len(s.Tokens))
	return &Metadata{
		TokensAll: nonNil(s.Tokens), TokensPrompt: nonNil(s.Tokens[:p]), TokensGenerated: nonNil(s.Tokens[p:]),
		TextGenerated: s.Text, TextPrompt: s.PromptText, GenerationTimeSeconds: s.Seconds,
		SourceFile: filepath.Base(s.Source), ModeName: model, ConfigOptions: c.Plain(),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// AttTensor computes the original's att_tensor of attention [L, H, N, N]: rows
// normalised and axes reduced as the experiment says, then squeezed (float32, as
// numpy saves the original's torch tensor).
func (c *Config) AttTensor(att *tensor.Tensor) ([]int, []float32, error) {
	t := att
	if c.Attention.Normalize() == "more_weight_to_recent" {
		t = att.Clone()
		MoreWeightToRecent(t)
	}
	r, err := Reduce(t, c.Attention.StrategyReduceHead, c.Attention.StrategyReduceLayer)
	if err != nil {
		return nil, nil, err
	}
	return Squeeze(r.Shape), r.Float32(), nil
}

// exportQuery writes the original's metadata/, att_tensor/ and generated_sequence/
// files of every sample of the run; files already there are kept.
func (c *Config) exportQuery(run *store.Run, model string) error {
	return eachSample(run, model, func(id string, s *store.Sample, stem string) error {
		meta := filepath.Join(c.OutputDataFolder, FolderMetadata, stem+".json")
		if c.SaveAttention() {
			att := filepath.Join(c.OutputDataFolder, FolderAttTensor, stem+".npy")
			if !exists(att) {
				a, err := run.Attention(id)
				if err != nil {
					return err
				}
				shape, data, err := c.AttTensor(a)
				if err != nil {
					return fmt.Errorf("sample %s: %w", id, err)
				}
				if err := writeNpy(att, shape, data); err != nil {
					return err
				}
			}
		}
		if err := writeText(filepath.Join(c.OutputDataFolder, FolderGenerated, stem+".txt"), s.Text); err != nil {
			return err
		}
		b, err := json.Marshal(c.SampleMetadata(s, model))
		if err != nil {
			return fmt.Errorf("metadata of %s: %w", stem, err)
		}
		return writeText(meta, string(b))
	})
}

// eachSample calls fn with every sample of run, its record and its stem (the
// original's file name of the sample, without extension), in id order.
func eachSample(run *store.Run, model string, fn func(id string, s *store.Sample, stem string) error) error {
	ids, err := run.Samples()
	if err != nil {
		return err
	}
	for _, id := range ids {
		s, err := run.Sample(id)
		if err != nil {
			return err
		}
		if err := fn(id, s, sampleStem(s, model)); err != nil {
			return err
		}
	}
	return nil
}

// exportPasses copies each pass's outputs to <analysis_data_folder>/<pass>/<stem>.npy.
func (c *Config) exportPasses(run *store.Run, model string, ps *Passes) error {
	return eachSample(run, model, func(id string, _ *store.Sample, stem string) error {
		for _, p := range ps.Derive.Passes {
			if p.Name == ps.AttTensorPass {
				continue // att_tensor/ is written by queryextract
			}
			dst := filepath.Join(c.AnalysisDataFolder, p.Name, stem+".npy")
			if exists(dst) {
				continue
			}
			b, err := os.ReadFile(run.DerivedPath(p.Name, id))
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := atomicfile.WriteFile(dst, b); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetAnswers writes, as the original's getanswers, answers/<stem>.txt under
// output_data_folder for every sample: the stem on the first line, then the text
// from the first "Question" on (the question, the answer prompt and the model's
// continuation).
func GetAnswers(c *Config, opts Options) error {
	for _, m := range c.Models {
		run, err := openRun(c.RunDir(opts, m), m)
		if err != nil {
			return err
		}
		n := 0
		err = eachSample(run, m, func(id string, s *store.Sample, stem string) error {
			i := strings.Index(s.Text, "Question")
			if i < 0 {
				return fmt.Errorf("getanswers: sample %s (%s): the text has no \"Question\" to start the answer from", id, s.Source)
			}
			n++
			return writeText(filepath.Join(c.OutputDataFolder, FolderAnswers, stem+".txt"), stem+"\n"+s.Text[i:])
		})
		if err != nil {
			return err
		}
		logf(opts, "getanswers %s: %d answers in %s", m, n, filepath.Join(c.OutputDataFolder, FolderAnswers))
	}
	return nil
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func writeText(path, text string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, []byte(text))
}

func writeNpy(path string, shape []int, data []float32) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return checkpoint.WriteNpyFile(path, shape, data)
}
