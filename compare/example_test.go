package compare_test

import (
	"fmt"

	"github.com/attnscope/attnscope/compare"
)

// A comparison function on its own: the human's and the model's top 3 targets of
// each row (columns in decreasing order of attention).
func ExampleFunctions() {
	human := compare.Matrix([][]float64{{0, 0, 0}, {3, 1, 0}, {1, 2, 3}})
	model := compare.Matrix([][]float64{{0.5, 0, 0}, {1, 2, 0}, {3, 2, 1}})
	f := compare.Functions()["top_3_overlap"]
	res, err := f.Run(compare.Inputs{Human: human, Machine: model}, compare.Kwargs{"symmetric": false})
	if err != nil {
		panic(err)
	}
	for _, e := range res.Elements {
		fmt.Println(e)
	}
	// Output:
	// [-1 0 [] []]
	// [3 1 [0 1 2] [1 0 2]]
	// [3 2 [2 1 0] [0 1 2]]
}
