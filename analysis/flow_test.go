package analysis

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/graph/network"
	"gonum.org/v1/gonum/graph/simple"
)

// flowGraph returns the dense capacity matrix of the attention-flow graph:
// cap[(l)N+i][(l−1)N+j] = A_{l−1}[i,j].
func flowGraph(m *Tensor) ([][]float64, int) {
	L, N := m.Shape[0], m.Shape[1]
	T := (L + 1) * N
	c := make([][]float64, T)
	for k := range c {
		c[k] = make([]float64, T)
	}
	for l := 1; l <= L; l++ {
		a := m.Matrix(l-1, 0)
		for i := 0; i < N; i++ {
			for j := 0; j < N; j++ {
				c[l*N+i][(l-1)*N+j] = a[i*N+j]
			}
		}
	}
	return c, T
}

// edmondsKarp is a plain reference: shortest augmenting paths (BFS) on a dense residual
// matrix, as networkx's edmonds_karp used by the original.
// It also returns the capacity of the cut (S, V∖S), S = the nodes reachable from s in the
// final residual graph: max-flow = min-cut certifies optimality independently.
func edmondsKarp(capacity [][]float64, s, t int) (float64, float64) {
	n := len(capacity)
	r := make([][]float64, n)
	for i := range r {
		r[i] = append([]float64(nil), capacity[i]...)
	}
	total := 0.0
	parent := make([]int, n)
	for {
		for i := range parent {
			parent[i] = -1
		}
		parent[s] = s
		q := []int{s}
		for len(q) > 0 && parent[t] < 0 {
			x := q[0]
			q = q[1:]
			for y := 0; y < n; y++ {
				if parent[y] < 0 && r[x][y] > 1e-15 {
					parent[y] = x
					q = append(q, y)
				}
			}
		}
		if parent[t] < 0 {
			cut := 0.0
			for x := 0; x < n; x++ {
				for y := 0; y < n; y++ {
					if parent[x] >= 0 && parent[y] < 0 {
						cut += capacity[x][y]
					}
				}
			}
			return total, cut
		}
		f := math.Inf(1)
		for y := t; y != s; y = parent[y] {
			f = min(f, r[parent[y]][y])
		}
		for y := t; y != s; y = parent[y] {
			r[parent[y]][y] -= f
			r[y][parent[y]] += f
		}
		total += f
	}
}

func gonumFlow(capacity [][]float64, s, t int) float64 {
	g := simple.NewWeightedDirectedGraph(0, 0)
	for i := range capacity {
		g.AddNode(simple.Node(i))
	}
	for i, row := range capacity {
		for j, c := range row {
			if c > 0 {
				g.SetWeightedEdge(g.NewWeightedEdge(simple.Node(i), simple.Node(j), c))
			}
		}
	}
	return network.MaxFlowDinic(g, simple.Node(s), simple.Node(t), 1e-15)
}

func TestAttentionFlowOracle(t *testing.T) {
	m, _ := FromMatrices([][]float64{{1, 0}, {0.5, 0.5}}, [][]float64{{1, 0}, {0.25, 0.75}})
	ctx := context.Background()
	vals, err := FlowValues(ctx, m, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Raw max-flows: layer 2 token 1 → (0.75, 0.5).
	assertClose(t, "raw flows", vals.Data, []float64{1, 0, 0.5, 0.5, 1, 0, 0.75, 0.5}, 1e-12)

	// The original's quirk: layer-c rows stored in the column block of layer c−1.
	q, err := AttentionFlow(ctx, m, FlowOptions{PreviousLayerColumns: true})
	if err != nil {
		t.Fatal(err)
	}
	assertShape(t, "flow", q, 6, 6)
	want := make([]float64, 36)
	set := func(r, c int, v float64) { want[r*6+c] = v }
	set(2, 0, 1)
	set(3, 0, 0.5)
	set(3, 1, 0.5)
	set(4, 2, 1)
	set(5, 2, 0.6)
	set(5, 3, 0.4)
	assertClose(t, "flow (original column blocks)", q.Data, want, tol)

	// Intended: every row's flow lies in the input block (columns 0..N−1).
	f, err := AttentionFlow(ctx, m, FlowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want = make([]float64, 36)
	set(2, 0, 1)
	set(3, 0, 0.5)
	set(3, 1, 0.5)
	set(4, 0, 1)
	set(5, 0, 0.6)
	set(5, 1, 0.4)
	assertClose(t, "flow (input columns)", f.Data, want, tol)
}

func TestBinCapacities(t *testing.T) {
	m, _ := FromMatrices([][]float64{{1, 0}, {0.5, 0.5}}, [][]float64{{1, 0}, {0.25, 0.75}})
	BinCapacities(m, 5)
	distinct := map[float64]bool{}
	for _, v := range m.Data {
		distinct[v] = true
	}
	for _, v := range []float64{0, 0.25, 0.5, 0.75, 1} {
		if !distinct[v] {
			t.Fatalf("binned capacities %v lack %g", m.Data, v)
		}
	}
	if len(distinct) != 5 {
		t.Fatalf("binned capacities %v: %d distinct values, want 5", m.Data, len(distinct))
	}
	// Each value becomes the largest grid value ≤ it: grid 0, 0.25, …, 1 (max = 1).
	x, _ := FromMatrices([][]float64{{0.3, 0.74}, {0.99, 1}})
	BinCapacities(x, 5)
	assertClose(t, "floor to grid", x.Data, []float64{0.25, 0.5, 0.75, 1}, 0)
}

func randomMatrices(seed uint64, L, N int, causal bool, sparsity float64) *Tensor {
	r := rand.New(rand.NewPCG(seed, 77))
	m := New(L, N, N)
	for l := 0; l < L; l++ {
		a := m.Matrix(l, 0)
		for i := 0; i < N; i++ {
			s := 0.0
			for j := 0; j < N; j++ {
				if (causal && j > i) || r.Float64() < sparsity {
					continue
				}
				a[i*N+j] = r.Float64()
				s += a[i*N+j]
			}
			if s == 0 {
				a[i*N+i], s = 1, 1
			}
			for j := 0; j < N; j++ {
				a[i*N+j] /= s
			}
		}
	}
	return m
}

// TestFlowAgainstReferences compares every max-flow with Edmonds-Karp (and a sample with
// gonum's Dinic) on random layer matrices: causal and full, dense and sparse, binned.
func TestFlowAgainstReferences(t *testing.T) {
	cases := []struct {
		L, N     int
		causal   bool
		sparsity float64
		bins     int
	}{
		{4, 5, true, 0, 0},
		{5, 6, false, 0, 0},
		{4, 6, false, 0.5, 0},
		{3, 7, true, 0.3, 0},
		{4, 5, false, 0, 10},
		{6, 4, false, 0.6, 0},
	}
	for ci, tc := range cases {
		for seed := uint64(1); seed <= 3; seed++ {
			m := randomMatrices(seed*100+uint64(ci), tc.L, tc.N, tc.causal, tc.sparsity)
			vals, err := FlowValues(context.Background(), m, tc.bins)
			if err != nil {
				t.Fatal(err)
			}
			b := m
			if tc.bins > 0 {
				b = m.Clone()
				BinCapacities(b, tc.bins)
			}
			g, _ := flowGraph(b)
			N := tc.N
			for c := 1; c <= tc.L; c++ {
				for i := 0; i < N; i++ {
					for v := 0; v < N; v++ {
						got := vals.At(c-1, i, v)
						want, cut := edmondsKarp(g, c*N+i, v)
						if math.Abs(got-want) > 1e-9 || math.Abs(got-cut) > 1e-9 {
							t.Fatalf("case %d seed %d: flow (%d,%d)→%d = %.15g, Edmonds-Karp %.15g, its min cut %.15g", ci, seed, c, i, v, got, want, cut)
						}
						// gonum v0.17.0's MaxFlowDinic returns less than the max-flow on some
						// graphs with tied capacities (binned case 4: 0.5695 where Edmonds-Karp,
						// this code and the min cut give 0.8543), so it
						// is compared on the unbinned cases only.
						if tc.bins == 0 {
							if gn := gonumFlow(g, c*N+i, v); math.Abs(got-gn) > 1e-9 {
								t.Fatalf("case %d seed %d: flow (%d,%d)→%d = %.15g, gonum Dinic %.15g", ci, seed, c, i, v, got, gn)
							}
						}
					}
				}
			}
		}
	}
}

func TestFlowInputsAndErrors(t *testing.T) {
	att := randomAttention(5, 3, 2, 4, true)
	for _, in := range []FlowInput{FlowRaw, FlowResidual, FlowRollout} {
		m, err := FlowMatrices(att, in)
		if err != nil {
			t.Fatal(err)
		}
		assertShape(t, string(in), m, 3, 4, 4)
		f, err := AttentionFlow(context.Background(), m, FlowOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Every non-input row sums to 1 (each node reaches some input token).
		T := 16
		for u := 4; u < T; u++ {
			s := 0.0
			for _, v := range f.Data[u*T : (u+1)*T] {
				s += v
			}
			if math.Abs(s-1) > 1e-12 {
				t.Fatalf("%s: row %d sums to %g", in, u, s)
			}
		}
	}
	if _, err := FlowMatrices(att, "weird"); err == nil {
		t.Fatal("unknown flow input accepted")
	}
	neg, _ := FromMatrices([][]float64{{1, 0}, {-0.5, 1.5}})
	if _, err := AttentionFlow(context.Background(), neg, FlowOptions{}); err == nil {
		t.Fatal("negative capacity accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := AttentionFlow(ctx, randomMatrices(1, 4, 20, true, 0), FlowOptions{}); err == nil {
		t.Fatal("cancelled context not reported")
	}
}

func benchFlow(b *testing.B, L, N int, causal bool) {
	m := randomMatrices(1, L, N, causal, 0)
	b.ResetTimer()
	for b.Loop() {
		if _, err := AttentionFlow(context.Background(), m, FlowOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAttentionFlow is the full flow matrix for 12 layers × 16…128 tokens of random
// causal (GPT-like) and full (BERT-like) attention.
func BenchmarkAttentionFlow(b *testing.B) {
	for _, n := range []int{16, 32, 64, 128} {
		b.Run("causal/L12/N"+itoa(n), func(b *testing.B) { benchFlow(b, 12, n, true) })
	}
	for _, n := range []int{16, 32, 64, 128} {
		b.Run("full/L12/N"+itoa(n), func(b *testing.B) { benchFlow(b, 12, n, false) })
	}
}

func itoa(n int) string {
	s := ""
	for n > 0 || s == "" {
		s = string(rune('0'+n%10)) + s
		n /= 10
	}
	return s
}

// TestFlowLargerAgainstEdmondsKarp checks a sample of flows on larger residual-augmented
// and rollout matrices (the inputs of the paper's notebooks) against Edmonds-Karp.
func TestFlowLargerAgainstEdmondsKarp(t *testing.T) {
	for _, in := range []FlowInput{FlowResidual, FlowRollout, FlowRaw} {
		for _, causal := range []bool{false, true} {
			att := randomAttention(21, 6, 3, 12, causal)
			m, err := FlowMatrices(att, in)
			if err != nil {
				t.Fatal(err)
			}
			vals, err := FlowValues(context.Background(), m, 0)
			if err != nil {
				t.Fatal(err)
			}
			g, _ := flowGraph(m)
			N := 12
			for c := 3; c <= 6; c++ {
				for i := 0; i < N; i += 3 {
					for v := 0; v <= i || (!causal && v < N); v += 2 {
						want, cut := edmondsKarp(g, c*N+i, v)
						if got := vals.At(c-1, i, v); math.Abs(got-want) > 1e-9 || math.Abs(got-cut) > 1e-9 {
							t.Fatalf("%s causal=%v: flow (%d,%d)→%d = %.15g, Edmonds-Karp %.15g, min cut %.15g", in, causal, c, i, v, got, want, cut)
						}
					}
				}
			}
		}
	}
}
