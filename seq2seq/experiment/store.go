package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/attnscope/attnscope/internal/buildinfo"
	s2s "github.com/attnscope/attnscope/model/seq2seq"
	"github.com/attnscope/attnscope/report"
	"github.com/attnscope/attnscope/seq2seq/corpus"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/viz"
)

// AttentionImplementation is what run.json says about the stored attention.
const AttentionImplementation = "Bahdanau additive: a_t = softmax_j(v^T tanh(W_s s_{t-1} + W_h h_j)) over every source position"

// AlignmentLayout explains how an alignment is stored in a run sample, recorded in
// each sample's extra fields.
const AlignmentLayout = "seq2seq alignment: tokens are the S source positions (SOS, EOS and PAD included) then the generated tokens; " +
	"attention row S-1+t holds decoding step t's weights over columns 0..S-1 (the step fed token S-1+t and produced token S+t, as a decoder's query p-1 predicts token p); other entries are 0"

// AlignmentSample lays out one alignment as a run sample: N = S + T tokens and an
// N×N single-head attention whose row S−1+t, columns 0..S−1, is decoding step t's
// attention (rows of source positions and the last row are zero). report's
// GenerationAlignment then reads back exactly the [T, S] alignment with the S
// source tokens as column labels and the T generated tokens as row labels, so the
// original notebook's one-column label shift (source labels decoded without SOS
// over columns that include it) does not occur.
// gen lists the generated tokens (id, string, probability).
func AlignmentSample(id string, src []string, gen []store.GeneratedToken, att [][]float32) (*store.Sample, []float32, error) {
	S, T := len(src), len(gen)
	if T == 0 || len(att) != T {
		return nil, nil, fmt.Errorf("sample %s: %d attention rows for %d generated tokens", id, len(att), T)
	}
	N := S + T
	data := make([]float32, N*N)
	for t, row := range att {
		if len(row) != S {
			return nil, nil, fmt.Errorf("sample %s: attention row %d has %d columns for %d source positions", id, t, len(row), S)
		}
		copy(data[(S-1+t)*N:], row)
	}
	toks := append([]string{}, src...)
	var genText []string
	for _, g := range gen {
		toks = append(toks, g.Token)
		genText = append(genText, g.Token)
	}
	s := &store.Sample{ID: id, PromptLen: S, Tokens: toks, Generated: gen,
		PromptText: strings.Join(src, " "), Text: strings.Join(src, " ") + "\n" + strings.Join(genText, " "),
		Extra: map[string]any{"layout": AlignmentLayout}}
	return s, data, nil
}

func storeAlignments(ctx context.Context, o *Options, mr *ModelResult, test []s2s.Example, srcV, trgV *corpus.Vocab) (*AttentionStats, error) {
	ck, err := s2s.Load(mr.Checkpoint)
	if err != nil {
		return nil, err
	}
	cfgJSON, _ := json.Marshal(ck.Config)
	run, err := store.Create(filepath.Join(o.Out, "run"), store.Meta{
		Version: buildinfo.Version(), Command: o.Command, Kind: "seq2seq", DType: "float32", ComputeDType: "float32",
		Model:                   &store.ModelInfo{Dir: mr.Checkpoint, ModelType: "seq2seq", Config: cfgJSON},
		AttentionImplementation: AttentionImplementation, Backend: o.Backend.Name(),
		Generation: &store.GenerationSettings{MaxNewTokens: o.MaxDecode, EOS: []int{s2s.EOSID}},
		StartTime:  time.Now().UTC(),
	})
	if err != nil {
		return nil, err
	}
	var ms []viz.Matrix
	n := min(o.AlignSamples, len(test))
	for i := range n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h := mr.hyps[i]
		if len(h.IDs) == 0 {
			continue
		}
		row := s2s.PadBatch([]s2s.Example{test[i]}, 1, ck.Config).Src[0]
		src := make([]string, len(row))
		for j, id := range row {
			src[j] = srcV.Token(id)
		}
		gen := make([]store.GeneratedToken, len(h.IDs))
		for j, id := range h.IDs {
			gen[j] = store.GeneratedToken{ID: id, Token: trgV.Token(id), Prob: math.Exp(h.StepLogProbs[j])}
		}
		id := fmt.Sprintf("test-%04d", i)
		s, data, err := AlignmentSample(id, src, gen, h.Attention)
		if err != nil {
			return nil, err
		}
		s.IDs = append(append([]int{}, row...), h.IDs...)
		s.StopReason = "max_new_tokens"
		if h.IDs[len(h.IDs)-1] == s2s.EOSID {
			s.StopReason = "eos"
		}
		N := len(s.Tokens)
		w, err := run.NewSample(id, store.SampleOptions{Layers: 1})
		if err != nil {
			return nil, err
		}
		if err := w.Record(store.AttentionName(0), []int{1, N, N}, data); err != nil {
			return nil, err
		}
		if err := w.Commit(s); err != nil {
			return nil, err
		}
		m := viz.Matrix{Rows: len(h.Attention), Cols: len(src)}
		for _, r := range h.Attention {
			for _, v := range r {
				m.Data = append(m.Data, float64(v))
			}
		}
		ms = append(ms, m)
	}
	end := time.Now().UTC()
	run.Meta.EndTime = &end
	if err := run.WriteMeta(); err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("experiment: no test example produced a token to align")
	}
	e, mx, err := report.AlignmentRowStats(ms)
	if err != nil {
		return nil, err
	}
	st := &AttentionStats{Samples: len(ms), Steps: len(e)}
	st.EntropyMean, st.EntropyStd = meanStd(e)
	st.MaxMean, st.MaxStd = meanStd(mx)
	return st, nil
}

func meanStd(v []float64) (mean, std float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	for _, x := range v {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(v)))
}
