package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/refdata"
)

var interventionModels = []string{"tiny-gpt2", "tiny-llama", "tiny-bert"}

func ivForward(t *testing.T, m Model, ids []int, iv *Intervention) (*memRecorder, []float32) {
	t.Helper()
	rec := newMemRecorder()
	out, err := m.Forward(context.Background(), Input{IDs: ids}, rec, ForwardOptions{Hidden: true, QKV: true, Logits: LogitsAll, Intervention: iv})
	if err != nil {
		t.Fatal(err)
	}
	return rec, out.Logits
}

// sameBits fails unless a and b hold the same float32 bit patterns.
func sameBits(t *testing.T, what string, a, b []float32) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d vs %d values", what, len(a), len(b))
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("%s: value %d is %g, want %g (bitwise)", what, i, a[i], b[i])
		}
	}
}

func sameRecordBits(t *testing.T, what string, a, b *memRecorder, la, lb []float32) {
	t.Helper()
	if len(a.order) != len(b.order) || len(a.order) == 0 {
		t.Fatalf("%s: %d vs %d tensors recorded", what, len(a.order), len(b.order))
	}
	for _, n := range a.order {
		sameBits(t, what+" "+n, a.t[n], b.t[n])
	}
	sameBits(t, what+" logits", la, lb)
}

var testIDs = []int{5, 17, 300, 42, 7, 1200, 99, 8, 64}

// TestInterventionNoOp: edits that change nothing (scale by 1 and add 0 on every
// hook of every layer, and edits selecting only positions past the input) leave
// every recorded tensor and the logits bit-identical to a pass without them.
func TestInterventionNoOp(t *testing.T) {
	for _, name := range interventionModels {
		t.Run(name, func(t *testing.T) {
			m, err := Load(refdata.Path(t, "models", name), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			rec0, l0 := ivForward(t, m, testIDs, nil)
			withTaps := newMemRecorder()
			out, err := m.Forward(context.Background(), Input{IDs: testIDs}, withTaps, ForwardOptions{Hidden: true, QKV: true, Internals: true, Logits: LogitsAll})
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range rec0.order {
				sameBits(t, "with internals recorded: "+n, withTaps.t[n], rec0.t[n])
			}
			sameBits(t, "with internals recorded: logits", out.Logits, l0)
			checkZ(t, m, withTaps)
			var unit, outside Intervention
			for _, h := range Hooks {
				unit.Edits = append(unit.Edits, Edit{Hook: h, Op: OpScale, Value: 1}, Edit{Hook: h, Op: OpAdd, Value: 0})
				outside.Edits = append(outside.Edits, Edit{Hook: h, Op: OpZero, Positions: []int{len(testIDs) + 1}})
			}
			rec1, l1 := ivForward(t, m, testIDs, &unit)
			sameRecordBits(t, "scale 1, add 0", rec1, rec0, l1, l0)
			rec2, l2 := ivForward(t, m, testIDs, &outside)
			sameRecordBits(t, "positions past the input", rec2, rec0, l2, l0)
			rec3, l3 := ivForward(t, m, testIDs, &Intervention{})
			sameRecordBits(t, "no edits", rec3, rec0, l3, l0)
		})
	}
}

// TestZeroHeadEqualsRemovedProjection: zeroing head h's output (hook_z) gives the
// logits (bitwise) of a checkpoint whose output projection has head h's input rows
// (GPT-2 Conv1D [in, out]) or columns (Linear [out, in]) set to zero.
func TestZeroHeadEqualsRemovedProjection(t *testing.T) {
	proj := map[string]string{
		"tiny-gpt2":  "transformer.h.%d.attn.c_proj.weight",
		"tiny-llama": "model.layers.%d.self_attn.o_proj.weight",
		"tiny-bert":  "bert.encoder.layer.%d.attention.output.dense.weight",
	}
	const layer, head = 1, 2
	for _, name := range interventionModels {
		t.Run(name, func(t *testing.T) {
			src := refdata.Path(t, "models", name)
			m, err := Load(src, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			hd := m.Config().HeadDim
			iv := &Intervention{Edits: []Edit{{Hook: "attn.hook_z", Layers: []int{layer}, Heads: []int{head}, Op: OpZero}}}
			_, got := ivForward(t, m, testIDs, iv)
			_, clean := ivForward(t, m, testIDs, nil)
			m.Close()
			target := fmt.Sprintf(proj[name], layer)
			found := false
			dir := convert(t, src, checkpoint.F32, false, 1, func(n string, info *checkpoint.TensorInfo, data []float32) ([]float32, bool) {
				if n != target {
					return data, true
				}
				found = true
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
			if !found {
				t.Fatalf("no tensor %s in %s", target, src)
			}
			_, want := forwardAll(t, dir, testIDs)
			if maxAbsDiff(clean, want) == 0 {
				t.Fatal("removing the head changed nothing: the test would prove nothing")
			}
			if d := maxAbsDiff(got, want); d != 0 {
				t.Fatalf("zeroed head differs from the edited checkpoint by %g", d)
			}
		})
	}
}

// TestPatchEveryActivation: patching the clean run's activations into a
// corrupted input of the same length reproduces the clean logits exactly,
// whether every recorded hook of every layer or only hook_resid_post is patched.
func TestPatchEveryActivation(t *testing.T) {
	corrupted := []int{5, 17, 301, 42, 7, 1200, 98, 8, 64}
	for _, name := range interventionModels {
		t.Run(name, func(t *testing.T) {
			m, err := Load(refdata.Path(t, "models", name), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			clean := Activations{}
			out, err := m.Forward(context.Background(), Input{IDs: testIDs}, clean, ForwardOptions{Hidden: true, QKV: true, Internals: true, Logits: LogitsAll})
			if err != nil {
				t.Fatal(err)
			}
			_, corr := ivForward(t, m, corrupted, nil)
			if maxAbsDiff(corr, out.Logits) == 0 {
				t.Fatal("the corrupted input gives the clean logits: the test would prove nothing")
			}
			var all Intervention
			for _, h := range Hooks {
				all.Edits = append(all.Edits, Edit{Hook: h, Op: OpPatch, Source: clean})
			}
			rec, got := ivForward(t, m, corrupted, &all)
			sameBits(t, "every hook patched: logits", got, out.Logits)
			sameBits(t, "every hook patched: pattern", rec.t["blocks.0.attn.pattern"], clean["blocks.0.attn.pattern"].Data)
			post := &Intervention{Edits: []Edit{{Hook: "hook_resid_post", Op: OpPatch, Source: clean}}}
			_, got = ivForward(t, m, corrupted, post)
			sameBits(t, "hook_resid_post patched: logits", got, out.Logits)
		})
	}
}

// TestReinforcePattern checks the AttentionSpan reinforcement edit against its
// definition: +1 on the chosen cells whose probability is ≥ the threshold, no
// renormalisation; with Renormalize the edited rows sum to 1.
func TestReinforcePattern(t *testing.T) {
	m, err := Load(refdata.Path(t, "models", "tiny-gpt2"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ids := testIDs[:4] // layer 0's pattern does not depend on the edit of layer 0
	rec0, _ := ivForward(t, m, ids, nil)
	thr := 0.3
	cells := [][2]int{{1, 0}, {1, 1}, {2, 0}, {3, 2}, {3, 3}}
	iv := &Intervention{Edits: []Edit{{Hook: "attn.hook_pattern", Layers: []int{0}, Heads: []int{1}, Cells: cells, Op: OpAdd, Value: 1, Threshold: &thr}}}
	rec, _ := ivForward(t, m, ids, iv)
	p0, p := rec0.t["blocks.0.attn.pattern"], rec.t["blocks.0.attn.pattern"]
	n := len(ids)
	changed := 0
	for h := range 4 {
		for i := range n {
			for j := range n {
				k := (h*n+i)*n + j
				want := p0[k]
				if h == 1 && containsCell(cells, i, j) && float64(p0[k]) >= thr {
					want = p0[k] + 1
					changed++
				}
				if p[k] != want {
					t.Fatalf("head %d cell (%d,%d): %g, want %g", h, i, j, p[k], want)
				}
			}
		}
	}
	if changed == 0 || changed == len(cells) {
		t.Fatalf("%d of %d cells pass the threshold: choose one that separates them", changed, len(cells))
	}
	iv.Edits[0].Renormalize = true
	rec, _ = ivForward(t, m, ids, iv)
	p = rec.t["blocks.0.attn.pattern"]
	for i := 1; i < n; i++ {
		var s float64
		for j := range n {
			s += float64(p[(1*n+i)*n+j])
		}
		if math.Abs(s-1) > 1e-6 {
			t.Fatalf("renormalised row %d sums to %g", i, s)
		}
	}
}

func containsCell(cells [][2]int, i, j int) bool {
	for _, c := range cells {
		if c == [2]int{i, j} {
			return true
		}
	}
	return false
}

// TestInterventionErrors: an edit naming what the model lacks is refused with
// the edit's index and field.
func TestInterventionErrors(t *testing.T) {
	m, err := Load(refdata.Path(t, "models", "tiny-llama"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	short := Activations{}
	if _, err := m.Forward(context.Background(), Input{IDs: testIDs[:5]}, short, ForwardOptions{Hidden: true, QKV: true}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		e     Edit
		field string
		msg   string
	}{
		{Edit{Hook: "attn.hook_nope", Op: OpZero}, "hook", `"attn.hook_nope" is not a hook point`},
		{Edit{Hook: "attn.hook_z", Layers: []int{3}, Op: OpZero}, "layers", "layer 3 does not exist (the model has 3 layers, 0 to 2)"},
		{Edit{Hook: "attn.hook_z", Heads: []int{4}, Op: OpZero}, "heads", "head 4 does not exist (attn.hook_z has 4 heads, 0 to 3)"},
		{Edit{Hook: "attn.hook_k", Heads: []int{2}, Op: OpZero}, "heads", "head 2 does not exist (attn.hook_k has 2 heads, 0 to 1)"},
		{Edit{Hook: "hook_resid_post", Heads: []int{0}, Op: OpZero}, "heads", "hook_resid_post has no heads"},
		{Edit{Hook: "attn.hook_z", Op: "double"}, "op", `"double" is not an operation`},
		{Edit{Hook: "attn.hook_q", Renormalize: true, Op: OpZero}, "renormalize", "only attn.hook_pattern rows"},
		{Edit{Hook: "attn.hook_z", Op: OpPatch, Source: short}, "source", "the source run has no blocks.0.attn.hook_z"},
		{Edit{Hook: "attn.hook_pattern", Op: OpPatch, Source: short}, "source", "the source's blocks.0.attn.pattern has shape [4 5 5], this run's has [4 9 9]"},
	} {
		iv := &Intervention{Edits: []Edit{{Hook: "attn.hook_z", Op: OpZero}, c.e}}
		_, err := m.Forward(context.Background(), Input{IDs: testIDs}, nil, ForwardOptions{Intervention: iv})
		var ee *EditError
		if !errors.As(err, &ee) || ee.Index != 1 || ee.Field != c.field || !strings.Contains(ee.Msg, c.msg) {
			t.Errorf("%+v: error %v, want edit 1, field %s: %s", c.e, err, c.field, c.msg)
		}
	}
}

// checkZ compares the recorded hook_z of layer 0 with pattern·v computed here
// from the recorded pattern and values (float64).
func checkZ(t *testing.T, m Model, rec *memRecorder) {
	t.Helper()
	cfg := m.Config()
	n, hd, g := len(testIDs), cfg.HeadDim, cfg.Heads/cfg.KVHeads
	p, v, z := rec.t["blocks.0.attn.pattern"], rec.t["blocks.0.attn.hook_v"], rec.t["blocks.0.attn.hook_z"]
	if len(z) != cfg.Heads*n*hd || len(rec.t["blocks.0.attn.hook_attn_scores"]) != cfg.Heads*n*n {
		t.Fatalf("hook_z has %d values, hook_attn_scores %d", len(z), len(rec.t["blocks.0.attn.hook_attn_scores"]))
	}
	for h := range cfg.Heads {
		for i := range n {
			for d := range hd {
				var s float64
				for j := range n {
					s += float64(p[(h*n+i)*n+j]) * float64(v[((h/g)*n+j)*hd+d])
				}
				if got := float64(z[(h*n+i)*hd+d]); math.Abs(got-s) > 1e-5*(1+math.Abs(s)) {
					t.Fatalf("hook_z head %d row %d dim %d: %g, pattern·v %g", h, i, d, got, s)
				}
			}
		}
	}
}

// TestEditSelection: positions and key positions select exactly their cells
// (the pattern of layer 0, head 3) and token rows (the last layer's residual
// stream, scaled by 2, against a run with the pattern edit alone); nothing else
// changes.
func TestEditSelection(t *testing.T) {
	m, err := Load(refdata.Path(t, "models", "tiny-gpt2"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	last := m.Config().Layers - 1
	rec0, _ := ivForward(t, m, testIDs, nil)
	iv := &Intervention{Edits: []Edit{
		{Hook: "attn.hook_pattern", Layers: []int{0}, Heads: []int{3}, Positions: []int{2, 5}, KeyPositions: []int{0, 1}, Op: OpSet, Value: 7},
		{Hook: "hook_resid_post", Layers: []int{last}, Positions: []int{1}, Op: OpScale, Value: 2},
	}}
	rec, _ := ivForward(t, m, testIDs, iv)
	n, H, W := len(testIDs), m.Config().Heads, m.Config().Hidden
	p0, p := rec0.t["blocks.0.attn.pattern"], rec.t["blocks.0.attn.pattern"]
	for h := range H {
		for i := range n {
			for j := range n {
				k := (h*n+i)*n + j
				want := p0[k]
				if h == 3 && (i == 2 || i == 5) && j <= 1 {
					want = 7
				}
				if p[k] != want {
					t.Fatalf("pattern head %d (%d,%d): %g, want %g", h, i, j, p[k], want)
				}
			}
		}
	}
	// The pattern edit changes later layers: compare with it alone.
	recP, _ := ivForward(t, m, testIDs, &Intervention{Edits: iv.Edits[:1]})
	name := fmt.Sprintf("blocks.%d.hook_resid_post", last)
	r0, r := recP.t[name], rec.t[name]
	for i := range n {
		for d := range W {
			want := r0[i*W+d]
			if i == 1 {
				want *= 2
			}
			if r[i*W+d] != want {
				t.Fatalf("resid_post row %d dim %d: %g, want %g", i, d, r[i*W+d], want)
			}
		}
	}
}
