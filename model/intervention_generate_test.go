package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/refdata"
)

var generateModels = []string{"tiny-gpt2", "tiny-llama"}

var genPrompt = []int{5, 17, 300, 42, 7, 1200}

func ivGenerate(t *testing.T, m Model, iv *Intervention) (*Generation, *memRecorder) {
	t.Helper()
	rec := newMemRecorder()
	g, err := m.Generate(context.Background(), genPrompt, GenerateOptions{MaxNewTokens: 7, EOS: []int{}, Intervention: iv}, rec)
	if err != nil {
		t.Fatal(err)
	}
	return g, rec
}

func sameGeneration(t *testing.T, what string, a, b *Generation, ra, rb *memRecorder) {
	t.Helper()
	if !slices.Equal(a.IDs, b.IDs) {
		t.Fatalf("%s: ids %v, want %v", what, a.IDs, b.IDs)
	}
	for i := range a.NewTokenProbs {
		if math.Float64bits(a.NewTokenProbs[i]) != math.Float64bits(b.NewTokenProbs[i]) {
			t.Fatalf("%s: probability of new token %d is %g, want %g (bitwise)", what, i, a.NewTokenProbs[i], b.NewTokenProbs[i])
		}
	}
	if ra != nil {
		sameRecordBits(t, what, ra, rb, nil, nil)
	}
}

// TestGenerateInterventionNoOp: an intervention that changes nothing (scale 1
// and add 0 on every hook of every layer, or no edits) gives the generation of
// no intervention: the same ids, bit-identical token probabilities and
// attention of every step.
func TestGenerateInterventionNoOp(t *testing.T) {
	for _, name := range generateModels {
		t.Run(name, func(t *testing.T) {
			m, err := Load(refdata.Path(t, "models", name), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			g0, r0 := ivGenerate(t, m, nil)
			var unit Intervention
			for _, h := range Hooks {
				unit.Edits = append(unit.Edits, Edit{Hook: h, Op: OpScale, Value: 1}, Edit{Hook: h, Op: OpAdd, Value: 0})
			}
			g1, r1 := ivGenerate(t, m, &unit)
			sameGeneration(t, "scale 1, add 0", g1, g0, r1, r0)
			g2, r2 := ivGenerate(t, m, &Intervention{})
			sameGeneration(t, "no edits", g2, g0, r2, r0)
		})
	}
}

// TestGenerateZeroHeadEqualsRemovedProjection: generating with head h's output
// (hook_z) zeroed in every step gives the generation (ids, bitwise token
// probabilities and attention) of a checkpoint whose output projection has head
// h's input rows (GPT-2 Conv1D) or columns (Linear) set to zero.
func TestGenerateZeroHeadEqualsRemovedProjection(t *testing.T) {
	proj := map[string]string{
		"tiny-gpt2":  "transformer.h.%d.attn.c_proj.weight",
		"tiny-llama": "model.layers.%d.self_attn.o_proj.weight",
	}
	const layer, head = 1, 2
	for _, name := range generateModels {
		t.Run(name, func(t *testing.T) {
			src := refdata.Path(t, "models", name)
			m, err := Load(src, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			hd := m.Config().HeadDim
			iv := &Intervention{Edits: []Edit{{Hook: "attn.hook_z", Layers: []int{layer}, Heads: []int{head}, Op: OpZero}}}
			got, gotRec := ivGenerate(t, m, iv)
			clean, _ := ivGenerate(t, m, nil)
			m.Close()
			target := fmt.Sprintf(proj[name], layer)
			dir := convert(t, src, checkpoint.F32, false, 1, func(n string, info *checkpoint.TensorInfo, data []float32) ([]float32, bool) {
				if n != target {
					return data, true
				}
				rows, cols := info.Shape[0], info.Shape[1]
				for r := range rows {
					for c := range cols {
						in := c // Linear [out, in]
						if name == "tiny-gpt2" {
							in = r // Conv1D [in, out]
						}
						if in/hd == head {
							data[r*cols+c] = 0
						}
					}
				}
				return data, true
			})
			m2, err := Load(dir, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m2.Close()
			want, wantRec := ivGenerate(t, m2, nil)
			if slices.Equal(clean.NewTokenProbs, want.NewTokenProbs) {
				t.Fatal("removing the head changed no token probability: the test would prove nothing")
			}
			sameGeneration(t, "zeroed head vs edited checkpoint", got, want, gotRec, wantRec)
		})
	}
}

// TestGenerateInterventionAbsolutePositions: edits naming prompt and generated
// positions (keys and values of position 2, a pattern cell and the residual
// stream of generated positions, a head's queries everywhere) apply in the
// decode steps at those absolute positions: each generated token is the argmax
// of a forward pass with the same intervention over the whole sequence, whose
// softmax gives the generated token's probability (within float32 rounding:
// the cache and the full pass add in another order).
func TestGenerateInterventionAbsolutePositions(t *testing.T) {
	for _, name := range generateModels {
		t.Run(name, func(t *testing.T) {
			m, err := Load(refdata.Path(t, "models", name), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			P := len(genPrompt)
			iv := &Intervention{Edits: []Edit{
				{Hook: "attn.hook_k", Layers: []int{0}, Positions: []int{2}, Op: OpScale, Value: 3},
				{Hook: "attn.hook_v", Positions: []int{2, P + 1}, Op: OpAdd, Value: 0.5},
				{Hook: "attn.hook_pattern", Layers: []int{1}, Cells: [][2]int{{P + 2, 1}, {P + 3, P + 1}}, Op: OpAdd, Value: 1, Renormalize: true},
				{Hook: "hook_resid_post", Layers: []int{0}, Positions: []int{P + 1, P + 4}, Op: OpScale, Value: -2},
				{Hook: "attn.hook_q", Heads: []int{1}, Op: OpScale, Value: 4},
			}}
			g, _ := ivGenerate(t, m, iv)
			clean, _ := ivGenerate(t, m, nil)
			if slices.Equal(g.NewTokenProbs, clean.NewTokenProbs) {
				t.Fatal("the intervention changed no token probability: the test would prove nothing")
			}
			out, err := m.Forward(context.Background(), Input{IDs: g.IDs[:len(g.IDs)-1]}, nil, ForwardOptions{Logits: LogitsAll, Intervention: iv})
			if err != nil {
				t.Fatal(err)
			}
			v := out.LogitsShape[1]
			for s := range len(g.IDs) - P {
				row := out.Logits[(P-1+s)*v : (P+s)*v]
				p := softmax64(row, 1)
				best := 0
				for j := range row {
					if row[j] > row[best] {
						best = j
					}
				}
				if tok := g.IDs[P+s]; best != tok || math.Abs(p[tok]-g.NewTokenProbs[s]) > 1e-5 {
					t.Errorf("step %d: generated %d (p %g), the full pass's argmax is %d (p %g)", s, tok, g.NewTokenProbs[s], best, p[tok])
				}
			}
		})
	}
}

// TestGenerateInterventionErrors: an intervention naming a layer the model
// lacks is refused before generating, with the edit and field.
func TestGenerateInterventionErrors(t *testing.T) {
	m, err := Load(refdata.Path(t, "models", "tiny-gpt2"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	iv := &Intervention{Edits: []Edit{{Hook: "attn.hook_z", Layers: []int{99}, Op: OpZero}}}
	_, err = m.Generate(context.Background(), genPrompt, GenerateOptions{MaxNewTokens: 2, Intervention: iv}, nil)
	var ee *EditError
	if !errors.As(err, &ee) || ee.Index != 0 || ee.Field != "layers" {
		t.Fatalf("error %v, want an EditError on edit 0, field layers", err)
	}
}
