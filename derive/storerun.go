package derive

import (
	"context"

	"github.com/attnscope/attnscope/store"
)

// storeRun is a run folder written by attnscope capture or import (package store).
type storeRun struct {
	r *store.Run
}

// OpenRun opens a run folder written by attnscope capture or attnscope import.
func OpenRun(dir string) (Run, error) {
	r, err := store.Open(dir)
	if err != nil {
		return nil, err
	}
	return &storeRun{r: r}, nil
}

func (s *storeRun) Dir() string { return s.r.Dir() }

func (s *storeRun) Samples(context.Context) ([]string, error) { return s.r.Samples() }

// Attention reads every layer of the sample (float32 on disk) as float64 [L,H,Q,K].
func (s *storeRun) Attention(_ context.Context, sample string) (*Tensor, error) {
	a, err := s.r.Attention(sample)
	if err != nil {
		return nil, err
	}
	t := &Tensor{Shape: a.Shape(), Data: make([]float64, len(a.Data))}
	for i, v := range a.Data {
		t.Data[i] = float64(v)
	}
	return t, nil
}

// Meta returns the sample's prompt text, tokens, offsets, prompt length and language.
func (s *storeRun) Meta(_ context.Context, sample string) (*SampleMeta, error) {
	sm, err := s.r.Sample(sample)
	if err != nil {
		return nil, err
	}
	text := sm.PromptText
	if text == "" {
		text = sm.Text
	}
	return &SampleMeta{Text: text, Tokens: sm.Tokens, Offsets: sm.Offsets, PromptLen: sm.PromptLen, Language: sm.Language}, nil
}
