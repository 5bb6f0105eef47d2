package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// pendingLong lists command functions still over the limit, each with the branch
// that rewrites it; the test fails for any other long function, and for a listed one
// that became short (then delete its line).
var pendingLong = map[string]string{}

// The commands in cmd/attnscope are thin shells over the packages: no function is
// longer than 60 lines.
func TestCommandFunctionsShort(t *testing.T) {
	const limit = 60
	files, err := filepath.Glob(filepath.Join("..", "..", "cmd", "attnscope", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no command files: %v", err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			fd, ok := n.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				return true
			}
			lines := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
			if why, ok := pendingLong[fd.Name.Name]; ok {
				if lines <= limit {
					t.Errorf("%s is %d lines now: remove it from pendingLong", fd.Name.Name, lines)
				} else {
					t.Logf("%s: %d lines, pending (%s)", fd.Name.Name, lines, why)
				}
				return false
			}
			if lines > limit {
				t.Errorf("%s: %s is %d lines (at most %d: move the logic into a package)", filepath.Base(f), fd.Name.Name, lines, limit)
			}
			return false
		})
	}
}
