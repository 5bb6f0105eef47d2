package code

import (
	"context"
	"fmt"

	sitter "github.com/tree-sitter/go-tree-sitter"
)

// SyntaxError is a place where the tree-sitter grammar could not parse the source:
// an ERROR node (text it could not fit) or a MISSING node (a token it had to assume,
// such as a closing bracket). Line and Column count from 1; Column in bytes.
type SyntaxError struct {
	Line, Column int
	Missing      bool   // a MISSING node rather than an ERROR node
	Kind         string // the missing node's kind, or "ERROR"
}

func (e SyntaxError) String() string {
	if e.Missing {
		return fmt.Sprintf("%d:%d: missing %s", e.Line, e.Column, e.Kind)
	}
	return fmt.Sprintf("%d:%d: syntax error", e.Line, e.Column)
}

// SyntaxErrors parses src with the tree-sitter grammar of lang and returns its syntax
// errors in source order (at most limit of them; all when limit ≤ 0). Source code is
// syntactically valid when the list is empty — the PROPOSED "syntactic correctness"
// check of followup-attention's README (which names it but has no code for it; for
// Python it plays the role of ast.parse).
func SyntaxErrors(ctx context.Context, lang string, src []byte, limit int) ([]SyntaxError, error) {
	name, err := CanonicalLanguage(lang)
	if err != nil {
		return nil, err
	}
	p := sitter.NewParser()
	defer p.Close()
	if err := p.SetLanguage(sitter.NewLanguage(grammars[name]())); err != nil {
		return nil, fmt.Errorf("tree-sitter %s grammar: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tree := p.Parse(src, nil)
	if tree == nil {
		return nil, fmt.Errorf("tree-sitter %s: parse failed", name)
	}
	defer tree.Close()
	var out []SyntaxError
	var walk func(n *sitter.Node)
	walk = func(n *sitter.Node) {
		if limit > 0 && len(out) >= limit {
			return
		}
		if !n.HasError() && !n.IsMissing() {
			return
		}
		pos := n.StartPosition()
		switch {
		case n.IsMissing():
			out = append(out, SyntaxError{Line: int(pos.Row) + 1, Column: int(pos.Column) + 1, Missing: true, Kind: n.Kind()})
			return
		case n.IsError():
			out = append(out, SyntaxError{Line: int(pos.Row) + 1, Column: int(pos.Column) + 1, Kind: "ERROR"})
			return
		}
		for i := uint(0); i < n.ChildCount(); i++ {
			walk(n.Child(i))
		}
	}
	walk(tree.RootNode())
	return out, nil
}
