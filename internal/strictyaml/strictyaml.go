// Package strictyaml decodes user-written YAML configs strictly (an unknown key is an
// error) and finds the line of a key for error messages, as the comparator and the
// eye-tracking configs need.
package strictyaml

import (
	"errors"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Decode decodes data strictly into v and returns its syntax tree for Line; a parser
// panic on malformed input is reported as an error.
func Decode(data []byte, v any) (file *ast.File, err error) {
	defer func() {
		if p := recover(); p != nil {
			file, err = nil, fmt.Errorf("malformed YAML (the parser failed: %v)", p)
		}
	}()
	if err := yaml.UnmarshalWithOptions(data, v, yaml.Strict()); err != nil {
		return nil, errors.New(strings.TrimSpace(yaml.FormatError(err, false, false)))
	}
	return parser.ParseBytes(data, 0)
}

// Line returns the line of the node at path (a YAML path such as "$.comparisons[2].name")
// in file, 0 when it cannot be found.
func Line(file *ast.File, path string) int {
	if file == nil {
		return 0
	}
	p, err := yaml.PathString(path)
	if err != nil {
		return 0
	}
	n, err := p.FilterFile(file)
	if err != nil || n == nil || n.GetToken() == nil {
		return 0
	}
	return n.GetToken().Position.Line
}
