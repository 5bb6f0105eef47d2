package grading_test

import (
	"context"
	"fmt"

	"github.com/attnscope/attnscope/analysis/code"
)

// Generated code is syntactically valid when tree-sitter reports no error.
func Example_syntaxCheck() {
	errs, _ := code.SyntaxErrors(context.Background(), "python", []byte("def f(a):\n    return (a +\n"), 0)
	fmt.Println(len(errs) > 0, errs[0].Line)
	// Output: true 2
}
