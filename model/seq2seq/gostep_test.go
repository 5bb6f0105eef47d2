package seq2seq

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestGoStepMatchesGraph runs the decoder step of every model kind both ways, the
// compiled graph (Config.Step, what training uses) and goStep (what decoding uses),
// for several steps from the same encoder output, feeding each step's argmax: log p,
// attention and the new states agree to 1e-6 (relative above 1), and the tokens are
// the same.
func TestGoStepMatchesGraph(t *testing.T) {
	backend := testBackend(t)
	rng := rand.New(rand.NewPCG(3, 3))
	type tc struct {
		name string
		cfg  Config
	}
	masked := smallCopyConfig(KindAttention)
	masked.MaskPadding = true
	cases := []tc{
		{"attention", smallCopyConfig(KindAttention)},
		{"attention masked", masked},
		{"lstm", smallCopyConfig(KindLSTM)},
		{"rnn", smallCopyConfig(KindRNN)},
		{"attention bench size", benchCfg},
	}
	for _, c := range cases {
		dec, err := NewDecoder(backend, c.cfg, c.cfg.InitParams(7))
		if err != nil {
			t.Fatal(err)
		}
		src := benchBatchData(c.cfg, rng).Src[:3]
		src[1][len(src[1])-2], src[1][len(src[1])-1] = EOSID, 0 // a PAD position
		eg, err := dec.encodeGraph(src)
		if err != nil {
			t.Fatal(err)
		}
		ego := *eg
		ego.st.h, ego.st.c = slices.Clone(eg.st.h), slices.Clone(eg.st.c)
		y := []int{SOSID, SOSID, SOSID}
		worst := 0.0
		for step := range 6 {
			lg, ag, err := dec.stepGraph(eg, y)
			if err != nil {
				t.Fatal(err)
			}
			lo, ao, err := dec.stepOnce(&ego, y)
			if err != nil {
				t.Fatal(err)
			}
			cmp := func(what string, g, o []float32) {
				t.Helper()
				if len(g) != len(o) {
					t.Fatalf("%s step %d %s: %d values, graph %d", c.name, step, what, len(o), len(g))
				}
				for i := range g {
					d := math.Abs(float64(g[i] - o[i]))
					worst = max(worst, d)
					if d > 1e-6*max(1, math.Abs(float64(g[i]))) {
						t.Fatalf("%s step %d %s[%d]: Go %.9g, graph %.9g", c.name, step, what, i, o[i], g[i])
					}
				}
			}
			for b := range y {
				cmp("log p", lg[b], lo[b])
				if c.cfg.Attention() {
					cmp("attention", ag[b], ao[b])
				}
				y[b] = argmax(lg[b])
				if ob := argmax(lo[b]); ob != y[b] {
					t.Fatalf("%s step %d row %d: Go picks %d, graph %d", c.name, step, b, ob, y[b])
				}
			}
			cmp("h", eg.st.h, ego.st.h)
			if c.cfg.Kind != KindRNN { // an RNN has no cell state
				cmp("c", eg.st.c, ego.st.c)
			}
		}
		t.Logf("%s: largest difference %.3g", c.name, worst)
	}
}

// TestGoEncodeMatchesGraph compares goStep's encoder with the graph encoder
// (Config.Encode) on every model kind: outputs, keys and initial states to 1e-6.
func TestGoEncodeMatchesGraph(t *testing.T) {
	backend := testBackend(t)
	rng := rand.New(rand.NewPCG(4, 4))
	masked := smallCopyConfig(KindAttention)
	masked.MaskPadding = true
	for _, cfg := range []Config{smallCopyConfig(KindAttention), masked, smallCopyConfig(KindLSTM), smallCopyConfig(KindRNN), benchCfg} {
		dec, err := NewDecoder(backend, cfg, cfg.InitParams(8))
		if err != nil {
			t.Fatal(err)
		}
		src := benchBatchData(cfg, rng).Src[:3]
		src[2][len(src[2])-2], src[2][len(src[2])-1] = EOSID, 0
		src[0][3] = cfg.SrcVocab + 5 // out of the vocabulary: UNK
		eg, err := dec.encodeGraph(src)
		if err != nil {
			t.Fatal(err)
		}
		eo, err := dec.encode(src)
		if err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for _, f := range []struct {
			name string
			g, o []float32
		}{{"out", eg.st.out, eo.st.out}, {"keys", eg.st.keys, eo.st.keys}, {"h", eg.st.h, eo.st.h}, {"c", eg.st.c, eo.st.c}} {
			if len(f.g) != len(f.o) {
				t.Fatalf("%s %s: %d values, graph %d", cfg.Kind, f.name, len(f.o), len(f.g))
			}
			for i := range f.g {
				d := math.Abs(float64(f.g[i] - f.o[i]))
				worst = max(worst, d)
				if d > 1e-6*max(1, math.Abs(float64(f.g[i]))) {
					t.Fatalf("%s %s[%d]: Go %.9g, graph %.9g", cfg.Kind, f.name, i, f.o[i], f.g[i])
				}
			}
		}
		if !slices.Equal(eg.st.mask, eo.st.mask) {
			t.Fatalf("%s: masks differ", cfg.Kind)
		}
		t.Logf("%s (%d hidden): largest difference %.3g", cfg.Kind, cfg.Hidden, worst)
	}
}

// TestGreedyMatchesGraphDecoding decodes with the Go encoder and step and with the
// graph encoder and step (the decoding before goStep) and compares the token ids and
// log-probabilities.
func TestGreedyMatchesGraphDecoding(t *testing.T) {
	backend := testBackend(t)
	cfg := benchCfg
	dec, err := NewDecoder(backend, cfg, cfg.InitParams(5))
	if err != nil {
		t.Fatal(err)
	}
	src := benchBatchData(cfg, rand.New(rand.NewPCG(9, 9))).Src[:4]
	hyps, err := dec.Greedy(context.Background(), src, cfg.MaxTrgLen+1)
	if err != nil {
		t.Fatal(err)
	}
	e, err := dec.encodeGraph(src)
	if err != nil {
		t.Fatal(err)
	}
	y := slices.Repeat([]int{SOSID}, len(src))
	for step := range cfg.MaxTrgLen + 1 {
		logp, _, err := dec.stepGraph(e, y)
		if err != nil {
			t.Fatal(err)
		}
		for b := range y {
			if step >= len(hyps[b].IDs) {
				continue
			}
			y[b] = argmax(logp[b])
			if y[b] != hyps[b].IDs[step] || math.Abs(float64(logp[b][y[b]])-hyps[b].StepLogProbs[step]) > 1e-5 {
				t.Fatalf("row %d step %d: graph decoding %d (log p %g), Greedy %d (%g)", b, step, y[b], logp[b][y[b]], hyps[b].IDs[step], hyps[b].StepLogProbs[step])
			}
		}
	}
}
