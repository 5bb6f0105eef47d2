package analysis

import (
	"context"
	"fmt"
	"math"
)

// FlowOptions configure AttentionFlow.
type FlowOptions struct {
	// Bins is followup-attention's n_bin_weights: when > 0, every capacity is replaced by
	// the largest value ≤ it of the grid linspace(min(Adj), max(Adj), Bins), taken over the
	// whole adjacency matrix (zeros included). 0 keeps the weights as they are.
	Bins int
	// PreviousLayerColumns reproduces the original's quirk (spec §1.4, §1.12): the flow of
	// a node of layer c is stored in the column block of layer c−1 instead of the input
	// block (columns 0..N−1, the intended layout and the default).
	PreviousLayerColumns bool
}

// flowEps is the residual capacity below which an edge counts as saturated, relative to
// the largest capacity of the graph.
const flowEps = 1e-13

// FlowInput names the layer matrices attention flow runs on.
type FlowInput string

// Flow inputs of the original and its notebooks.
const (
	FlowRaw      FlowInput = "raw"      // C_l = mean_h A[l,h] (compute_attention_flow_from_tensor)
	FlowResidual FlowInput = "residual" // C_l = 0.5·mean_h A[l,h] + 0.5·I (add_residual_weights)
	FlowRollout  FlowInput = "rollout"  // C_l = R_l, rollout with residual of the head means
)

// FlowMatrices builds the [L,N,N] layer matrices of attention flow from a [L,H,N,N] tensor.
func FlowMatrices(att *Tensor, in FlowInput) (*Tensor, error) {
	switch in {
	case FlowRaw:
		return ReduceHeads(att, HeadMean)
	case FlowResidual:
		c, err := ReduceHeads(att, HeadMean)
		if err != nil {
			return nil, err
		}
		return ResidualWeights(c)
	case FlowRollout:
		return Rollout(att, RolloutOptions{Heads: HeadMean, Residual: true})
	}
	return nil, fmt.Errorf("flow input %q: want raw, residual or rollout", in)
}

// AttentionFlow is attention flow (Abnar & Zuidema 2020; followup-attention's
// compute_attention_flow over decoder.get_adjacency_matrix) on layer matrices C ([L,N,N],
// see FlowMatrices). The graph has (L+1)·N nodes, node l·N+k = token k after layer l
// (l = 0: the input), with an edge (l,i) → (l−1,j) of capacity C_{l−1}[i,j]. Output: the
// ((L+1)N)×((L+1)N) flow matrix; row c·N+i holds maxflow((c,i) → (0,v)) for the inputs v,
// divided by the row sum (a row with no flow stays 0, where numpy gives NaN), in columns
// v (or (c−1)·N+v with PreviousLayerColumns). Input rows are 0. ctx cancels it.
func AttentionFlow(ctx context.Context, layers *Tensor, o FlowOptions) (*Tensor, error) {
	vals, err := FlowValues(ctx, layers, o.Bins)
	if err != nil {
		return nil, err
	}
	L, N := vals.Shape[0], vals.Shape[1]
	M := (L + 1) * N
	out := New(M, M)
	for c := 1; c <= L; c++ {
		col := 0
		if o.PreviousLayerColumns {
			col = (c - 1) * N
		}
		f := vals.Matrix(c-1, 0)
		for i := 0; i < N; i++ {
			row := f[i*N : (i+1)*N]
			sum := 0.0
			for _, v := range row {
				sum += v
			}
			dst := out.Data[(c*N+i)*M+col : (c*N+i)*M+col+N]
			for k, v := range row {
				if sum > 0 {
					dst[k] = v / sum
				}
			}
		}
	}
	return out, nil
}

// FlowValues returns the raw max-flow values of attention flow, [L,N,N]:
// F[c−1][i,v] = maxflow((c,i) → (0,v)) on the graph of AttentionFlow, with capacities
// binned when bins > 0. They are exact max-flows (Dinic's algorithm on the sub-graph of
// nodes that lie on a source→sink path, in parallel over sources; layers 1 and 2 in
// closed form), equal to the original's Edmonds–Karp. Capacities must be finite and ≥ 0.
func FlowValues(ctx context.Context, layers *Tensor, bins int) (*Tensor, error) {
	if err := validateMatrices(layers, true); err != nil {
		return nil, err
	}
	if bins < 0 {
		return nil, inputErr(-1, -1, -1, "flow bins is %d, want ≥ 0", bins)
	}
	L, N := layers.Shape[0], layers.Shape[1]
	caps := layers
	if bins > 0 {
		caps = layers.Clone()
		BinCapacities(caps, bins)
	}
	g := newFlowNet(caps)
	out := New(L, N, N)

	// Deep sources first: they are the expensive ones, so the workers end together.
	sources := make([]int, L)
	for k := range sources {
		sources[k] = L - k
	}
	err := rowJobs(ctx, sources, N, func() func(c, i int) {
		s := g.newScratch()
		return func(c, i int) { g.flowsFrom(s, c, i, out.Matrix(c-1, 0)[i*N:(i+1)*N]) }
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// BinCapacities applies followup-attention's weight binning in place to layer matrices
// ([L,N,N]): g = linspace(lo, hi, n) with lo = min(0, min C), hi = max(0, max C) (the
// adjacency matrix holds zeros), and each capacity x becomes g[digitize(x, g) − 1], the
// largest grid value ≤ x. n ≤ 0 leaves c unchanged.
func BinCapacities(c *Tensor, n int) {
	if n <= 0 {
		return
	}
	out := binCapacities(c, n)
	copy(c.Data, out.Data)
}

// binCapacities applies followup-attention's weight binning: g = linspace(lo, hi, n) over
// the adjacency matrix (lo = min(0, min C), hi = max(0, max C), since the adjacency
// matrix holds zeros), and each capacity x becomes g[digitize(x, g) − 1].
func binCapacities(c *Tensor, n int) *Tensor {
	lo, hi := 0.0, 0.0
	for _, v := range c.Data {
		lo = math.Min(lo, v)
		hi = math.Max(hi, v)
	}
	grid := linspace(lo, hi, n)
	out := c.Clone()
	for k, x := range out.Data {
		// number of grid values ≤ x (grid is non-decreasing), minus one
		a, b := 0, len(grid)
		for a < b {
			m := (a + b) / 2
			if grid[m] <= x {
				a = m + 1
			} else {
				b = m
			}
		}
		if a > 0 {
			out.Data[k] = grid[a-1]
		}
	}
	return out
}

// linspace follows numpy.linspace(start, stop, n) (endpoint included):
// y[i] = start + i·(stop−start)/(n−1), y[n−1] = stop.
func linspace(start, stop float64, n int) []float64 {
	if n == 1 {
		return []float64{start}
	}
	step := (stop - start) / float64(n-1)
	y := make([]float64, n)
	for i := range y {
		y[i] = float64(i)*step + start
	}
	y[n-1] = stop
	return y
}

// flowNet holds the layered attention graph: layer matrices C_0..C_{L−1}, where
// node (l,a), l ≥ 1, has edges to (l−1,b) with capacity C_{l−1}[a,b] > 0.
type flowNet struct {
	L, N int
	caps [][]float64 // caps[l] = C_l, N×N
	out  [][][]int32 // out[l][a] = {b : C_l[a,b] > 0}
	// coreach[v][l*N+a] is true when node (l,a) (1 ≤ l ≤ L) reaches input v along
	// positive-capacity edges; coreach[v][v] (layer 0) is true.
	coreach [][]bool
	// suffix[v*(L+1)+l] = t when the nodes of layer l that reach input v are exactly the
	// tokens t..N−1 (causal attention: t = v), −1 otherwise; phase 1 of dinic then starts
	// each node's scan at its first forward arc into that range.
	suffix []int32
	eps    float64
}

func newFlowNet(c *Tensor) *flowNet {
	L, N := c.Shape[0], c.Shape[1]
	g := &flowNet{L: L, N: N, caps: make([][]float64, L), out: make([][][]int32, L)}
	maxCap := 0.0
	for l := 0; l < L; l++ {
		m := c.Matrix(l, 0)
		g.caps[l] = m
		g.out[l] = make([][]int32, N)
		for a := 0; a < N; a++ {
			for b, w := range m[a*N : (a+1)*N] {
				if w > 0 {
					g.out[l][a] = append(g.out[l][a], int32(b))
					maxCap = math.Max(maxCap, w)
				}
			}
		}
	}
	g.eps = flowEps * maxCap
	g.coreach = make([][]bool, N)
	for v := 0; v < N; v++ {
		r := make([]bool, (L+1)*N)
		r[v] = true
		for l := 1; l <= L; l++ {
			for a := 0; a < N; a++ {
				for _, b := range g.out[l-1][a] {
					if r[(l-1)*N+int(b)] {
						r[l*N+a] = true
						break
					}
				}
			}
		}
		g.coreach[v] = r
	}
	g.suffix = make([]int32, N*(L+1))
	for v := 0; v < N; v++ {
		for l := 0; l <= L; l++ {
			r := g.coreach[v][l*N : (l+1)*N]
			t := N
			for t > 0 && r[t-1] {
				t--
			}
			for b := 0; b < t; b++ {
				if r[b] {
					t = -1
					break
				}
			}
			g.suffix[v*(L+1)+l] = int32(t)
		}
	}
	return g
}

// flowScratch is one worker's reusable memory: the network of one source, built once in
// compressed (CSR) form and reused for every sink with fresh residual capacities.
type flowScratch struct {
	reach []bool  // global node reachable from the current source
	local []int32 // global node → local id (−1 when absent)
	nodes []int32 // local id → global node (the sink T: −1)
	// arcs of local node x: [start[x], start[x+1]); arc e goes to to[e], its reverse is
	// rev[e]; cap0 holds the capacities of the source's network, res the residuals.
	start, to, rev []int32
	fwd            []int32 // first forward arc (to the layer below, or to T) of each node
	skip           []int32 // forward arcs at fwd into nodes that cannot reach the sink
	cap0, res      []float64
	dirty          []int32 // arcs whose residual push changed (restored after each sink)
	sinkArcs       []int32 // arcs (1,a) → T
	sinkRow        []int32 // the input row a of each sink arc
	deg, fill      []int32
	level, iter    []int32
	queue          []int32
}

func (g *flowNet) newScratch() *flowScratch {
	n := (g.L + 1) * g.N
	s := &flowScratch{reach: make([]bool, n), local: make([]int32, n)}
	for k := range s.local {
		s.local[k] = -1
	}
	return s
}

const sinkLocal = 1 // local id of the sink T; the source is 0

// flowsFrom fills row[v] with maxflow((c,i) → (0,v)) for every input token v.
func (g *flowNet) flowsFrom(s *flowScratch, c, i int, row []float64) {
	N := g.N
	for k := range row {
		row[k] = 0
	}
	if c == 1 {
		copy(row, g.caps[0][i*N:(i+1)*N])
		return
	}
	if c == 2 {
		// Paths (2,i) → (1,b) → (0,v) are edge-disjoint: the max-flow is Σ_b min(C_1[i,b], C_0[b,v]).
		c1 := g.caps[1][i*N : (i+1)*N]
		for _, b := range g.out[1][i] {
			w := c1[b]
			c0 := g.caps[0][int(b)*N : (int(b)+1)*N]
			for v := range row {
				row[v] += math.Min(w, c0[v])
			}
		}
		return
	}
	// Nodes reachable from the source.
	for k := range s.reach {
		s.reach[k] = false
	}
	s.reach[c*N+i] = true
	for l := c; l >= 1; l-- {
		for a := 0; a < N; a++ {
			if !s.reach[l*N+a] {
				continue
			}
			for _, b := range g.out[l-1][a] {
				s.reach[(l-1)*N+int(b)] = true
			}
		}
	}
	g.build(s, c, i)
	a0 := g.caps[0]
	copy(s.res, s.cap0)
	for v := 0; v < N; v++ {
		if !s.reach[v] {
			continue
		}
		// s.res equals s.cap0 here (every arc push changed was restored), as a fresh copy.
		for k, e := range s.sinkArcs {
			s.res[e] = a0[int(s.sinkRow[k])*N+v]
		}
		row[v] = g.dinic(s, v, c)
		for _, e := range s.dirty {
			s.res[e], s.res[s.rev[e]] = s.cap0[e], s.cap0[s.rev[e]]
		}
		s.dirty = s.dirty[:0]
	}
	for _, node := range s.nodes {
		if node >= 0 {
			s.local[node] = -1
		}
	}
}

// build lays out the network of source (c,i): the source, the reachable nodes of layers
// c−1..1, and a sink T fed by every layer-1 node (capacities set per input token).
func (g *flowNet) build(s *flowScratch, c, i int) {
	N := g.N
	s.nodes = s.nodes[:0]
	add := func(node int) {
		if node >= 0 {
			s.local[node] = int32(len(s.nodes))
		}
		s.nodes = append(s.nodes, int32(node))
	}
	add(c*N + i)
	add(-1) // T
	for l := c - 1; l >= 1; l-- {
		for a := 0; a < N; a++ {
			if s.reach[l*N+a] {
				add(l*N + a)
			}
		}
	}
	n := len(s.nodes)
	s.deg = resizeI32(s.deg, n+1)
	for k := range s.deg {
		s.deg[k] = 0
	}
	// Pass 1 counts arcs, pass 2 fills them.
	for pass := 0; pass < 2; pass++ {
		for x := 0; x < n; x++ {
			node := int(s.nodes[x])
			if node < 0 {
				continue
			}
			if pass == 1 {
				// Nodes above x were laid out first, so its reverse arcs are all in place.
				s.fwd[x] = s.fill[x]
			}
			l, a := node/N, node%N
			if l == 1 {
				if pass == 0 {
					s.deg[x]++
					s.deg[sinkLocal]++
				} else {
					e := g.arc(s, int32(x), sinkLocal, 0)
					s.sinkArcs = append(s.sinkArcs, e)
					s.sinkRow = append(s.sinkRow, int32(a))
				}
				continue
			}
			row := g.caps[l-1][a*N : (a+1)*N]
			for _, b := range g.out[l-1][a] {
				y := s.local[(l-1)*N+int(b)]
				if pass == 0 {
					s.deg[x]++
					s.deg[y]++
				} else {
					g.arc(s, int32(x), y, row[b])
				}
			}
		}
		if pass == 0 {
			s.start = resizeI32(s.start, n+1)
			s.start[0] = 0
			for x := 0; x < n; x++ {
				s.start[x+1] = s.start[x] + s.deg[x]
			}
			m := int(s.start[n])
			s.to = resizeI32(s.to, m)
			s.rev = resizeI32(s.rev, m)
			if cap(s.cap0) < m {
				s.cap0 = make([]float64, m)
				s.res = make([]float64, m)
			}
			s.cap0, s.res = s.cap0[:m], s.res[:m]
			s.fill = resizeI32(s.fill, n)
			s.fwd = resizeI32(s.fwd, n)
			s.skip = resizeI32(s.skip, n)
			copy(s.fill, s.start[:n])
			s.sinkArcs, s.sinkRow = s.sinkArcs[:0], s.sinkRow[:0]
		}
	}
	s.level = resizeI32(s.level, n)
	s.iter = resizeI32(s.iter, n)
}

// arc adds x → y with capacity w and its reverse arc; it returns the forward arc.
func (g *flowNet) arc(s *flowScratch, x, y int32, w float64) int32 {
	e, r := s.fill[x], s.fill[y]
	s.fill[x]++
	s.fill[y]++
	s.to[e], s.rev[e], s.cap0[e] = y, r, w
	s.to[r], s.rev[r], s.cap0[r] = x, e, 0
	return e
}

func resizeI32(b []int32, n int) []int32 {
	if cap(b) < n {
		return make([]int32, n)
	}
	return b[:n]
}

// dinic computes the max-flow from the source (local 0, layer c) to T on the residuals
// s.res, visiting only nodes that reach the current input token (co, by global id): a
// max-flow decomposes into source→sink paths of the original DAG, so no other node
// carries flow. The first phase needs no search: every DAG path has length c, so the
// level of a node is its layer distance from the source. When its flow reaches the bound
// min(capacity out of the source, capacity into T) no further phase can add to it.
//
// Phase 1 scans only the arcs it can use: an arc up a layer leads to a lower level, and an
// arc into a node that does not reach v to level −1, so neither is ever taken; where the
// nodes reaching v are a token suffix of the layer below (suffix), the forward arcs
// before it are skipped by binary search. The flow found is the same, push for push.
func (g *flowNet) dinic(s *flowScratch, v, c int) float64 {
	co := g.coreach[v]
	N := int32(g.N)
	for x, node := range s.nodes {
		switch {
		case x == sinkLocal:
			s.level[x] = int32(c)
		case co[node]:
			s.level[x] = int32(c) - node/N
		default:
			s.level[x] = -1
		}
	}
	out, in := 0.0, 0.0
	for e := s.start[0]; e < s.start[1]; e++ {
		if s.level[s.to[e]] >= 0 {
			out += s.res[e]
		}
	}
	for _, e := range s.sinkArcs {
		in += s.res[e]
	}
	bound := math.Min(out, in)
	g.phase1Iter(s, v)
	total := g.pushFrom(s, 0, bound)
	if total >= bound-1e-12 {
		return total
	}
	for {
		for k := range s.level {
			s.level[k] = -1
		}
		s.level[0] = 0
		s.queue = append(s.queue[:0], 0)
		for q := 0; q < len(s.queue); q++ {
			x := s.queue[q]
			if lt := s.level[sinkLocal]; lt >= 0 && s.level[x] >= lt {
				break // no shorter path to T can pass through x or later nodes
			}
			for e := s.start[x]; e < s.start[x+1]; e++ {
				if e == s.fwd[x] {
					e += s.skip[x] // arcs into nodes that cannot reach the sink
					if e >= s.start[x+1] {
						break
					}
				}
				y := s.to[e]
				if s.level[y] >= 0 || s.res[e] <= g.eps {
					continue
				}
				if y != sinkLocal && !co[s.nodes[y]] {
					continue
				}
				s.level[y] = s.level[x] + 1
				s.queue = append(s.queue, y)
			}
		}
		if s.level[sinkLocal] < 0 {
			return total
		}
		total = g.pushLevel(s, total, bound)
		if total >= bound-1e-12 {
			return total
		}
	}
}

// pushLevel sends flow from the source along the current level graph until the total
// reaches bound or no path is left, and returns the new total. The source sends at most
// what the bound leaves, so the search stops once it is met.
func (g *flowNet) pushLevel(s *flowScratch, total, bound float64) float64 {
	copy(s.iter, s.start[:len(s.iter)])
	return g.pushFrom(s, total, bound)
}

// phase1Iter sets each node's first arc for phase 1 (see dinic): its first forward arc,
// past the targets below the suffix of nodes that reach input v when there is one.
func (g *flowNet) phase1Iter(s *flowScratch, v int) {
	N, L := g.N, g.L
	for x, node := range s.nodes {
		if node < 0 {
			s.iter[x] = s.start[x] // T is never scanned
			continue
		}
		s.iter[x] = s.fwd[x]
		s.skip[x] = 0
		l, a := int(node)/N, int(node)%N
		if l < 2 {
			continue // a layer-1 node's only forward arc goes to T
		}
		t := g.suffix[v*(L+1)+l-1]
		if t <= 0 {
			continue
		}
		targets := g.out[l-1][a]
		lo, hi := 0, len(targets)
		for lo < hi {
			m := (lo + hi) / 2
			if targets[m] < t {
				lo = m + 1
			} else {
				hi = m
			}
		}
		s.iter[x] += int32(lo)
		s.skip[x] = int32(lo)
	}
}

// pushFrom is pushLevel with the scan positions s.iter already set.
func (g *flowNet) pushFrom(s *flowScratch, total, bound float64) float64 {
	for total < bound-1e-12 {
		f := g.push(s, 0, bound-total)
		if f <= 0 {
			break
		}
		total += f
	}
	return total
}

// push sends up to limit units from x to T along level-increasing residual arcs (several
// paths at once) and returns the amount sent; a node that can send no more is removed
// from the level graph.
func (g *flowNet) push(s *flowScratch, x int32, limit float64) float64 {
	if x == sinkLocal {
		return limit
	}
	sent := 0.0
	for ; s.iter[x] < s.start[x+1]; s.iter[x]++ {
		if s.iter[x] == s.fwd[x] {
			s.iter[x] += s.skip[x] // arcs into nodes that cannot reach the sink
			if s.iter[x] >= s.start[x+1] {
				break
			}
		}
		e := s.iter[x]
		y := s.to[e]
		if s.res[e] <= g.eps || s.level[y] != s.level[x]+1 {
			continue
		}
		f := g.push(s, y, math.Min(limit-sent, s.res[e]))
		if f > 0 {
			s.res[e] -= f
			s.res[s.rev[e]] += f
			s.dirty = append(s.dirty, e)
			sent += f
			if limit-sent <= g.eps {
				return sent
			}
		}
	}
	s.level[x] = -1
	return sent
}
