package derive

import (
	"context"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

// layerRun counts the layers read.
type layerRun struct {
	memRun
	reads int // layers read
}

func (r *layerRun) AttentionLayer(s string, l int) (*tensor.Tensor, error) {
	r.reads++
	return r.memRun.AttentionLayer(s, l)
}

// Every pass that reads attention layer by layer or head-reduced gives exactly (bit for
// bit) the tensor and metrics of its function on the whole tensor, without the whole
// tensor ever being read.
func TestLayerPassesMatchWholeTensor(t *testing.T) {
	reg := DefaultRegistry()
	att := randomAttention(rand.New(rand.NewPCG(3, 4)), 3, 2, 6)
	// Six one-character tokens on two lines, the first four the prompt.
	meta := &store.Sample{Text: "ab\ncde", Tokens: []string{"a", "b", "\n", "c", "d", "e"},
		Offsets: [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}}, PromptLen: 4, Language: "python"}
	n := 0
	for _, name := range reg.Names() {
		spec, _ := reg.Lookup(name)
		if spec.Layers == AllLayers {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			kwargs := "{}"
			if name == "head_redundancy" {
				kwargs = "{tau: 1}" // every pair, so that the layer column is checked
			}
			if name == "ground_truth_lines" {
				kwargs = "{ground_truth: " + groundTruthDir(t, "s", []string{"ab", "cde"}, []float64{1, 0.5}) + "}"
				meta.Source = "prompts/s.txt"
			}
			cfg, err := ParseConfig("t.yaml", []byte("passes:\n  - {name: p, input: attention, function: "+name+", kwargs: "+kwargs+"}\n"), reg)
			if err != nil {
				t.Fatal(err)
			}
			kw := cfg.Passes[0].Args()
			want, err := spec.Fn(context.Background(), &Input{Tensor: att, Meta: meta}, kw)
			if err != nil {
				t.Fatal(err)
			}
			if spec.Summarize != nil {
				want.Metrics = spec.Summarize(want.Metrics)
			}
			run := &layerRun{memRun: memRun{att: map[string]*tensor.Tensor{"s": att}}}
			sa := &sampleAttention{ctx: context.Background(), run: run, sample: "s"}
			got, err := runByLayer(context.Background(), sa, spec, &Input{Sample: "s", Meta: meta}, kw)
			if err != nil {
				t.Fatal(err)
			}
			if name == "head_redundancy" && want.Tensor.Shape[0] != 3 {
				t.Fatalf("want 3 pairs (one per layer), got shape %v", want.Tensor.Shape)
			}
			if !reflect.DeepEqual(got.Tensor, want.Tensor) {
				t.Errorf("tensor %v %v, want %v %v", got.Tensor.Shape, got.Tensor.Data, want.Tensor.Shape, want.Tensor.Data)
			}
			if !reflect.DeepEqual(got.Metrics, want.Metrics) {
				t.Errorf("metrics %+v, want %+v", got.Metrics, want.Metrics)
			}
			wantReads := 3
			switch {
			case spec.Layers == OneLayer:
				wantReads = 1
			case name == "js_distance_units":
				wantReads = 3 * 4 / 2 // layer m once for each block (l ≤ m, m)
			}
			if run.reads != wantReads {
				t.Errorf("%d layers read, want %d", run.reads, wantReads)
			}
		})
	}
	if n < 15 {
		t.Errorf("only %d layer-by-layer passes", n)
	}
}

// A bad layer read layer by layer is reported with its own index.
func TestLayerPassErrorNamesLayer(t *testing.T) {
	att := randomAttention(rand.New(rand.NewPCG(5, 6)), 3, 2, 4)
	att.Data[2*2*16+5] = -0.5 // layer 2, head 0, row 1
	reg := DefaultRegistry()
	for _, name := range []string{"attention_entropy", "compute_attention_rollout"} {
		spec, _ := reg.Lookup(name)
		cfg, err := ParseConfig("t.yaml", []byte("passes:\n  - {name: p, input: attention, function: "+name+"}\n"), reg)
		if err != nil {
			t.Fatal(err)
		}
		run := &layerRun{memRun: memRun{att: map[string]*tensor.Tensor{"s": att}}}
		sa := &sampleAttention{ctx: context.Background(), run: run, sample: "s"}
		_, err = runByLayer(context.Background(), sa, spec, &Input{Sample: "s"}, cfg.Passes[0].Args())
		if err == nil || err.Error() != "layer 2 head 0: weight [1,1] is negative (-0.5)" {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
