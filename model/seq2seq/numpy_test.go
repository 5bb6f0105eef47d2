package seq2seq

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os/exec"
	"testing"
	"time"

	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/attnscope/attnscope/internal/pyoracle"
)

// TestStepAgainstNumPy runs the encoder and one attention decoder step in float64
// and compares logits, attention and the new LSTM states with an independent NumPy
// implementation (testdata/numpy_step.py) on the same fixed weights.
func TestStepAgainstNumPy(t *testing.T) {
	py := pyoracle.Python(t, "numpy")
	backend := testBackend(t)
	for _, mask := range []bool{false, true} {
		cfg := tinyConfig(KindAttention)
		cfg.MaskPadding = mask
		params := float64Params(cfg, 11)
		src := [][]int{{1, 4, 5, 6, 2, 0}, {1, 7, 8, 2, 0, 0}}
		y := []int32{1, 5}
		ws := map[string]any{}
		for i, s := range cfg.Params() {
			ws[s.Name] = nested(tensors.MustCopyFlatData[float64](params[i]), s.Shape)
		}
		in, _ := json.Marshal(map[string]any{"config": cfg, "weights": ws, "src": src, "y": y})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, py, "testdata/numpy_step.py")
		cmd.Stdin = bytes.NewReader(in)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		cancel()
		if err != nil {
			t.Fatalf("numpy_step.py: %v\n%s", err, stderr.String())
		}
		var want struct {
			Logits, Attention [][]float64
			H, C              [][][]float64
		}
		if err := json.Unmarshal(out, &want); err != nil {
			t.Fatal(err)
		}
		np := len(params)
		e := MustNewExec(backend, func(in []*Node) []*Node {
			w := cfg.bind(in[:np])
			enc := cfg.Encode(w, in[np], nil)
			lg, att, next := cfg.Step(w, in[np+1], enc.Init, enc, nil)
			return []*Node{lg, att, Stack(next.H, 0), Stack(next.C, 0)}
		})
		args := make([]any, 0, np+2)
		for _, p := range params {
			args = append(args, p)
		}
		got := e.MustExec(append(args, IDMatrix(src, cfg.SrcVocab), tensors.FromValue(y))...)
		compare := func(name string, g *tensors.Tensor, w []float64) {
			gv := tensors.MustCopyFlatData[float64](g)
			if len(gv) != len(w) {
				t.Fatalf("%s: %d values, NumPy %d", name, len(gv), len(w))
			}
			for i := range gv {
				if math.Abs(gv[i]-w[i]) > 1e-12 {
					t.Fatalf("mask=%v %s[%d]: GoMLX %.15g, NumPy %.15g", mask, name, i, gv[i], w[i])
				}
			}
		}
		compare("logits", got[0], flat2(want.Logits))
		compare("attention", got[1], flat2(want.Attention))
		compare("h", got[2], flat3(want.H))
		compare("c", got[3], flat3(want.C))
		if mask && want.Attention[1][5] != 0 {
			t.Fatalf("masked attention on PAD: %v", want.Attention[1])
		}
	}
}

func nested(v []float64, shape []int) any {
	if len(shape) == 1 {
		return v
	}
	n := len(v) / shape[0]
	out := make([]any, shape[0])
	for i := range out {
		out[i] = nested(v[i*n:(i+1)*n], shape[1:])
	}
	return out
}

func flat2(m [][]float64) (out []float64) {
	for _, r := range m {
		out = append(out, r...)
	}
	return out
}

func flat3(m [][][]float64) (out []float64) {
	for _, r := range m {
		out = append(out, flat2(r)...)
	}
	return out
}
