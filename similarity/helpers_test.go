package similarity

import (
	"gonum.org/v1/gonum/mat"

	"github.com/attnscope/attnscope/tensor"
)

type denseAlias = mat.Dense

func newDense(t *tensor.Tensor) *mat.Dense { return mat.NewDense(t.Shape[0], t.Shape[1], t.Data) }
