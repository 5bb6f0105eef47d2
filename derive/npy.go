package derive

import (
	"github.com/attnscope/attnscope/checkpoint"
)

// Derived outputs are NumPy .npy files (version 1.0, little-endian float64 '<f8',
// C order), which numpy.load reads as is.

// writeNPY writes t to path atomically.
func writeNPY(path string, t *Tensor) error {
	return checkpoint.WriteNpyFile(path, t.Shape, t.Data)
}

// readNPY reads a .npy file of any numeric dtype as float64.
func readNPY(path string) (*Tensor, error) {
	a, err := checkpoint.ReadNpyFile(path)
	if err != nil {
		return nil, err
	}
	return &Tensor{Shape: a.Shape, Data: a.Float64s()}, nil
}
