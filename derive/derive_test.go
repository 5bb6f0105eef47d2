package derive

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attnscope/attnscope/derive/derivetest"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

// memRun is a run whose attention and sample records live in memory; outputs go to
// a store run folder at dir (created on first use).
type memRun struct {
	dir  string
	att  map[string]*tensor.Tensor
	meta map[string]*store.Sample
	st   *store.Run
}

func (r *memRun) out() *store.Run {
	if r.st == nil || r.st.Dir() != r.dir {
		st, err := store.Open(r.dir)
		if err != nil {
			if st, err = store.Create(r.dir, store.Meta{}); err != nil {
				panic(err)
			}
		}
		r.st = st
	}
	return r.st
}

func (r *memRun) Samples() ([]string, error) {
	var s []string
	for k := range r.att {
		s = append(s, k)
	}
	return s, nil
}
func (r *memRun) Sample(s string) (*store.Sample, error) {
	if m := r.meta[s]; m != nil {
		return m, nil
	}
	return &store.Sample{ID: s}, nil
}
func (r *memRun) NumLayers(s string) (int, error) {
	t, ok := r.att[s]
	if !ok {
		return 0, fmt.Errorf("no sample %q", s)
	}
	return t.Shape[0], nil
}
func (r *memRun) AttentionLayer(s string, l int) (*tensor.Tensor, error) {
	t := r.att[s]
	if l < 0 || l >= t.Shape[0] {
		return nil, fmt.Errorf("no layer %d", l)
	}
	return t.Sub(l).Clone(), nil
}
func (r *memRun) PreparePass(p string, s store.PassSettings) error { return r.out().PreparePass(p, s) }
func (r *memRun) HasDerived(p, s string) bool                      { return r.out().HasDerived(p, s) }
func (r *memRun) Derived(p, s string) (*tensor.Tensor, error)      { return r.out().Derived(p, s) }
func (r *memRun) WriteDerived(p, s string, t *tensor.Tensor, m []store.MetricRow) error {
	return r.out().WriteDerived(p, s, t, m)
}
func (r *memRun) GatherMetrics(ctx context.Context, passes, samples []string) (int, error) {
	return r.out().GatherMetrics(ctx, passes, samples)
}

// randomAttention returns causal row-stochastic attention [L,H,N,N].
func randomAttention(r *rand.Rand, L, H, N int) *tensor.Tensor {
	t := tensor.New(L, H, N, N)
	for m := 0; m < L*H; m++ {
		for i := 0; i < N; i++ {
			row := t.Data[(m*N+i)*N:][:N]
			var s float64
			for j := 0; j <= i; j++ {
				row[j] = r.Float64() + 0.01
				s += row[j]
			}
			for j := 0; j <= i; j++ {
				row[j] /= s
			}
		}
	}
	return t
}

func newMemRun(t testing.TB, samples int) *memRun {
	r := rand.New(rand.NewPCG(7, uint64(samples)))
	run := &memRun{dir: t.TempDir(), att: map[string]*tensor.Tensor{}, meta: map[string]*store.Sample{}}
	for i := 0; i < samples; i++ {
		id := fmt.Sprintf("s%02d", i)
		run.att[id] = randomAttention(r, 2, 3, 4+i%3)
		run.meta[id] = &store.Sample{Text: "ab", Tokens: []string{"a", "b"}, PromptLen: 2}
	}
	return run
}

// testRegistry holds simple passes: head sum with a per-layer max metric, a column sum
// of a [L,N,N] input, the number of tokens from metadata, and a slow pass for kill tests.
func testRegistry(t testing.TB) *Registry {
	var reg Registry
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(reg.Register(Spec{
		Name: "head_sum", Input: TakesAttention, RowStochastic: true, Axes: fixedAxes(axLayer, axQuery, axKey),
		Kwargs: map[string]KwargSpec{"scale": {Kind: KwFloat, Default: 1.0}},
		Fn: func(_ context.Context, in *Input, kw Kwargs) (*Result, error) {
			L, H, N := in.Tensor.Shape[0], in.Tensor.Shape[1], in.Tensor.Shape[2]
			out := tensor.New(L, N, N)
			res := &Result{Tensor: out}
			for l := 0; l < L; l++ {
				mx := 0.0
				for h := 0; h < H; h++ {
					for k := 0; k < N*N; k++ {
						v := kw.Float("scale") * in.Tensor.Data[(l*H+h)*N*N+k]
						out.Data[l*N*N+k] += v
						mx = math.Max(mx, v)
					}
				}
				res.Metrics = append(res.Metrics, Metric{Layer: l, Head: -1, Name: "max", Value: mx})
			}
			return res, nil
		},
	}))
	must(reg.Register(Spec{
		Name: "col_sum", Input: TakesTensor, Axes: fixedAxes(axKey),
		Fn: func(_ context.Context, in *Input, _ Kwargs) (*Result, error) {
			n := in.Tensor.Shape[len(in.Tensor.Shape)-1]
			out := tensor.New(n)
			for k, v := range in.Tensor.Data {
				out.Data[k%n] += v
			}
			return &Result{Tensor: out}, nil
		},
	}))
	must(reg.Register(Spec{
		Name: "n_tokens", Input: TakesMetadata, Axes: fixedAxes(axis("count")),
		Kwargs: map[string]KwargSpec{"mode": {Kind: KwString, Default: "all", Enum: []string{"all", "prompt"}}},
		Fn: func(_ context.Context, in *Input, kw Kwargs) (*Result, error) {
			n := len(in.Meta.Tokens)
			if kw.String("mode") == "prompt" {
				n = in.Meta.PromptLen
			}
			return &Result{Tensor: &tensor.Tensor{Shape: []int{1}, Data: []float64{float64(n)}},
				Metrics: []Metric{{Layer: -1, Head: -1, Name: "n", Value: float64(n)}}}, nil
		},
	}))
	must(reg.Register(Spec{
		Name: "slow_copy", Input: TakesAttention, Axes: sameAxes,
		Kwargs: map[string]KwargSpec{"ms": {Kind: KwInt, Default: 0}},
		Fn: func(ctx context.Context, in *Input, kw Kwargs) (*Result, error) {
			select {
			case <-time.After(time.Duration(kw.Int("ms")) * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return &Result{Tensor: &tensor.Tensor{Shape: in.Tensor.Shape, Data: in.Tensor.Data},
				Metrics: []Metric{{Layer: 0, Head: 0, Name: "first", Value: in.Tensor.Data[0]}}}, nil
		},
	}))
	return &reg
}

const testConfig = `passes:
  - name: heads
    input: attention
    function: head_sum
    kwargs: {scale: 2}
  - name: received
    input: heads
    function: col_sum
  - name: tokens
    input: metadata
    function: n_tokens
    kwargs:
      mode: prompt
`

func mustConfig(t testing.TB, text string) *Config {
	t.Helper()
	cfg, err := ParseConfig("exp.yaml", []byte(text), testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestParseConfig(t *testing.T) {
	cfg := mustConfig(t, testConfig)
	if len(cfg.Passes) != 3 || cfg.Passes[0].Args().Float("scale") != 2 || cfg.Passes[2].Args().String("mode") != "prompt" {
		t.Fatalf("parsed %+v", cfg.Passes)
	}
	// Defaults: input defaults to attention (metadata for metadata functions), kwargs to their defaults.
	cfg = mustConfig(t, "passes:\n  - {name: a, function: head_sum}\n  - {name: b, function: n_tokens}\n")
	if cfg.Passes[0].Input != InputAttention || cfg.Passes[0].Args().Float("scale") != 1 || cfg.Passes[1].Input != InputMetadata {
		t.Errorf("defaults not applied: %+v", cfg.Passes)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"unknown top key", "passes:\n  - {name: a, function: head_sum}\nlayers: 3\n", `exp.yaml: [3:1] unknown field "layers"`},
		{"unknown pass key", "passes:\n  - name: a\n    function: head_sum\n    kwarg: {}\n", `[4:5] unknown field "kwarg"`},
		{"unknown function", "passes:\n  - name: a\n    function: head_summ\n", `exp.yaml:3: pass "a": unknown function "head_summ"`},
		{"unknown kwarg", "passes:\n  - name: a\n    function: head_sum\n    kwargs:\n      scale: 1\n      sclae: 2\n", `exp.yaml:6: pass "a": function head_sum has no keyword argument "sclae" (known: scale)`},
		{"kwarg type", "passes:\n  - name: a\n    function: head_sum\n    kwargs: {scale: big}\n", `exp.yaml:4: pass "a": keyword argument scale: big is not a number`},
		{"kwarg enum", "passes:\n  - name: a\n    function: n_tokens\n    kwargs: {mode: some}\n", `keyword argument mode: "some" is not one of all, prompt`},
		{"later input", "passes:\n  - {name: a, input: b, function: col_sum}\n  - {name: b, function: head_sum}\n", `exp.yaml:2: pass "a": input "b" is a later pass of the config`},
		{"bad input name", "passes:\n  - {name: a, input: ../b, function: col_sum}\n", `exp.yaml:2: pass "a": input "../b" is neither`},
		{"duplicate", "passes:\n  - {name: a, function: head_sum}\n  - {name: a, function: head_sum}\n", `exp.yaml:3: pass name "a" is used twice`},
		{"metadata to tensor fn", "passes:\n  - {name: a, input: metadata, function: head_sum}\n", `function head_sum takes a tensor`},
		{"tensor to metadata fn", "passes:\n  - {name: a, input: attention, function: n_tokens}\n", `function n_tokens takes metadata`},
		{"bad name", "passes:\n  - {name: ../x, function: head_sum}\n", `exp.yaml:2: pass name "../x" must be a folder name`},
		{"no passes", "passes: []\n", "no passes"},
		{"no function", "passes:\n  - {name: a}\n", `pass "a" has no function`},
		{"syntax", "passes:\n  - {name: a\n", "exp.yaml:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("exp.yaml", []byte(tt.text), testRegistry(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDeriveOutputsMetricsAndResume(t *testing.T) {
	run := newMemRun(t, 5)
	cfg := mustConfig(t, testConfig)
	var progress []int
	sum, err := Derive(context.Background(), run, cfg, Options{Workers: 2, Progress: func(d, n int, _ string) { progress = append(progress, d) }})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Computed != 15 || sum.Skipped != 0 || len(progress) != 5 {
		t.Fatalf("summary %+v, progress %v", sum, progress)
	}
	// received = column sums of 2·Σ_h A: each column sum of a row-stochastic matrix adds to N rows.
	got, err := run.Derived("received", "s01")
	if err != nil {
		t.Fatal(err)
	}
	att := run.att["s01"]
	L, H, N := att.Shape[0], att.Shape[1], att.Shape[2]
	if len(got.Shape) != 1 || got.Shape[0] != N {
		t.Fatalf("received shape %v, want [%d]", got.Shape, N)
	}
	for j := 0; j < N; j++ {
		var want float64
		for m := 0; m < L*H; m++ {
			for i := 0; i < N; i++ {
				want += 2 * att.Data[(m*N+i)*N+j]
			}
		}
		if math.Abs(got.Data[j]-want) > 1e-12 {
			t.Errorf("received[%d] = %g, want %g", j, got.Data[j], want)
		}
	}
	rows, err := store.ReadMetricsCSV(filepath.Join(run.dir, store.MetricsCSV))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5*(2+1) || sum.MetricRows != len(rows) {
		t.Fatalf("%d metric rows (summary %d), want 15", len(rows), sum.MetricRows)
	}
	if r := rows[0]; r.Sample != "s00" || r.Pass != "heads" || r.Layer != 0 || r.Head != -1 || r.Metric != "max" {
		t.Errorf("first row %+v", r)
	}
	if r := rows[2]; r.Pass != "tokens" || r.Value != 2 {
		t.Errorf("third row %+v, want tokens n = 2", r)
	}
	pq, err := store.ReadMetricsParquet(filepath.Join(run.dir, store.MetricsParquet))
	if err != nil || len(pq) != len(rows) {
		t.Fatalf("parquet: %d rows, %v", len(pq), err)
	}

	before := derivetest.Files(t, run.dir, nil)
	sum, err = Derive(context.Background(), run, cfg, Options{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Computed != 0 || sum.Skipped != 15 {
		t.Errorf("rerun %+v, want everything skipped", sum)
	}
	derivetest.Same(t, derivetest.Files(t, run.dir, nil), before)

	// --pass recomputes one pass only, reading its input pass from disk.
	os.Remove(run.out().DerivedPath("received", "s03"))
	sum, err = Derive(context.Background(), run, cfg, Options{Pass: "received"})
	if err != nil || sum.Computed != 1 || sum.Skipped != 4 {
		t.Fatalf("--pass: %+v, %v", sum, err)
	}
	derivetest.Same(t, derivetest.Files(t, run.dir, nil), before)
	if _, err := Derive(context.Background(), run, cfg, Options{Pass: "nope"}); err == nil || !strings.Contains(err.Error(), `no pass "nope"`) {
		t.Errorf("unknown --pass: %v", err)
	}
}

func TestDerivePassNeedsInput(t *testing.T) {
	run := newMemRun(t, 1)
	cfg := mustConfig(t, testConfig)
	_, err := Derive(context.Background(), run, cfg, Options{Pass: "received"})
	if err == nil || !strings.Contains(err.Error(), `input pass "heads" has no output`) {
		t.Fatalf("err = %v", err)
	}
}

func TestDeriveWorkersAgree(t *testing.T) {
	cfg := mustConfig(t, testConfig)
	var snaps []map[string][]byte
	for _, w := range []int{1, 4} {
		run := newMemRun(t, 6)
		if _, err := Derive(context.Background(), run, cfg, Options{Workers: w}); err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, derivetest.Files(t, run.dir, nil))
	}
	derivetest.Same(t, snaps[1], snaps[0])
}

func TestDeriveBadAttention(t *testing.T) {
	nan := func(t *tensor.Tensor) { t.Data[5] = math.NaN() }
	tests := []struct {
		name   string
		mutate func(*tensor.Tensor)
		shape  []int
		want   string
	}{
		{"nan", nan, nil, "layer 0 head 0: weight [1,0] is NaN"},
		{"negative", func(t *tensor.Tensor) { t.Data[len(t.Data)-1] = -0.5 }, nil, "layer 1 head 2: weight [4,4] is negative"},
		{"row sum", func(t *tensor.Tensor) { t.Data[25+5] *= 0.5 }, nil, "layer 0 head 1: row 1 sums to"},
		{"not square", nil, []int{2, 3, 4, 3}, "not square"},
		{"rank", nil, []int{24, 4}, "want [head, query, key]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := newMemRun(t, 3)
			bad := run.att["s01"]
			if tt.mutate != nil {
				bad = &tensor.Tensor{Shape: bad.Shape, Data: append([]float64(nil), bad.Data...)}
				tt.mutate(bad)
			} else {
				bad = &tensor.Tensor{Shape: tt.shape, Data: make([]float64, len(bad.Data[:0])+product(tt.shape))}
			}
			run.att["s01"] = bad
			_, err := Derive(context.Background(), run, mustConfig(t, testConfig), Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `pass "heads" (head_sum): sample "s01"`) {
				t.Fatalf("err = %v, want pass, sample and %q", err, tt.want)
			}
			for name := range derivetest.Files(t, run.dir, nil) {
				if strings.Contains(name, "s01") || strings.Contains(name, ".tmp") || strings.HasPrefix(name, "metrics") {
					t.Errorf("half-written or failed output left: %s", name)
				}
			}
		})
	}
}

func product(xs []int) int {
	n := 1
	for _, x := range xs {
		n *= x
	}
	return n
}

// Cancelling midway, then rerunning, gives the same files as one uninterrupted run.
func TestDeriveCancelAndResumeIsByteIdentical(t *testing.T) {
	cfg := mustConfig(t, testConfig)
	full := newMemRun(t, 8)
	if _, err := Derive(context.Background(), full, cfg, Options{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	want := derivetest.Files(t, full.dir, nil)

	run := newMemRun(t, 8)
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Derive(ctx, run, cfg, Options{Workers: 2, Progress: func(d, _ int, _ string) {
		if d == 3 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled derive: err = %v", err)
	}
	partial := derivetest.Files(t, run.dir, nil)
	if _, ok := partial[store.MetricsCSV]; ok {
		t.Error("cancelled derive wrote the metrics table")
	}
	if len(partial) >= len(want) {
		t.Fatalf("cancel came too late: %d of %d files", len(partial), len(want))
	}
	sum, err := Derive(context.Background(), run, cfg, Options{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Skipped == 0 {
		t.Error("rerun skipped nothing")
	}
	derivetest.Same(t, derivetest.Files(t, run.dir, nil), want)
}

// The kill test runs derive in a child process (this test binary) and SIGKILLs it.
const killEnv = "ATTNSCOPE_DERIVE_KILL_CHILD"

const slowConfig = testConfig + `  - name: slow
    input: attention
    function: slow_copy
    kwargs: {ms: 40}
`

func TestDeriveChildProcess(t *testing.T) {
	dir := os.Getenv(killEnv)
	if dir == "" {
		t.Skip("helper for TestDeriveKillAndRerun; runs only as its child process")
	}
	run := newMemRun(t, 12)
	run.dir = dir
	if _, err := Derive(context.Background(), run, mustConfig(t, slowConfig), Options{Workers: 2}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func TestDeriveKillAndRerun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process; skipped with -short")
	}
	full := newMemRun(t, 12)
	if _, err := Derive(context.Background(), full, mustConfig(t, slowConfig), Options{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	want := derivetest.Files(t, full.dir, nil)

	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDeriveChildProcess$")
	cmd.Env = append(os.Environ(), killEnv+"="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill once a few slow outputs exist (the whole run takes ≈ 12·40ms/2 workers).
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ents, _ := os.ReadDir(filepath.Join(dir, "derived", "slow"))
		if len(ents) >= 4 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	partial := derivetest.Files(t, dir, nil)
	if _, ok := partial[store.MetricsCSV]; ok {
		t.Skip("the child finished before it was killed; nothing to test")
	}
	run := newMemRun(t, 12)
	run.dir = dir
	// Temporary files of the killed writes may remain (named .<file>.tmp-*); they are not outputs.
	if _, err := Derive(context.Background(), run, mustConfig(t, slowConfig), Options{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	got := derivetest.Files(t, dir, nil)
	for k := range got {
		if strings.Contains(filepath.Base(k), ".tmp-") {
			delete(got, k)
		}
	}
	derivetest.Same(t, got, want)
}

func TestDeriveRefusesOutputsOfOtherSettings(t *testing.T) {
	run := newMemRun(t, 2)
	if _, err := Derive(context.Background(), run, mustConfig(t, testConfig), Options{}); err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(testConfig, "{scale: 2}", "{scale: 3}", 1)
	_, err := Derive(context.Background(), run, mustConfig(t, changed), Options{})
	if err == nil || !strings.Contains(err.Error(), `pass "heads"`) || !strings.Contains(err.Error(), `"scale":3`) {
		t.Fatalf("err = %v, want a refusal naming the pass and the new settings", err)
	}
}

// A pass may read a pass the run folder already holds (not in the config): its axes
// come from that pass's pass.json, and the passes reading it get theirs in turn.
func TestRunInputResolution(t *testing.T) {
	text := "passes:\n  - {name: a, input: human_matrix, function: col_sum}\n  - {name: b, input: a, function: col_sum}\n  - {name: c, function: head_sum}\n"
	cfg, err := ParseConfig("exp.yaml", []byte(text), testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.RunInputs(); len(got) != 1 || got[0] != "human_matrix" {
		t.Fatalf("run inputs %v", got)
	}
	if cfg.Passes[0].Axes() != nil || cfg.Passes[1].Axes() != nil || cfg.Passes[2].Axes() == nil {
		t.Fatalf("axes before resolution: %v %v %v", cfg.Passes[0].Axes(), cfg.Passes[1].Axes(), cfg.Passes[2].Axes())
	}
	// A run that cannot list its passes is refused with one sentence.
	if _, err := Derive(context.Background(), newMemRun(t, 1), cfg, Options{}); err == nil || !strings.Contains(err.Error(), "inputs human_matrix are passes of the run folder") {
		t.Fatalf("err = %v", err)
	}
	missing := func(name string) (store.PassInfo, error) {
		return store.PassInfo{}, fmt.Errorf("run r has no pass %q (passes: x)", name)
	}
	if err := cfg.ResolveRunInputs(missing); err == nil || !strings.Contains(err.Error(), `exp.yaml:2: pass "a": input "human_matrix": run r has no pass "human_matrix"`) {
		t.Fatalf("err = %v", err)
	}
	noAxes := func(name string) (store.PassInfo, error) { return store.PassInfo{Name: name}, nil }
	if err := cfg.ResolveRunInputs(noAxes); err == nil || !strings.Contains(err.Error(), "records no axes") {
		t.Fatalf("err = %v", err)
	}
	ok := func(name string) (store.PassInfo, error) {
		return store.PassInfo{Name: name, PassSettings: store.PassSettings{Axes: []store.Axis{axQuery, axKey}}}, nil
	}
	if err := cfg.ResolveRunInputs(ok); err != nil {
		t.Fatal(err)
	}
	if store.AxesString(cfg.Passes[0].Axes()) != "[key]" || store.AxesString(cfg.Passes[1].Axes()) != "[key]" {
		t.Fatalf("axes after resolution: %v %v", cfg.Passes[0].Axes(), cfg.Passes[1].Axes())
	}
}
