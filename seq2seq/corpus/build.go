package corpus

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	sitter "github.com/tree-sitter/go-tree-sitter"
	tspython "github.com/tree-sitter/tree-sitter-python/bindings/go"
)

// BuildStats counts what Build saw.
type BuildStats struct {
	Files      int // .py files read
	Unparsable int // files skipped: unreadable, not UTF-8, or with a syntax error
	Functions  int // function and method definitions in the parsed files
	Documented int // of which with a docstring
	BodyOnly   int // documented functions skipped because the docstring is their whole body
	Duplicates int // pairs dropped because an identical pair came earlier
	Pairs      int // pairs kept
}

// BuildOptions configure Build.
type BuildOptions struct {
	// Seed orders the pairs (a seeded shuffle, so that the sequential split mixes
	// modules); the same files and seed give the same corpus.
	Seed uint64
	// MaxFiles > 0 reads at most that many files, evenly spaced over the sorted
	// list (a deterministic sample that bounds the time).
	MaxFiles int
	// Progress, when set, is called after each file.
	Progress func(path string)
}

// Build extracts (docstring, function code) pairs from the Python files under the
// given roots (directories are walked, symbolic links not followed, files in
// lexical order): every function or method whose body starts with a string
// statement gives a pair of that docstring (quotes and prefix removed, cleaned as
// inspect.cleandoc) and the function's source without the docstring statement,
// dedented to the def's column. Files tree-sitter cannot parse without error are
// skipped and counted; identical pairs are kept once.
func Build(ctx context.Context, roots []string, opts BuildOptions) ([]Pair, BuildStats, error) {
	var st BuildStats
	var files []string
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if p == root {
					return err
				}
				return nil // unreadable subfolder: skipped
			}
			if !d.IsDir() && strings.HasSuffix(p, ".py") && d.Type().IsRegular() {
				files = append(files, p)
			}
			return ctx.Err()
		})
		if err != nil {
			return nil, st, fmt.Errorf("corpus: %w", err)
		}
	}
	slices.Sort(files)
	if len(files) == 0 {
		return nil, st, fmt.Errorf("corpus: no .py files under %s", strings.Join(roots, ", "))
	}
	if opts.MaxFiles > 0 && len(files) > opts.MaxFiles {
		picked := make([]string, opts.MaxFiles)
		for i := range picked {
			picked[i] = files[i*len(files)/opts.MaxFiles]
		}
		files = picked
	}
	parser := sitter.NewParser()
	defer parser.Close()
	if err := parser.SetLanguage(sitter.NewLanguage(tspython.Language())); err != nil {
		return nil, st, fmt.Errorf("corpus: tree-sitter python grammar: %w", err)
	}
	seen := map[[2]string]bool{}
	var pairs []Pair
	for _, path := range files {
		if err := ctx.Err(); err != nil {
			return nil, st, err
		}
		st.Files++
		src, err := os.ReadFile(path)
		if err != nil || !utf8.Valid(src) {
			st.Unparsable++
			continue
		}
		got, ok := extract(parser, src, path, &st)
		if !ok {
			st.Unparsable++
			continue
		}
		for _, p := range got {
			k := [2]string{p.Docstring, p.Code}
			if seen[k] {
				st.Duplicates++
				continue
			}
			seen[k] = true
			pairs = append(pairs, p)
		}
		if opts.Progress != nil {
			opts.Progress(path)
		}
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x5eed))
	rng.Shuffle(len(pairs), func(i, j int) { pairs[i], pairs[j] = pairs[j], pairs[i] })
	st.Pairs = len(pairs)
	return pairs, st, nil
}

// extract returns the pairs of one file; ok is false when it does not parse.
func extract(parser *sitter.Parser, src []byte, path string, st *BuildStats) (pairs []Pair, ok bool) {
	tree := parser.Parse(src, nil)
	if tree == nil {
		return nil, false
	}
	defer tree.Close()
	root := tree.RootNode()
	if root.HasError() {
		return nil, false
	}
	var walk func(n *sitter.Node, scope string)
	walk = func(n *sitter.Node, scope string) {
		kind := n.Kind()
		name := scope
		if kind == "function_definition" || kind == "class_definition" {
			if nm := n.ChildByFieldName("name"); nm != nil {
				name = strings.TrimPrefix(scope+"."+nm.Utf8Text(src), ".")
			}
		}
		if kind == "function_definition" {
			st.Functions++
			if p, documented, keep := functionPair(n, src); documented {
				st.Documented++
				if keep {
					p.Origin = path + ":" + name
					pairs = append(pairs, p)
				} else {
					st.BodyOnly++
				}
			}
		}
		for i := uint(0); i < n.NamedChildCount(); i++ {
			walk(n.NamedChild(i), name)
		}
	}
	walk(root, "")
	return pairs, true
}

// functionPair returns the pair of a function_definition node: documented is
// whether its body starts with a string statement, keep whether code remains once
// that statement is removed.
func functionPair(fn *sitter.Node, src []byte) (p Pair, documented, keep bool) {
	body := fn.ChildByFieldName("body")
	if body == nil || body.NamedChildCount() == 0 {
		return Pair{}, false, false
	}
	stmt := body.NamedChild(0)
	if stmt.Kind() != "expression_statement" || stmt.NamedChildCount() != 1 || stmt.NamedChild(0).Kind() != "string" {
		return Pair{}, false, false
	}
	doc := cleandoc(stringValue(stmt.NamedChild(0).Utf8Text(src)))
	if body.NamedChildCount() == 1 {
		return Pair{}, true, false
	}
	start, end := int(fn.StartByte()), int(fn.EndByte())
	ds, de := int(stmt.StartByte()), int(stmt.EndByte())
	// Remove the statement's whole lines when nothing else shares them.
	ls := ds
	for ls > start && (src[ls-1] == ' ' || src[ls-1] == '\t') {
		ls--
	}
	le := de
	for le < end && (src[le] == ' ' || src[le] == '\t' || src[le] == '\r') {
		le++
	}
	if ls > start && src[ls-1] == '\n' && le < end && src[le] == '\n' {
		ds, de = ls, le+1
	}
	code := string(src[start:ds]) + string(src[de:end])
	col := int(fn.StartPosition().Column)
	code = dedentTail(code, col)
	if strings.TrimSpace(doc) == "" {
		return Pair{}, true, false
	}
	return Pair{Docstring: doc, Code: code}, true, true
}

// stringValue strips a Python string literal's prefix and quotes (escapes are kept
// as written).
func stringValue(lit string) string {
	i := strings.IndexAny(lit, `"'`)
	if i < 0 {
		return lit
	}
	body := lit[i:]
	for _, q := range []string{`"""`, `'''`, `"`, `'`} {
		if len(body) >= 2*len(q) && strings.HasPrefix(body, q) && strings.HasSuffix(body, q) {
			return body[len(q) : len(body)-len(q)]
		}
	}
	return body
}

// cleandoc is inspect.cleandoc: tabs expanded, the first line stripped of leading
// space, the common indentation of the other lines removed, blank lines at the
// start and end dropped.
func cleandoc(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\t", "        "), "\n")
	margin := -1
	for _, l := range lines[1:] {
		t := strings.TrimLeft(l, " ")
		if t == "" {
			continue
		}
		if ind := len(l) - len(t); margin < 0 || ind < margin {
			margin = ind
		}
	}
	lines[0] = strings.TrimLeft(lines[0], " ")
	for i := 1; i < len(lines); i++ {
		if margin > 0 && len(lines[i]) >= margin {
			lines[i] = lines[i][margin:]
		} else {
			lines[i] = strings.TrimLeft(lines[i], " ")
		}
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " \r")
	}
	return strings.Join(lines, "\n")
}

// dedentTail removes up to col leading spaces or tabs from every line but the first
// (which starts at the def keyword).
func dedentTail(code string, col int) string {
	if col == 0 {
		return code
	}
	lines := strings.Split(code, "\n")
	for i := 1; i < len(lines); i++ {
		k := 0
		for k < col && k < len(lines[i]) && (lines[i][k] == ' ' || lines[i][k] == '\t') {
			k++
		}
		lines[i] = lines[i][k:]
	}
	return strings.Join(lines, "\n")
}
