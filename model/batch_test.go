package model

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
)

// TestForwardBatchMatchesSingle runs right-padded inputs of different lengths
// as one batch and each input alone: every recorded tensor's real rows (the
// pattern's real keys, zeros on padded keys) and the logits agree within
// 1e-5 for every family, and the batch compiles one graph per part.
func TestForwardBatchMatchesSingle(t *testing.T) {
	for _, rm := range referenceModels {
		if !strings.HasPrefix(rm.name, "tiny-") {
			continue
		}
		t.Run(rm.name, func(t *testing.T) { checkBatchMatchesSingle(t, refdata.Path(t, "models", rm.name)) })
	}
	// Families with sliding windows shorter than the inputs, soft-capping, RoBERTa's positions.
	for _, c := range famCases {
		switch c.name {
		case "mistral-window", "gemma2-window", "gpt-neo-local", "phi3-window", "xlm-roberta-pad", "codegen":
			t.Run(c.name, func(t *testing.T) { checkBatchMatchesSingle(t, writeRandomModel(t, c.config, c.set, 3)) })
		}
	}
}

func checkBatchMatchesSingle(t *testing.T, dir string) {
	t.Helper()
	m, err := Load(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	lengths := []int{9, 6, 2}
	N := lengths[0]
	var ins []Input
	var recs []Recorder
	var batch []*memRecorder
	for b, n := range lengths {
		ids := make([]int, N)
		mask := make([]int, N)
		for i := range n {
			ids[i] = 3 + (b*31+i*17)%90
			mask[i] = 1
		}
		ins = append(ins, Input{IDs: ids, AttentionMask: mask})
		mr := newMemRecorder()
		batch = append(batch, mr)
		recs = append(recs, mr)
	}
	opts := ForwardOptions{Hidden: true, QKV: true, Logits: LogitsAll}
	outs, err := m.ForwardBatch(context.Background(), ins, recs, opts)
	if err != nil {
		t.Fatal(err)
	}
	V := m.Config().VocabSize
	for b, n := range lengths {
		single := newMemRecorder()
		out, err := m.Forward(context.Background(), Input{IDs: ins[b].IDs[:n]}, single, opts)
		if err != nil {
			t.Fatal(err)
		}
		got := batch[b]
		if len(got.order) != len(single.order) {
			t.Fatalf("batch input %d recorded %d tensors, alone %d", b, len(got.order), len(single.order))
		}
		for _, name := range single.order {
			want, shape := single.t[name], single.shapes[name]
			g, gs := got.t[name], got.shapes[name]
			// [..., n, cols] alone, [..., N, cols'] padded; the pattern's key axis is N too.
			rows, cols := shape[len(shape)-2], shape[len(shape)-1]
			gcols := gs[len(gs)-1]
			lead := len(want) / (rows * cols)
			worst := 0.0
			for h := range lead {
				for i := range rows {
					for j := range gcols {
						v := float64(g[(h*gs[len(gs)-2]+i)*gcols+j])
						w := 0.0
						if j < cols {
							w = float64(want[(h*rows+i)*cols+j])
						}
						worst = math.Max(worst, math.Abs(v-w))
					}
				}
			}
			if worst > 1e-5 {
				t.Errorf("batch input %d (%d tokens): %s differs from the input alone by %g", b, n, name, worst)
			}
		}
		if d := maxAbsDiff(outs[b].Logits[:n*V], out.Logits); d > 1e-5*scaleOf(out.Logits) {
			t.Errorf("batch input %d: logits differ from the input alone by %g", b, d)
		}
	}
}

func scaleOf(v []float32) float64 {
	s := 1.0
	for _, x := range v {
		s = math.Max(s, math.Abs(float64(x)))
	}
	return s
}
