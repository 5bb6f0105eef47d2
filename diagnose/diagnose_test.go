package diagnose

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/refdata"
	"github.com/attnscope/attnscope/model"
)

// TestComparePairsOracle is oracle 34's gradient-confusion part: identical
// gradients give cosine 1, l2 0 and dot ‖g‖²; T vectors give T(T−1)/2 pairs
// in the order (0,1), (0,2), …, (1,2), …; values match the definitions.
func TestComparePairsOracle(t *testing.T) {
	g := []float64{1, -2, 3, 0.5}
	s := ComparePairs([][]float64{g, append([]float64(nil), g...)})
	if len(s.Cosine) != 1 || math.Abs(s.Cosine[0]-1) > 1e-15 || s.Dist[0] != 0 || math.Abs(s.Dot[0]-14.25) > 1e-12 {
		t.Fatalf("identical gradients: cosine %v, l2 %v, dot %v (want 1, 0, 14.25)", s.Cosine, s.Dist, s.Dot)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	const T = 5
	gs := make([][]float64, T)
	for i := range gs {
		gs[i] = make([]float64, 7)
		for k := range gs[i] {
			gs[i][k] = rng.NormFloat64()
		}
	}
	s = ComparePairs(gs)
	if len(s.I) != T*(T-1)/2 {
		t.Fatalf("%d pairs, want %d", len(s.I), T*(T-1)/2)
	}
	k := 0
	for i := range T {
		for j := i + 1; j < T; j++ {
			var d, ni, nj, l2 float64
			for x := range gs[i] {
				d += gs[i][x] * gs[j][x]
				ni += gs[i][x] * gs[i][x]
				nj += gs[j][x] * gs[j][x]
				l2 += (gs[i][x] - gs[j][x]) * (gs[i][x] - gs[j][x])
			}
			if s.I[k] != i || s.J[k] != j || math.Abs(s.Dot[k]-d) > 1e-12 || math.Abs(s.Cosine[k]-d/math.Sqrt(ni*nj)) > 1e-12 || math.Abs(s.Dist[k]-math.Sqrt(l2)) > 1e-12 {
				t.Errorf("pair %d (%d,%d): got (%d,%d) %v %v %v", k, i, j, s.I[k], s.J[k], s.Cosine[k], s.Dot[k], s.Dist[k])
			}
			k++
		}
	}
}

const tinyBertJSON = `{"model_type":"bert","vocab_size":23,"hidden_size":8,"num_hidden_layers":2,"num_attention_heads":2,"intermediate_size":12,"max_position_embeddings":16,"type_vocab_size":2,"hidden_act":"gelu","pad_token_id":0}`

func tinyConfig(t *testing.T) *Net {
	t.Helper()
	raw, err := checkpoint.ParseConfig([]byte(tinyBertJSON))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := model.ParseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	n, err := ScratchNet(cfg, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestConfusionGradientMatchesFiniteDifferences: the loss gradient of the
// classification model (pooler, classifier, cross-entropy; and MSE for a
// one-output regression head), in float64 on a scratch BERT, equals central
// differences of the loss for sampled entries of every parameter.
func TestConfusionGradientMatchesFiniteDifferences(t *testing.T) {
	for _, labels := range []int{3, 1} {
		t.Run(fmt.Sprintf("labels=%d", labels), func(t *testing.T) {
			cfg := tinyConfig(t).Cfg
			n, err := ScratchNet(cfg, labels, 9)
			if err != nil {
				t.Fatal(err)
			}
			// Larger weights than the 0.02 initialisation, so that every path matters.
			rng := rand.New(rand.NewPCG(4, 4))
			for i := range n.Values {
				for j := range n.Values[i] {
					n.Values[i][j] += float32(0.3 * rng.NormFloat64())
				}
			}
			g, err := newGradients(n, Mode{}, "", dtypes.Float64)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			exs := []Example{
				{IDs: []int{2, 5, 7, 9, 3}, TypeIDs: []int{0, 0, 0, 1, 1}, Label: 2},
				{IDs: []int{2, 11, 3}, Label: 0},
			}
			if labels == 1 {
				exs[0].Label, exs[1].Label = 0.7, -1.2
			}
			grad, err := g.Batch(exs)
			if err != nil {
				t.Fatal(err)
			}
			off, checked := 0, 0
			for i, p := range g.params {
				size := p.Shape().Size()
				for range 2 {
					j := rng.IntN(size)
					lossAt := func(delta float64) float64 {
						tensors.MutableFlatData(p, func(v []float64) { v[j] += delta })
						if _, err := g.Batch(exs); err != nil {
							t.Fatal(err)
						}
						tensors.MutableFlatData(p, func(v []float64) { v[j] -= delta })
						return g.loss
					}
					const h = 1e-5
					fd := (lossAt(h) - lossAt(-h)) / (2 * h)
					if d := math.Abs(fd - grad[off+j]); d > 1e-6*math.Max(1, math.Abs(fd)) {
						t.Errorf("%s[%d]: autodiff %.10g, central difference %.10g", n.Params[i].Name, j, grad[off+j], fd)
					}
					checked++
				}
				off += size
			}
			if off != n.NumParams() || checked < 2*len(n.Params) {
				t.Fatalf("gradient has %d entries for %d parameters", off, n.NumParams())
			}
		})
	}
}

// TestPerturbationZeroNoise is oracle 34's perturbation part: σ = 0 in
// evaluation mode changes nothing (all distances exactly 0); σ > 0 moves the
// output; in training mode σ = 0 still differs (independent dropout masks,
// the original's quirk).
func TestPerturbationZeroNoise(t *testing.T) {
	n, err := LoadNet(refdata.Path(t, "models", "tiny-bert"), HeadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	exs := []Example{{IDs: []int{2, 40, 41, 42, 3}}, {IDs: []int{2, 50, 3}}}
	run := func(mode Mode, sigma float64) []float64 {
		p, err := NewPerturbation(n, mode, "", sigma, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		v, err := p.Batch(exs, 0)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for i, v := range run(Mode{}, 0) {
		if v != 0 {
			t.Errorf("eval, σ=0: example %d moved by %g", i, v)
		}
	}
	for i, v := range run(Mode{}, 1e-2) {
		if !(v > 0) {
			t.Errorf("eval, σ=1e-2: example %d moved by %g", i, v)
		}
	}
	for i, v := range run(Mode{Train: true, Seed: 3}, 0) {
		if !(v > 0) {
			t.Errorf("train, σ=0: example %d moved by %g (dropout should differ)", i, v)
		}
	}
}

// TestLayerNormStd: the diagnostic's per-token std (unbiased, over the width)
// equals the std of the hook_attn_preln / hook_mlp_preln tensors package model
// records, computed here in float64; a constant hidden vector has std 0
// (oracle 34).
func TestLayerNormStd(t *testing.T) {
	dir := refdata.Path(t, "models", "tiny-bert")
	n, err := LoadNet(dir, HeadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLayerNormStd(n, Mode{}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	exs := []Example{{IDs: []int{2, 40, 41, 42, 3}}, {IDs: []int{2, 50, 3}}}
	const T = 16
	got, shape, err := l.Batch(exs, T)
	if err != nil {
		t.Fatal(err)
	}
	L := n.Cfg.Layers
	if len(shape) != 2 || shape[0] != 2*L || shape[1] != len(exs)*T {
		t.Fatalf("shape %v, want [%d, %d]", shape, 2*L, len(exs)*T)
	}
	m, err := model.Load(dir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	d := n.Cfg.Hidden
	worst := 0.0
	for b, ex := range exs {
		hooks := map[string][]float32{}
		rec := model.RecorderFunc(func(name string, _ []int, data []float32) error {
			hooks[name] = append([]float32(nil), data...)
			return nil
		})
		if _, err := m.Forward(context.Background(), model.Input{IDs: ex.IDs}, rec, model.ForwardOptions{PreLN: true}); err != nil {
			t.Fatal(err)
		}
		for layer := range L {
			for k, hook := range []string{"hook_attn_preln", "hook_mlp_preln"} {
				h := hooks[fmt.Sprintf("blocks.%d.%s", layer, hook)]
				for i := range ex.IDs {
					want := std64(h[i*d : (i+1)*d])
					g := got[(layer*2+k)*len(exs)*T+b*T+i]
					worst = math.Max(worst, math.Abs(g-want)/want)
				}
			}
		}
	}
	if worst > 1e-5 {
		t.Errorf("std of the pre-LayerNorm sums: max relative difference %.3g from the recorded hooks", worst)
	}
	if s := std64([]float32{3, 3, 3, 3}); s != 0 {
		t.Errorf("std of a constant vector = %g", s)
	}
}

// std64 is the unbiased standard deviation (divisor d−1).
func std64(x []float32) float64 {
	m := 0.0
	for _, v := range x {
		m += float64(v)
	}
	m /= float64(len(x))
	s := 0.0
	for _, v := range x {
		s += (float64(v) - m) * (float64(v) - m)
	}
	return math.Sqrt(s / float64(len(x)-1))
}

// TestJacobianTrainingMode: in training mode every chunk sees the same
// dropout masks (the result does not depend on the chunk size), and the
// result differs from evaluation mode.
func TestJacobianTrainingMode(t *testing.T) {
	n, err := LoadNet(refdata.Path(t, "models", "tiny-bert"), HeadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ex := Example{IDs: []int{2, 40, 41, 42, 3}}
	run := func(o JacobianOptions) []float64 {
		j, err := NewJacobians(n, o)
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		v, err := j.Full(ex, 1)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	train := Mode{Train: true, Seed: 5}
	a, b, e := run(JacobianOptions{Mode: train, Chunk: 16, DType: dtypes.Float64}), run(JacobianOptions{Mode: train, Chunk: 64, DType: dtypes.Float64}), run(JacobianOptions{DType: dtypes.Float64})
	same, diff := 0.0, 0.0
	for i := range a {
		same = math.Max(same, math.Abs(a[i]-b[i]))
		diff = math.Max(diff, math.Abs(a[i]-e[i]))
	}
	if same > 1e-12 {
		t.Errorf("training mode: chunk 16 and 64 differ by %g (dropout masks not shared)", same)
	}
	if diff < 1e-6 {
		t.Errorf("training mode equals evaluation mode (max difference %g)", diff)
	}
}

// TestRandomTable: a permutation of the vocabulary with the reserved ids in
// order at the end, the same for a seed, different for another; saved and
// read back.
func TestRandomTable(t *testing.T) {
	a, err := RandomTable(50, 10, 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckTable("a", a, 50); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if a[40+i] != i {
			t.Fatalf("entry %d = %d, want reserved id %d", 40+i, a[40+i], i)
		}
	}
	b, _ := RandomTable(50, 10, 7)
	c, _ := RandomTable(50, 10, 8)
	if fmt.Sprint(a) != fmt.Sprint(b) || fmt.Sprint(a) == fmt.Sprint(c) {
		t.Fatal("the table is not a function of its seed")
	}
	path := filepath.Join(t.TempDir(), "t.npy")
	if err := WriteTable(path, a); err != nil {
		t.Fatal(err)
	}
	back, err := ReadTable(path, 50)
	if err != nil || fmt.Sprint(back) != fmt.Sprint(a) {
		t.Fatalf("read back %v, %v", back, err)
	}
	ids := []int{0, 5, 49}
	TokenMap{Shift: 3}.Apply(ids, 50)
	if fmt.Sprint(ids) != "[3 8 2]" {
		t.Errorf("shift 3 mod 50: %v", ids)
	}
}

// TestBadInputs: a table of the wrong size, a model without the needed head
// and an interrupted run each give one sentence naming the problem and leave
// no output folder behind.
func TestBadInputs(t *testing.T) {
	dir := refdata.Path(t, "models", "tiny-bert")
	tmp := t.TempDir()
	small := filepath.Join(tmp, "small.npy")
	if err := WriteTable(small, []int{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	glue := filepath.Join(tmp, "train.tsv")
	if err := os.WriteFile(glue, []byte("index\tsentence1\tsentence2\tgold_label\n0\ta b\tc d\tneutral\n1\te f\tg\tentailment\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := Options{ModelDir: dir, GLUE: glue, Task: "MNLI", MaxLen: 16, Batches: 2, BatchSize: 1}
	o := base
	o.Table = small
	if _, err := Prepare(o, false); err == nil || !strings.Contains(err.Error(), "has 3 entries, expected the model's vocabulary size 4096") {
		t.Errorf("wrong-size table: %v", err)
	}
	if _, err := Prepare(base, true); err == nil || !strings.Contains(err.Error(), "has no sequence-classification head: tensor bert.pooler.dense.weight is missing") {
		t.Errorf("model without head: %v", err)
	}
	o = base
	o.InitHead = true
	s, err := Prepare(o, true)
	if err != nil || !s.Net.HeadInitialised || s.Net.Labels != 3 {
		t.Fatalf("--init-head: %v", err)
	}
	o = base
	o.Out = filepath.Join(tmp, "run")
	s, err = Prepare(o, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := RunJacobian(ctx, s, 0, func(done, _ int) { cancel() }); err == nil {
		t.Fatal("cancelled run succeeded")
	}
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		if e.IsDir() {
			t.Errorf("an interrupted run left %s", e.Name())
		}
	}
	out, err := RunJacobian(context.Background(), s, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "derived", "jacobian", "ex00001.npy")); err != nil {
		t.Fatal(err)
	}
	if _, err := RunJacobian(context.Background(), s, 0, nil); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second run into the same folder: %v", err)
	}
}

// TestReadGLUE reads the three supported layouts and names a missing column.
func TestReadGLUE(t *testing.T) {
	tmp := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sst := write("sst.tsv", "sentence\tlabel\nit is good \t1\nbad\t0\n")
	got, err := ReadGLUE(sst, "SST-2")
	if err != nil || len(got) != 2 || got[0].A != "it is good " || got[0].Label != 1 || got[1].B != "" {
		t.Fatalf("SST-2: %+v %v", got, err)
	}
	sts := write("sts.tsv", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n0\tg\tf\ty\t0\ts\ts\tA plane.\tAn air plane.\t5.000\n")
	got, err = ReadGLUE(sts, "STS-B")
	if err != nil || got[0].A != "A plane." || got[0].B != "An air plane." || got[0].Label != 5 {
		t.Fatalf("STS-B: %+v %v", got, err)
	}
	bad := write("bad.tsv", "sentence\tlabel\nx\tpositive\n")
	if _, err := ReadGLUE(bad, "SST-2"); err == nil || !strings.Contains(err.Error(), `line 2, column "label": "positive" is not a label`) {
		t.Errorf("bad label: %v", err)
	}
	if _, err := ReadGLUE(sst, "MNLI"); err == nil || !strings.Contains(err.Error(), `header has no column "sentence1"`) {
		t.Errorf("missing column: %v", err)
	}
}

// FuzzParseGLUE: any input parses or fails with an error, never a panic.
func FuzzParseGLUE(f *testing.F) {
	f.Add("sentence\tlabel\nx\t1\n")
	f.Add("index\tsentence1\tsentence2\tgold_label\n0\ta\t\"b\tneutral\n")
	f.Fuzz(func(t *testing.T, s string) {
		for _, task := range []string{"sst-2", "mnli", "sts-b"} {
			out, err := parseGLUE(strings.NewReader(s), "f.tsv", glueTasks[task])
			if err == nil && len(out) == 0 {
				t.Fatal("no examples and no error")
			}
		}
	})
}

// TestInitBERT: N(0, 0.02) matrices, a zero padding row, unit LayerNorm gains.
func TestInitBERT(t *testing.T) {
	n := tinyConfig(t)
	for i, p := range n.Params {
		v := n.Values[i]
		switch {
		case p.Name == "bert.embeddings.word_embeddings.weight":
			for k := range p.Shape[1] {
				if v[k] != 0 {
					t.Fatal("padding row of the word embeddings is not zero")
				}
			}
			s := std64(v[p.Shape[1]:])
			if math.Abs(s-0.02) > 0.003 {
				t.Errorf("word embedding std %g, want ≈ 0.02", s)
			}
		case strings.HasSuffix(p.Name, "LayerNorm.weight") && v[0] != 1:
			t.Errorf("%s = %g, want 1", p.Name, v[0])
		}
	}
}

// TestLoadSequenceClassification: a BertForSequenceClassification checkpoint
// (pooler and classifier saved) loads its head as saved; asking for another
// number of labels is refused naming the tensor.
func TestLoadSequenceClassification(t *testing.T) {
	src := tinyConfig(t)
	n, err := ScratchNet(src.Cfg, 3, 11)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := strings.Replace(tinyBertJSON, `{"model_type"`, `{"architectures":["BertForSequenceClassification"],"model_type"`, 1)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	infos := make([]checkpoint.TensorInfo, len(n.Params))
	for i, p := range n.Params {
		infos[i] = checkpoint.TensorInfo{Name: p.Name, DType: checkpoint.F32, Shape: p.Shape}
	}
	if err := checkpoint.WriteSafetensors(filepath.Join(dir, "model.safetensors"), infos, n.Values, nil); err != nil {
		t.Fatal(err)
	}
	got, err := LoadNet(dir, HeadOptions{Labels: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got.HeadInitialised || got.Labels != 3 || len(got.Params) != len(n.Params) {
		t.Fatalf("loaded %d params, labels %d, initialised %v", len(got.Params), got.Labels, got.HeadInitialised)
	}
	for i, p := range got.Params {
		if fmt.Sprint(got.Values[i]) != fmt.Sprint(n.Values[i]) {
			t.Errorf("%s differs from the saved tensor", p.Name)
		}
	}
	if _, err := LoadNet(dir, HeadOptions{Labels: 2}); err == nil || !strings.Contains(err.Error(), "classifier.weight") {
		t.Errorf("2 labels from a 3-label checkpoint: %v", err)
	}
}
