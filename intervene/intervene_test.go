package intervene

import (
	"context"
	"math"
	"testing"

	"github.com/attnscope/attnscope/evaluate"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/tasks"
	"github.com/attnscope/attnscope/tokenizer"
)

// TestCrossEntropy: −log softmax against hand values, stable for large logits.
func TestCrossEntropy(t *testing.T) {
	for _, c := range []struct {
		row  []float32
		t    int
		want float64
		ok   bool
	}{
		{[]float32{0, float32(math.Log(3))}, 0, math.Log(4), false},
		{[]float32{0, float32(math.Log(3))}, 1, math.Log(4.0 / 3), true},
		{[]float32{1000, 1000, 1000}, 2, math.Log(3), false}, // ties: the first maximum is the prediction
		{[]float32{1000, 1000, 1000}, 0, math.Log(3), true},
	} {
		got, ok := crossEntropy(c.row, c.t)
		if math.Abs(got-c.want) > 1e-6 || ok != c.ok {
			t.Errorf("%v target %d: %g %v, want %g %v", c.row, c.t, got, ok, c.want, c.ok)
		}
	}
}

// TestRandomCells: the control draws, per labelled row, as many causal unlabelled cells.
func TestRandomCells(t *testing.T) {
	s := &tasks.Sample{InputIDs: make([]int, 6), Labels: tasks.NewLabels(6)}
	s.Labels.Set(3, 1, 1)
	s.Labels.Set(3, 2, 1)
	s.Labels.Set(5, 0, 1)
	got := randomCells(s, labelled(s), 7)
	per := map[int]int{}
	for _, c := range got {
		per[c[0]]++
		if c[1] > c[0] || s.Labels.At(c[0], c[1]) == 1 {
			t.Errorf("cell %v is not causal or is labelled", c)
		}
	}
	if per[3] != 2 || per[5] != 1 || len(got) != 3 {
		t.Errorf("cells %v, want 2 in row 3 and 1 in row 5", got)
	}
}

func defaultModel(t *testing.T) (model.Model, tasks.Tokenizer) {
	t.Helper()
	dir := "../models/default"
	m, err := model.Load(dir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := m.Config()
	tt, err := tasks.NewHFTokenizer(tk, *cfg.BOSTokenID, cfg.EOSTokenIDs[0])
	if err != nil {
		t.Fatal(err)
	}
	return m, tt
}

// TestReinforcementDirection runs AttentionSpan's reinforcement on the bundled
// model trained on addition of 1–4 digit numbers, on longer numbers (5–10
// digits, out of distribution): adding 1 to the labelled cells of the best
// head raises token accuracy well above the clean model's, while adding 1 to as
// many random cells (the control) does much less on every head, and ablating
// heads only lowers in-distribution accuracy.
func TestReinforcementDirection(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 3 sweeps over 40 samples (-short)")
	}
	m, tok := defaultModel(t)
	defer m.Close()
	ood, err := Samples("LongAdditionGenerator", map[string]any{"length": "5,10", "num_of_nums": "2,2", "seed": 42}, tok, 40)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ig := tasks.DefaultIgnoreIndex
	clean, rein, err := PerHead(ctx, m, ood, ig, Setting{Variant: Reinforce, Threshold: 0.003, Value: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, ctrl, err := PerHead(ctx, m, ood, ig, Setting{Variant: Random, Value: 1, Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	best := rein[0]
	t.Logf("clean OOD: CE %.3f, accuracy %.3f; best head L%dH%d: CE %.3f, accuracy %.3f", clean.CrossEntropy, clean.TokenAccuracy, best.Layer, best.Head.Head, best.CrossEntropy, best.TokenAccuracy)
	if best.CEGain <= 0 || best.AccGain < 0.05 {
		t.Errorf("reinforcing the best head gains %.3f nats and %.3f accuracy, want a clear gain", best.CEGain, best.AccGain)
	}
	for _, c := range ctrl {
		if c.AccGain >= best.AccGain/2 {
			t.Errorf("random cells on L%dH%d gain %.3f accuracy, as much as the labelled cells (%.3f)", c.Layer, c.Head.Head, c.AccGain, best.AccGain)
		}
	}
	id, err := Samples("LongAdditionGenerator", map[string]any{"length": "1,4", "num_of_nums": "2,2", "seed": 42}, tok, 40)
	if err != nil {
		t.Fatal(err)
	}
	cleanID, abl, err := Ablation(ctx, m, id, ig, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cleanID.TokenAccuracy < 0.99 {
		t.Fatalf("in-distribution accuracy %.3f: the bundled model is not the trained one", cleanID.TokenAccuracy)
	}
	for _, a := range abl {
		if a.AccGain > 0 || a.CEGain > 0 {
			t.Errorf("ablating L%dH%d improves the in-distribution scores: %+v", a.Layer, a.Head.Head, a)
		}
	}
	if last := abl[len(abl)-1]; last.AccGain > -0.2 {
		t.Errorf("the most important head costs only %.3f accuracy when ablated", last.AccGain)
	}
}

// modelForwarder adapts a model.Model to evaluate.Forwarder (argmax predictions).
type modelForwarder struct{ m model.Model }

func (f modelForwarder) Forward(ctx context.Context, ids [][]int, _ bool) ([][]int, [][][][]float32, error) {
	ins := make([]model.Input, len(ids))
	for i, row := range ids {
		ins[i] = model.Input{IDs: row}
	}
	outs, err := f.m.ForwardBatch(ctx, ins, nil, model.ForwardOptions{Logits: model.LogitsAll})
	if err != nil {
		return nil, nil, err
	}
	preds := make([][]int, len(ids))
	for i, o := range outs {
		v := o.LogitsShape[1]
		for p := range o.LogitsShape[0] {
			best := 0
			for j := range v {
				if o.Logits[p*v+j] > o.Logits[p*v+best] {
					best = j
				}
			}
			preds[i] = append(preds[i], best)
		}
	}
	return preds, nil, nil
}

// TestTokenAccuracyMatchesEvaluate: Evaluate's token accuracy equals the
// piecewise accuracy of package evaluate (AttentionSpan's evaluation script)
// on the same samples, scored through right-padded batches.
func TestTokenAccuracyMatchesEvaluate(t *testing.T) {
	m, tok := defaultModel(t)
	defer m.Close()
	samples, err := Samples("LongAdditionGenerator", map[string]any{"length": "3,7", "num_of_nums": "2,2", "seed": 5}, tok, 24)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Evaluate(context.Background(), m, samples, nil, tasks.DefaultIgnoreIndex)
	if err != nil {
		t.Fatal(err)
	}
	res, err := evaluate.Dataset(context.Background(), modelForwarder{m}, "check", samples, evaluate.Options{BatchSize: 8, NoAttention: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	right, n := 0, 0
	for _, s := range res.Samples {
		for _, p := range s.Piecewise {
			right += p
			n++
		}
	}
	if n != got.Tokens || float64(right)/float64(n) != got.TokenAccuracy {
		t.Fatalf("token accuracy %g over %d tokens, evaluate's piecewise %d/%d", got.TokenAccuracy, got.Tokens, right, n)
	}
	if got.TokenAccuracy == 0 || got.TokenAccuracy == 1 {
		t.Fatalf("token accuracy %g: choose samples that separate right and wrong", got.TokenAccuracy)
	}
}
