package derive

import (
	"context"
	"fmt"

	"github.com/attnscope/attnscope/store"
)

// storeRun is a run folder written by attnscope capture or import (package store).
type storeRun struct {
	r *store.Run
}

// storeRun reads attention one layer at a time for per-layer and head-reduced passes.
var _ LayerReader = (*storeRun)(nil)

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

// Attention reads every layer of the sample (float32 on disk) as float64 [L,H,Q,K],
// one layer at a time, so that only the float64 tensor and one float32 layer are in
// memory at once.
func (s *storeRun) Attention(ctx context.Context, sample string) (*Tensor, error) {
	L, err := s.r.NumLayers(sample)
	if err != nil {
		return nil, err
	}
	if L == 0 {
		return nil, fmt.Errorf("run %s: sample %q has no attention layers", s.r.Dir(), sample)
	}
	var t *Tensor
	for l := range L {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		a, err := s.r.AttentionLayer(sample, l)
		if err != nil {
			return nil, err
		}
		if t == nil {
			t = &Tensor{Shape: []int{L, a.Heads, a.Q, a.K}, Data: make([]float64, 0, L*len(a.Data))}
		} else if a.Heads != t.Shape[1] || a.Q != t.Shape[2] || a.K != t.Shape[3] {
			return nil, fmt.Errorf("run %s: sample %q: attention layer %d has shape [%d %d %d], layer 0 %v",
				s.r.Dir(), sample, l, a.Heads, a.Q, a.K, t.Shape[1:])
		}
		for _, v := range a.Data {
			t.Data = append(t.Data, float64(v))
		}
	}
	return t, nil
}

// NumLayers returns the number of attention layers of the sample.
func (s *storeRun) NumLayers(_ context.Context, sample string) (int, error) {
	return s.r.NumLayers(sample)
}

// AttentionLayer reads only layer l of the sample (float32 on disk) as float64 [1,H,Q,K].
func (s *storeRun) AttentionLayer(_ context.Context, sample string, l int) (*Tensor, error) {
	a, err := s.r.AttentionLayer(sample, l)
	if err != nil {
		return nil, err
	}
	t := &Tensor{Shape: []int{1, a.Heads, a.Q, a.K}, Data: make([]float64, len(a.Data))}
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
