package similarity

import (
	"fmt"
	"math"
)

// Assign solves the linear assignment problem for a rows×cols cost matrix (row-major,
// finite values): it returns perm with perm[r] the column assigned to row r, every
// row assigned to a distinct column, minimising the total cost (returned too), like
// scipy.optimize.linear_sum_assignment. With more rows than columns every column is
// assigned to a distinct row instead and perm[r] is −1 for the unassigned rows.
//
// Algorithm: shortest augmenting paths with dual potentials (Kuhn–Munkres in the
// O(n²m) form of Jonker & Volgenant 1987), exact on finite costs.
func Assign(cost []float64, rows, cols int) (perm []int, total float64, err error) {
	if rows < 0 || cols < 0 || len(cost) != rows*cols {
		return nil, 0, fmt.Errorf("assignment: %d costs for a %d×%d matrix", len(cost), rows, cols)
	}
	for i, v := range cost {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, 0, fmt.Errorf("assignment: cost %v at row %d, column %d; finite costs expected", v, i/max(cols, 1), i%max(cols, 1))
		}
	}
	if rows > cols {
		t := make([]float64, len(cost))
		for r := range rows {
			for c := range cols {
				t[c*rows+r] = cost[r*cols+c]
			}
		}
		colRow, total, err := Assign(t, cols, rows)
		if err != nil {
			return nil, 0, err
		}
		perm = make([]int, rows)
		for r := range perm {
			perm[r] = -1
		}
		for c, r := range colRow {
			perm[r] = c
		}
		return perm, total, nil
	}
	perm = assignRect(cost, rows, cols)
	for r, c := range perm {
		total += cost[r*cols+c]
	}
	return perm, total, nil
}

// assignRect is the shortest-augmenting-path algorithm for rows ≤ cols. Rows are
// added one at a time; Dijkstra over columns with reduced costs c(i,j) − u_i − v_j
// finds the cheapest augmenting path, then the potentials are updated so reduced
// costs stay ≥ 0 and those on the matching are 0.
func assignRect(cost []float64, n, m int) []int {
	u := make([]float64, n+1)
	v := make([]float64, m+1)
	p := make([]int, m+1) // p[j]: row (1-based) matched to column j; p[0] the row being added
	way := make([]int, m+1)
	minv := make([]float64, m+1)
	used := make([]bool, m+1)
	for i := 1; i <= n; i++ {
		p[0] = i
		j0 := 0
		for j := range minv {
			minv[j] = math.Inf(1)
			used[j] = false
		}
		for {
			used[j0] = true
			i0 := p[j0]
			delta, j1 := math.Inf(1), 0
			for j := 1; j <= m; j++ {
				if used[j] {
					continue
				}
				cur := cost[(i0-1)*m+j-1] - u[i0] - v[j]
				if cur < minv[j] {
					minv[j], way[j] = cur, j0
				}
				if minv[j] < delta {
					delta, j1 = minv[j], j
				}
			}
			for j := 0; j <= m; j++ {
				if used[j] {
					u[p[j]] += delta
					v[j] -= delta
				} else {
					minv[j] -= delta
				}
			}
			j0 = j1
			if p[j0] == 0 {
				break
			}
		}
		for j0 != 0 {
			j1 := way[j0]
			p[j0] = p[j1]
			j0 = j1
		}
	}
	perm := make([]int, n)
	for j := 1; j <= m; j++ {
		if p[j] != 0 {
			perm[p[j]-1] = j - 1
		}
	}
	return perm
}
