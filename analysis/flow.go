package analysis

import (
	"context"
	"fmt"
	"math"
	"math/bits"
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
// The residual network is dense and node sets are bitsets, so a search or a blocking
// flow skips in 64-token words the arcs it cannot take; the pushes, and so the values
// bit for bit, are those of the adjacency-list Dinic it replaced (TestFlowValuesGolden).
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

// flowNet holds the layered attention graph: layer matrices C_0..C_{L−1}, where node
// (l,a), l ≥ 1, has an arc to (l−1,b) of capacity C_{l−1}[a,b] when it is > 0. Node sets
// are bitsets with one block of W words per layer (bit b of block l = token b of layer l).
type flowNet struct {
	L, N, W int
	caps    []float64 // caps[l·N² + a·N + b] = C_l[a,b]
	// out[(l·N+a)·W …] is the bitset of the tokens b with C_l[a,b] > 0: the arcs of (l+1,a).
	out []uint64
	// co[v·(L+1)·W + l·W …] is the bitset of the nodes of layer l that reach input v along
	// positive-capacity arcs (layer 0: v alone).
	co  []uint64
	eps float64
}

func newFlowNet(c *Tensor) *flowNet {
	L, N := c.Shape[0], c.Shape[1]
	W := (N + 63) / 64
	g := &flowNet{L: L, N: N, W: W, caps: c.Data, out: make([]uint64, L*N*W)}
	maxCap := 0.0
	for l := 0; l < L; l++ {
		for a := 0; a < N; a++ {
			bs := g.out[(l*N+a)*W : (l*N+a+1)*W]
			for b, w := range g.caps[(l*N+a)*N : (l*N+a+1)*N] {
				if w > 0 {
					bs[b>>6] |= 1 << (b & 63)
					maxCap = math.Max(maxCap, w)
				}
			}
		}
	}
	g.eps = flowEps * maxCap
	B := (L + 1) * W
	g.co = make([]uint64, N*B)
	for v := 0; v < N; v++ {
		r := g.co[v*B : (v+1)*B]
		r[v>>6] |= 1 << (v & 63)
		for l := 1; l <= L; l++ {
			below := r[(l-1)*W : l*W]
			for a := 0; a < N; a++ {
				if intersects(g.out[((l-1)*N+a)*W:((l-1)*N+a+1)*W], below) {
					r[l*W+a>>6] |= 1 << (a & 63)
				}
			}
		}
	}
	return g
}

func intersects(a, b []uint64) bool {
	for k := range a {
		if a[k]&b[k] != 0 {
			return true
		}
	}
	return false
}

// nextCommon returns the first t ≥ from whose bit is set in both a and b, or −1.
func nextCommon(a, b []uint64, from int) int {
	w := from >> 6
	if w >= len(a) {
		return -1
	}
	m := a[w] & b[w] & (^uint64(0) << (from & 63))
	for m == 0 {
		w++
		if w >= len(a) {
			return -1
		}
		m = a[w] & b[w]
	}
	return w<<6 + bits.TrailingZeros64(m)
}

// flowScratch is one worker's reusable memory. The residual network of a source (c,i)
// is dense: fres[l·N²+a·N+b] is the residual of the arc (l+1,a) → (l,b) (initially
// C_l[a,b]) and rres the residual of its reverse arc (initially 0); sres[a] is the
// residual of (1,a) → T. Only the entries a push changed (dirty) are restored per sink.
type flowScratch struct {
	c, i       int
	fres, rres []float64
	sres       []float64
	dirty      []int // entries of fres and rres that a push changed
	dirtyFlow  []int // words of flow set this sink
	// flow[(l·N+a)·W …]: tokens b of layer l+1 whose arc (l+1,b) → (l,a) has carried
	// flow this sink (a superset of the reverse arcs with residual).
	flow  []uint64
	reach []uint64 // nodes reachable from the source, (L+1) blocks
	// levels[k]: the live nodes of level k, (L+1) blocks; levelT is the sink's level.
	levels [][]uint64
	nlev   int
	levelT int
	unseen []uint64
	// iter[x] is the scan position of node x (see push), valid when iterEp[x] = ep.
	iter, iterEp []int32
	ep           int32
}

func (g *flowNet) newScratch() *flowScratch {
	L, N, W := g.L, g.N, g.W
	s := &flowScratch{
		fres:   append([]float64(nil), g.caps...),
		rres:   make([]float64, L*N*N),
		sres:   make([]float64, N),
		flow:   make([]uint64, (L+1)*N*W),
		reach:  make([]uint64, (L+1)*W),
		unseen: make([]uint64, (L+1)*W),
		iter:   make([]int32, (L+1)*N),
		iterEp: make([]int32, (L+1)*N),
	}
	return s
}

// flowsFrom fills row[v] with maxflow((c,i) → (0,v)) for every input token v.
func (g *flowNet) flowsFrom(s *flowScratch, c, i int, row []float64) {
	N, W := g.N, g.W
	for k := range row {
		row[k] = 0
	}
	if c == 1 {
		copy(row, g.caps[i*N:(i+1)*N])
		return
	}
	if c == 2 {
		// Paths (2,i) → (1,b) → (0,v) are edge-disjoint: the max-flow is Σ_b min(C_1[i,b], C_0[b,v]).
		c1 := g.caps[N*N+i*N : N*N+(i+1)*N]
		out := g.out[(N+i)*W : (N+i+1)*W]
		for b := nextCommon(out, out, 0); b >= 0; b = nextCommon(out, out, b+1) {
			w := c1[b]
			c0 := g.caps[b*N : (b+1)*N]
			for v := range row {
				row[v] += min(w, c0[v])
			}
		}
		return
	}
	s.c, s.i = c, i
	// Nodes reachable from the source.
	for k := range s.reach {
		s.reach[k] = 0
	}
	s.reach[c*W+i>>6] |= 1 << (i & 63)
	for l := c; l >= 1; l-- {
		up, below := s.reach[l*W:(l+1)*W], s.reach[(l-1)*W:l*W]
		for a := nextCommon(up, up, 0); a >= 0; a = nextCommon(up, up, a+1) {
			for k, m := range g.out[((l-1)*N+a)*W : ((l-1)*N+a+1)*W] {
				below[k] |= m
			}
		}
	}
	r0, r1 := s.reach[:W], s.reach[W:2*W]
	for v := nextCommon(r0, r0, 0); v >= 0; v = nextCommon(r0, r0, v+1) {
		for a := nextCommon(r1, r1, 0); a >= 0; a = nextCommon(r1, r1, a+1) {
			s.sres[a] = g.caps[a*N+v]
		}
		row[v] = g.dinic(s, v)
		for _, off := range s.dirty {
			s.fres[off], s.rres[off] = g.caps[off], 0
		}
		for _, k := range s.dirtyFlow {
			s.flow[k] = 0
		}
		s.dirty, s.dirtyFlow = s.dirty[:0], s.dirtyFlow[:0]
	}
}

// level returns the cleared bitset of level k, growing the level list as needed.
func (s *flowScratch) level(k, size int) []uint64 {
	for len(s.levels) <= k {
		s.levels = append(s.levels, make([]uint64, size))
	}
	if k >= s.nlev {
		s.nlev = k + 1
	}
	return s.levels[k]
}

func (s *flowScratch) clearLevels() {
	for k := 0; k < s.nlev; k++ {
		clear(s.levels[k])
	}
	s.nlev = 0
}

// dinic computes the max-flow from the source (c,i) to T (fed by the arcs (1,a) → T of
// capacity C_0[a,v]) on the residuals of s, visiting only nodes that reach input v (co): a
// max-flow decomposes into source→sink paths of the original DAG, so no other node
// carries flow. It is Dinic's algorithm with the arcs of each node taken in a fixed
// order (see push). The first phase needs no search: every DAG path has length c, so the
// level of a node is its layer distance from the source. When its flow reaches the bound
// min(capacity out of the source, capacity into T) no further phase can add to it.
func (g *flowNet) dinic(s *flowScratch, v int) float64 {
	N, W, c, i := g.N, g.W, s.c, s.i
	B := (g.L + 1) * W
	co := g.co[v*B : (v+1)*B]
	out, in := 0.0, 0.0
	src := g.out[((c-1)*N+i)*W : ((c-1)*N+i+1)*W]
	for b := nextCommon(src, co[(c-1)*W:c*W], 0); b >= 0; b = nextCommon(src, co[(c-1)*W:c*W], b+1) {
		out += s.fres[(c-1)*N*N+i*N+b]
	}
	r1 := s.reach[W : 2*W]
	for a := nextCommon(r1, r1, 0); a >= 0; a = nextCommon(r1, r1, a+1) {
		in += s.sres[a]
	}
	bound := math.Min(out, in)

	// Phase 1: level of (l,a) = c − l for the nodes that reach v.
	s.clearLevels()
	s.level(0, B)[c*W+i>>6] |= 1 << (i & 63)
	for l := 1; l < c; l++ {
		lv := s.level(c-l, B)
		for k := l * W; k < (l+1)*W; k++ {
			lv[k] = s.reach[k] & co[k]
		}
	}
	s.levelT = c
	s.ep++
	total := g.pushFrom(s, 0, bound)
	if total >= bound-1e-12 {
		return total
	}
	for g.bfs(s, co) {
		s.ep++
		total = g.pushFrom(s, total, bound)
		if total >= bound-1e-12 {
			return total
		}
	}
	return total
}

// bfs sets the levels of the next phase: the residual distances from the source of the
// nodes that reach v, up to the sink's distance. It reports whether the sink is reached.
// The levels are those of a breadth-first search in any order.
func (g *flowNet) bfs(s *flowScratch, co []uint64) bool {
	N, W, c := g.N, g.W, s.c
	B := (g.L + 1) * W
	s.clearLevels()
	for k := range s.unseen {
		s.unseen[k] = s.reach[k] & co[k]
	}
	src := c*W + s.i>>6
	s.unseen[src] &^= 1 << (s.i & 63)
	s.level(0, B)[src] |= 1 << (s.i & 63)
	s.levelT = -1
	for k := 0; s.levelT < 0; k++ {
		cur, next := s.levels[k], s.level(k+1, B)
		found := false
		for l := 1; l <= c; l++ {
			blk := cur[l*W : (l+1)*W]
			for a := nextCommon(blk, blk, 0); a >= 0; a = nextCommon(blk, blk, a+1) {
				if l+1 < c { // reverse arcs (l,a) → (l+1,b) that carried flow
					un := s.unseen[(l+1)*W : (l+2)*W]
					fl := s.flow[(l*N+a)*W : (l*N+a+1)*W]
					for b := nextCommon(un, fl, 0); b >= 0; b = nextCommon(un, fl, b+1) {
						if s.rres[l*N*N+b*N+a] > g.eps {
							un[b>>6] &^= 1 << (b & 63)
							next[(l+1)*W+b>>6] |= 1 << (b & 63)
							found = true
						}
					}
				}
				if l >= 2 {
					un := s.unseen[(l-1)*W : l*W]
					ob := g.out[((l-1)*N+a)*W : ((l-1)*N+a+1)*W]
					for b := nextCommon(un, ob, 0); b >= 0; b = nextCommon(un, ob, b+1) {
						if s.fres[(l-1)*N*N+a*N+b] > g.eps {
							un[b>>6] &^= 1 << (b & 63)
							next[(l-1)*W+b>>6] |= 1 << (b & 63)
							found = true
						}
					}
				} else if s.levelT < 0 && s.sres[a] > g.eps {
					s.levelT = k + 1
				}
			}
		}
		if !found && s.levelT < 0 {
			return false
		}
	}
	return true
}

// pushFrom sends flow from the source until the total reaches bound or the level graph
// has no path left, and returns the new total. The source sends at most what the bound
// leaves, so the search stops once it is met.
func (g *flowNet) pushFrom(s *flowScratch, total, bound float64) float64 {
	for total < bound-1e-12 {
		f := g.push(s, s.c, s.i, 0, bound-total)
		if f <= 0 {
			break
		}
		total += f
	}
	return total
}

// push sends up to limit units from node (l,a) of level k to T along level-increasing
// residual arcs (several paths at once) and returns the amount sent; a node that can send
// no more leaves the level graph. Its arcs are scanned in a fixed order, each at most
// once per phase (the scan position persists): the reverse arcs to layer l+1 by token,
// then the arcs to layer l−1 by token, then the arc to T (layer 1). Bitsets jump over
// the arcs that cannot be taken (no capacity, no flow to return, head not live at level
// k+1); the residual test decides on the others.
func (g *flowNet) push(s *flowScratch, l, a, k int, limit float64) float64 {
	N, W, c := g.N, g.W, s.c
	x := l*N + a
	if s.iterEp[x] != s.ep {
		s.iter[x], s.iterEp[x] = 0, s.ep
	}
	var next []uint64
	if k+1 < s.nlev {
		next = s.levels[k+1]
	}
	sent := 0.0
	for {
		pos := int(s.iter[x])
		if pos < N {
			if next != nil && l+1 < c {
				fl := s.flow[x*W : (x+1)*W]
				if b := nextCommon(fl, next[(l+1)*W:(l+2)*W], pos); b >= 0 {
					s.iter[x] = int32(b)
					off := l*N*N + b*N + a
					if r := s.rres[off]; r > g.eps {
						f := g.push(s, l+1, b, k+1, min(limit-sent, r))
						if f > 0 {
							s.rres[off] -= f
							s.fres[off] += f
							s.dirty = append(s.dirty, off)
							sent += f
							if limit-sent <= g.eps {
								return sent
							}
						}
					}
					s.iter[x]++
					continue
				}
			}
			pos = N
		}
		if pos < 2*N {
			if next != nil && l >= 2 {
				ob := g.out[((l-1)*N+a)*W : ((l-1)*N+a+1)*W]
				if b := nextCommon(ob, next[(l-1)*W:l*W], pos-N); b >= 0 {
					s.iter[x] = int32(N + b)
					off := (l-1)*N*N + a*N + b
					if r := s.fres[off]; r > g.eps {
						f := g.push(s, l-1, b, k+1, min(limit-sent, r))
						if f > 0 {
							s.fres[off] -= f
							s.rres[off] += f
							s.dirty = append(s.dirty, off)
							fw := ((l-1)*N+b)*W + a>>6
							if s.flow[fw] == 0 {
								s.dirtyFlow = append(s.dirtyFlow, fw)
							}
							s.flow[fw] |= 1 << (a & 63)
							sent += f
							if limit-sent <= g.eps {
								return sent
							}
						}
					}
					s.iter[x]++
					continue
				}
			}
			pos = 2 * N
		}
		if pos == 2*N && l == 1 && s.levelT == k+1 {
			s.iter[x] = int32(pos)
			if r := s.sres[a]; r > g.eps {
				f := min(limit-sent, r)
				if f > 0 {
					s.sres[a] -= f
					sent += f
					if limit-sent <= g.eps {
						return sent
					}
				}
			}
		}
		s.iter[x] = int32(2*N + 1)
		break
	}
	s.levels[k][x/N*W+a>>6] &^= 1 << (a & 63)
	return sent
}
