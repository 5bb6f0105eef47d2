package model

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/refdata"
)

// memRecorder keeps copies of everything recorded.
type memRecorder struct {
	t      map[string][]float32
	shapes map[string][]int
	order  []string
}

func newMemRecorder() *memRecorder {
	return &memRecorder{t: map[string][]float32{}, shapes: map[string][]int{}}
}

func (m *memRecorder) Record(name string, shape []int, data []float32) error {
	m.t[name] = append([]float32(nil), data...)
	m.shapes[name] = append([]int(nil), shape...)
	m.order = append(m.order, name)
	return nil
}

var referenceModels = []struct {
	name    string
	trained bool
	decoder bool
}{
	{"tiny-gpt2", false, true},
	{"tiny-bert", false, false},
	{"tiny-llama", false, true},
	{"tiny-qwen2", false, true},
	{"tiny-gpt_neox", false, true},
	{"code-gpt2-mini", true, true},
	{"code-llama-mini", true, true},
	{"code-bert-mini", true, false},
}

// maxAbsDiff compares got with want[off:off+len(got)].
func maxAbsDiff(got, want []float32) float64 {
	var m float64
	for i := range got {
		m = math.Max(m, math.Abs(float64(got[i]-want[i])))
	}
	return m
}

func toInts(v []int64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

func loadRef(t *testing.T, dir string) *checkpoint.Safetensors {
	t.Helper()
	s, err := checkpoint.OpenSafetensors(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustF32(t *testing.T, s *checkpoint.Safetensors, name string) ([]float32, []int) {
	t.Helper()
	d, sh, err := s.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return d, sh
}

// checkForward compares one case's attentions, hidden states and logits.
func checkForward(t *testing.T, m Model, ref *checkpoint.Safetensors, c string, ids []int, tol float64) {
	t.Helper()
	cfg := m.Config()
	L, H, D := cfg.Layers, cfg.Heads, cfg.Hidden
	n := len(ids)
	logits := LogitsLast
	if ref.Names() != nil {
		if _, ok := ref.Info(c + ".logits"); ok {
			logits = LogitsAll
		}
	}
	rec := newMemRecorder()
	out, err := m.Forward(context.Background(), Input{IDs: ids}, rec, ForwardOptions{Hidden: true, QKV: true, Logits: logits})
	if err != nil {
		t.Fatal(err)
	}
	att, _ := mustF32(t, ref, c+".attentions")
	hs, _ := mustF32(t, ref, c+".hidden_states")
	var worstAtt, worstHidden float64
	defer func() {
		t.Logf("%s: max abs diff attention %.2g, hidden %.2g (tolerance %g)", c, worstAtt, worstHidden, tol)
	}()
	for l := range L {
		got := rec.t[fmt.Sprintf("blocks.%d.attn.pattern", l)]
		if len(got) != H*n*n {
			t.Fatalf("%s layer %d: pattern has %d values, want %d", c, l, len(got), H*n*n)
		}
		d := maxAbsDiff(got, att[l*H*n*n:])
		worstAtt = math.Max(worstAtt, d)
		if d > tol {
			t.Errorf("%s layer %d attention: max abs diff %.3g > %g", c, l, d, tol)
		}
	}
	hidden := []string{"embed"}
	for l := range L - 1 {
		hidden = append(hidden, fmt.Sprintf("blocks.%d.hook_resid_post", l))
	}
	if cfg.ModelType == "bert" {
		hidden = append(hidden, fmt.Sprintf("blocks.%d.hook_resid_post", L-1))
	} else {
		hidden = append(hidden, "final_norm")
	}
	for i, name := range hidden {
		got := rec.t[name]
		if len(got) != n*D {
			t.Fatalf("%s %s: %d values, want %d", c, name, len(got), n*D)
		}
		d := maxAbsDiff(got, hs[i*n*D:])
		worstHidden = math.Max(worstHidden, d)
		if d > tol {
			t.Errorf("%s hidden_states[%d] (%s): max abs diff %.3g > %g", c, i, name, d, tol)
		}
	}
	var want []float32
	if logits == LogitsAll {
		want, _ = mustF32(t, ref, c+".logits")
	} else {
		want, _ = mustF32(t, ref, c+".logits_last")
	}
	checkLogits(t, c, out.Logits, want)
	if len(rec.t["blocks.0.attn.hook_q"]) != H*n*cfg.HeadDim {
		t.Errorf("%s: hook_q has %d values", c, len(rec.t["blocks.0.attn.hook_q"]))
	}
}

// checkLogits: within 1e-4 relative to the scale (max |logit|) of the reference.
func checkLogits(t *testing.T, c string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d logits, want %d", c, len(got), len(want))
	}
	var scale float64
	for _, v := range want {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	if d := maxAbsDiff(got, want); d > 1e-4*scale {
		t.Errorf("%s logits: max abs diff %.3g > 1e-4 × scale %.3g", c, d, scale)
	}
}

func TestReferenceModels(t *testing.T) {
	for _, rm := range referenceModels {
		t.Run(rm.name, func(t *testing.T) {
			dir := refdata.Path(t, "models", rm.name)
			m, err := Load(dir, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ref := loadRef(t, dir)
			tol := 1e-5
			if rm.trained {
				tol = 1e-4
			}
			for i := 0; ; i++ {
				c := fmt.Sprintf("case%d", i)
				idsRaw, _, err := ref.Int64(c + ".input_ids")
				if err != nil {
					break
				}
				ids := toInts(idsRaw)
				checkForward(t, m, ref, c, ids, tol)
				if rm.decoder {
					checkGeneration(t, m, ref, c, ids, tol)
				}
			}
			t.Logf("%s: %d graphs compiled", rm.name, m.CompiledGraphs())
		})
	}
}

func checkGeneration(t *testing.T, m Model, ref *checkpoint.Safetensors, c string, ids []int, tol float64) {
	t.Helper()
	wantRaw, _, err := ref.Int64(c + ".generated_ids")
	if err != nil {
		t.Fatal(err)
	}
	want := toInts(wantRaw)
	rec := newMemRecorder()
	g, err := m.Generate(context.Background(), ids, GenerateOptions{MaxNewTokens: 12}, rec)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(g.IDs) != fmt.Sprint(want) {
		t.Fatalf("%s generated %v, want %v", c, g.IDs[len(ids):], want[len(ids):])
	}
	ga, shape := mustF32(t, ref, c+".generation_attentions")
	L, H, M := shape[0], shape[1], shape[2]
	for l := range L {
		name := fmt.Sprintf("blocks.%d.attn.pattern", l)
		got := rec.t[name]
		if fmt.Sprint(rec.shapes[name]) != fmt.Sprint([]int{H, M, M}) {
			t.Fatalf("%s %s shape %v, want %v", c, name, rec.shapes[name], []int{H, M, M})
		}
		if d := maxAbsDiff(got, ga[l*H*M*M:]); d > tol {
			t.Errorf("%s generation attention layer %d: max abs diff %.3g > %g", c, l, d, tol)
		}
	}
	for i, p := range g.NewTokenProbs {
		if !(p > 0 && p <= 1) {
			t.Errorf("%s: probability %d = %g", c, i, p)
		}
	}
}

func TestBertPaddedBatch(t *testing.T) {
	for _, name := range []string{"tiny-bert", "code-bert-mini"} {
		t.Run(name, func(t *testing.T) {
			dir := refdata.Path(t, "models", name)
			m, err := Load(dir, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ref := loadRef(t, dir)
			idsRaw, sh, _ := ref.Int64("batch.input_ids")
			maskRaw, _, _ := ref.Int64("batch.attention_mask")
			att, ash := mustF32(t, ref, "batch.attentions") // [L, 2, H, N, N]
			ll, _ := mustF32(t, ref, "batch.logits_last")
			B, N := sh[0], sh[1]
			L, H := ash[0], ash[2]
			var in []Input
			var recs []Recorder
			var mrs []*memRecorder
			for b := range B {
				in = append(in, Input{IDs: toInts(idsRaw[b*N : (b+1)*N]), AttentionMask: toInts(maskRaw[b*N : (b+1)*N])})
				mr := newMemRecorder()
				mrs = append(mrs, mr)
				recs = append(recs, mr)
			}
			outs, err := m.ForwardBatch(context.Background(), in, recs, ForwardOptions{Logits: LogitsLast})
			if err != nil {
				t.Fatal(err)
			}
			tol := 1e-5
			if strings.HasPrefix(name, "code-") {
				tol = 1e-4
			}
			V := m.Config().VocabSize
			for b := range B {
				for l := range L {
					got := mrs[b].t[fmt.Sprintf("blocks.%d.attn.pattern", l)]
					off := (l*B + b) * H * N * N
					if d := maxAbsDiff(got, att[off:off+H*N*N]); d > tol {
						t.Errorf("batch %d layer %d: max abs diff %.3g > %g", b, l, d, tol)
					}
				}
				checkLogits(t, fmt.Sprintf("batch %d", b), outs[b].Logits, ll[b*V:(b+1)*V])
			}
		})
	}
}
