// Package compare compares attention of humans and models, and of models with each
// other, in the way of followup-attention's comparator (attwizard
// comparator/compare.py, configured by cmp_vXX.yaml): every human session is paired
// with every try of the same source file of a machine run, and with every other
// session on the same file; a chain of transformations brings both arrays to a
// common form (probabilities, characters, lines, lower triangles, base behaviour
// removed) and a comparison function scores them (Spearman, MSE, Jensen–Shannon,
// reciprocal and harmonic rank, perfect match, top-k overlap). Results go to one CSV
// and one Parquet file per comparison and machine artefact, written as the pairs are
// computed, so memory holds one pair of arrays at a time.
package compare

import (
	"fmt"
	"slices"
)

// Array is a dense row-major float64 array: a vector (1-D), a matrix (2-D, rows
// are "from" tokens, columns their targets) or a stack of matrices (3-D, layers).
type Array struct {
	Shape []int
	Data  []float64
}

// Vector returns a 1-D array holding v.
func Vector(v []float64) *Array { return &Array{Shape: []int{len(v)}, Data: v} }

// Matrix returns a 2-D array from rows of equal length.
func Matrix(rows [][]float64) *Array {
	a := &Array{Shape: []int{len(rows), 0}}
	if len(rows) > 0 {
		a.Shape[1] = len(rows[0])
	}
	for _, r := range rows {
		a.Data = append(a.Data, r...)
	}
	return a
}

// Clone returns a deep copy.
func (a *Array) Clone() *Array {
	return &Array{Shape: slices.Clone(a.Shape), Data: slices.Clone(a.Data)}
}

// Rank is the number of dimensions.
func (a *Array) Rank() int { return len(a.Shape) }

// Row returns row i of a matrix (a view).
func (a *Array) Row(i int) []float64 { c := a.Shape[1]; return a.Data[i*c : (i+1)*c] }

// Rows returns the rows of a matrix as views.
func (a *Array) Rows() [][]float64 {
	out := make([][]float64, a.Shape[0])
	for i := range out {
		out[i] = a.Row(i)
	}
	return out
}

// Cut returns the top-left r×c block of a matrix (a copy).
func (a *Array) Cut(r, c int) *Array {
	out := &Array{Shape: []int{r, c}, Data: make([]float64, 0, r*c)}
	for i := range r {
		out.Data = append(out.Data, a.Row(i)[:c]...)
	}
	return out
}

func (a *Array) String() string { return fmt.Sprint(a.Shape) }

func (a *Array) isVector() bool { return len(a.Shape) <= 1 }
func (a *Array) isMatrix() bool { return len(a.Shape) == 2 }
