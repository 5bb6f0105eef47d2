package store

import (
	"errors"
	"github.com/attnscope/attnscope/tensor"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// qkvValue is the value fakeQKV gives layer l, tensor which (0 q, 1 k, 2 v), head
// h, token t, dim d: distinct everywhere and exact in float16.
func qkvValue(l, which, h, t, d int) float32 {
	return float32(l*64+which*16+h*4+t) + float32(d)/4
}

// fakeQKV records a forward pass of layers layers with heads query heads and
// kvHeads key/value heads, as the model package sends them.
func fakeQKV(t *testing.T, w *SampleWriter, layers, heads, kvHeads, n, hd int) {
	t.Helper()
	for l := range layers {
		att := make([]float32, heads*n*n)
		if err := w.Record(AttentionName(l), []int{heads, n, n}, att); err != nil {
			t.Fatal(err)
		}
		for which, name := range []string{QName(l), KName(l), VName(l)} {
			hs := kvHeads
			if which == 0 {
				hs = heads
			}
			data := make([]float32, hs*n*hd)
			for h := range hs {
				for tok := range n {
					for d := range hd {
						data[(h*n+tok)*hd+d] = qkvValue(l, which, h, tok, d)
					}
				}
			}
			if err := w.Record(name, []int{hs, n, hd}, data); err != nil {
				t.Fatal(err)
			}
			for i := range data { // the model reuses its buffers
				data[i] = -7
			}
		}
	}
}

func TestSampleWriterQKV(t *testing.T) {
	r, err := Create(filepath.Join(t.TempDir(), "run"), Meta{Kind: "capture", DType: "float32", QKV: true, StartTime: time.Unix(0, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	const layers, heads, kvHeads, n, hd = 2, 4, 2, 3, 5
	for _, fp16 := range []bool{false, true} {
		id := map[bool]string{false: "f32", true: "f16"}[fp16]
		w, err := r.NewSample(id, SampleOptions{Layers: layers, QKV: true, FP16: fp16})
		if err != nil {
			t.Fatal(err)
		}
		fakeQKV(t, w, layers, heads, kvHeads, n, hd)
		if err := w.Commit(&Sample{ID: id}); err != nil {
			t.Fatal(err)
		}
		s, err := r.Sample(id)
		if err != nil {
			t.Fatal(err)
		}
		wantDType := map[bool]string{false: "F32", true: "F16"}[fp16]
		if s.QKV == nil || !reflect.DeepEqual(*s.QKV, TensorsInfo{Layers: layers, Heads: heads, Tokens: n, HeadDim: hd, DType: wantDType}) {
			t.Fatalf("%s: sample.json qkv = %+v", id, s.QKV)
		}
		for l := range layers {
			q, k, v, err := r.QKV(id, l)
			if err != nil {
				t.Fatal(err)
			}
			g := heads / kvHeads
			for which, x := range []*tensor.Tensor{q, k, v} {
				if !slices.Equal(x.Shape, []int{heads, n, hd}) {
					t.Fatalf("%s layer %d tensor %d: shape %v, want [%d %d %d]", id, l, which, x.Shape, heads, n, hd)
				}
				for h := range heads {
					src := h // queries: one per head; keys and values: kv head h/g
					if which > 0 {
						src = h / g
					}
					for tok := range n {
						for d := range hd {
							if got, want := x.Data[(h*n+tok)*hd+d], float64(qkvValue(l, which, src, tok, d)); got != want {
								t.Fatalf("%s layer %d tensor %d [%d %d %d] = %v, want %v", id, l, which, h, tok, d, got, want)
							}
						}
					}
				}
			}
		}
		if _, _, _, err := r.QKV(id, layers); !errors.Is(err, ErrNotCaptured) {
			t.Errorf("QKV of layer %d: err = %v, want ErrNotCaptured", layers, err)
		}
	}

	// Without QKV the tensors are ignored, no file is written, and reading says
	// they were not captured.
	w, err := r.NewSample("plain", SampleOptions{Layers: layers})
	if err != nil {
		t.Fatal(err)
	}
	fakeQKV(t, w, layers, heads, kvHeads, n, hd)
	if err := w.Commit(&Sample{ID: "plain"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.QKVPath("plain")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("qkv.safetensors written without QKV: %v", err)
	}
	if s, _ := r.Sample("plain"); s.QKV != nil {
		t.Errorf("sample.json records qkv %+v without QKV", s.QKV)
	}
	if _, _, _, err := r.QKV("plain", 0); !errors.Is(err, ErrNotCaptured) {
		t.Errorf("QKV of a sample without them: err = %v, want ErrNotCaptured", err)
	}
}

func TestSampleWriterQKVErrors(t *testing.T) {
	r, err := Create(filepath.Join(t.TempDir(), "run"), Meta{Kind: "capture"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		record func(w *SampleWriter) error
		want   string
	}{
		{"k before q", func(w *SampleWriter) error {
			return w.Record(KName(0), []int{2, 3, 4}, make([]float32, 24))
		}, "hook_q [heads, tokens, head_dim] expected first"},
		{"v before k", func(w *SampleWriter) error {
			if err := w.Record(QName(0), []int{2, 3, 4}, make([]float32, 24)); err != nil {
				return err
			}
			return w.Record(VName(0), []int{2, 3, 4}, make([]float32, 24))
		}, "expected blocks.0.attn.hook_k next"},
		{"kv heads not dividing", func(w *SampleWriter) error {
			if err := w.Record(QName(0), []int{4, 3, 4}, make([]float32, 48)); err != nil {
				return err
			}
			return w.Record(KName(0), []int{3, 3, 4}, make([]float32, 36))
		}, "kv_heads dividing 4"},
		{"missing layer", func(w *SampleWriter) error {
			att := make([]float32, 9)
			for _, name := range []string{AttentionName(0), AttentionName(1)} {
				if err := w.Record(name, []int{1, 3, 3}, att); err != nil {
					return err
				}
			}
			for _, name := range []string{QName(0), KName(0), VName(0)} {
				if err := w.Record(name, []int{1, 3, 2}, make([]float32, 6)); err != nil {
					return err
				}
			}
			return w.Commit(&Sample{ID: "x"})
		}, "3 of 6 query/key/value tensors recorded"},
	} {
		w, err := r.NewSample("x", SampleOptions{Layers: 2, QKV: true})
		if err != nil {
			t.Fatal(err)
		}
		err = tc.record(w)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one containing %q", tc.name, err, tc.want)
		}
		w.Abort()
		if _, err := os.Stat(r.QKVPath("x")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: qkv.safetensors left behind: %v", tc.name, err)
		}
		if r.Finished("x") {
			t.Errorf("%s: sample finished", tc.name)
		}
	}
}
