package followup

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/attnscope/attnscope/tasks"
)

// This file ports followup-attention's AssignmentChainCreator
// (attwizard/creators/assignement_chain.py, dep_graph.py, distance_to_weights.py of
// github.com/githubnext/followup-attention): the same draws from Python's random in
// the same order, so a seed gives the original's prompts and ground truth.

// ArithmeticOp is one entry of the creator's arithmetic_ops list.
type ArithmeticOp struct {
	Symbol   string `yaml:"symbol" json:"symbol"`
	MinNArgs int    `yaml:"min_n_args" json:"min_n_args"`
	MaxNArgs int    `yaml:"max_n_args" json:"max_n_args"`
}

// AssignmentChainArgs are the kwargs of the assignment_chain creator.
type AssignmentChainArgs struct {
	Seed                     *int64         `yaml:"seed"`
	NAssignments             int            `yaml:"n_assignments"`
	InitMinIntValue          int64          `yaml:"init_min_int_value"`
	InitMaxIntValue          int64          `yaml:"init_max_int_value"`
	NArithmeticOps           int            `yaml:"n_arithmetic_ops"`
	AllowReuseOfDerivedNodes bool           `yaml:"allow_reuse_of_derived_nodes"`
	DistanceFn               string         `yaml:"distance_fn"`
	CustomPrompt             string         `yaml:"custom_prompt"`
	ArithmeticOps            []ArithmeticOp `yaml:"arithmetic_ops"`
	// OriginalNArgs (default true) keeps the original's quirk: the number of operands is
	// randint(min_n_args, min_n_args), always min_n_args; false draws it from
	// [min_n_args, max_n_args].
	OriginalNArgs *bool `yaml:"original_n_args"`
	// MaxLevelOfDepth is get_dependency_tree's max_level_of_depth (10 in the original):
	// nodes farther than this many graph edges minus one from the query are not
	// part of the tree, so their lines weigh 0.
	MaxLevelOfDepth int `yaml:"max_level_of_depth"`
}

// assignmentKeys are the kwargs assignment_chain accepts.
var assignmentKeys = []string{"seed", "n_assignments", "init_min_int_value", "init_max_int_value",
	"n_arithmetic_ops", "allow_reuse_of_derived_nodes", "distance_fn", "custom_prompt",
	"arithmetic_ops", "original_n_args", "max_level_of_depth"}

// pyIDMax is the bound of the random ids DepNode and Operator draw (random.randint(0, 10000000000)).
const pyIDMax = 10000000000

// depNode is a DepNode: a variable, a literal or an alias of an earlier definition.
type depNode struct {
	name    string
	literal bool
	alias   *depNode
}

// operator is an Operator: an assignment, an infix operation or the final query.
type operator struct {
	kind    string // "assign", "infix" or "query"
	symbol  string // the infix symbol, or the query statement
	inputs  []*depNode
	outputs []*depNode
}

func (o *operator) line() string {
	names := func(ns []*depNode) []string {
		out := make([]string, len(ns))
		for i, n := range ns {
			out[i] = n.name
		}
		return out
	}
	switch o.kind {
	case "assign":
		return strings.Join(names(o.outputs), ", ") + " = " + strings.Join(names(o.inputs), ", ")
	case "infix":
		return strings.Join(names(o.outputs), ", ") + " = " + strings.Join(names(o.inputs), " "+o.symbol+" ")
	default:
		return strings.ReplaceAll(o.symbol, "<RELEVANT_VARIABLE>", o.inputs[0].name)
	}
}

// program is dep_graph.Program: operations in order, one per line.
type program struct {
	rng *tasks.PyRandom
	ops []*operator
}

func (p *program) newNode(name string, literal bool) *depNode {
	p.rng.RandInt(0, pyIDMax) // DepNode.id
	return &depNode{name: name, literal: literal}
}

func (p *program) newOp(kind, symbol string, in, out []*depNode) *operator {
	p.rng.RandInt(0, pyIDMax) // Operator.id
	return &operator{kind: kind, symbol: symbol, inputs: in, outputs: out}
}

// safeAppend is Program.safe_append_op: every input defined by an earlier operation
// is replaced by a new alias node pointing at its latest definition.
func (p *program) safeAppend(op *operator) {
	in := make([]*depNode, len(op.inputs))
	for i, n := range op.inputs {
		in[i] = n
		if def := p.lastDefinition(n); def != nil {
			a := p.newNode(def.name, def.literal)
			a.alias = def
			in[i] = a
		}
	}
	op.inputs = in
	p.ops = append(p.ops, op)
}

func (p *program) lastDefinition(n *depNode) *depNode {
	for i := len(p.ops) - 1; i >= 0; i-- {
		for _, o := range p.ops[i].outputs {
			if o.name == n.name && o.literal == n.literal {
				return o
			}
		}
	}
	return nil
}

// lineWeights is Program.get_attention_weights_for with convert_distance_to_weight_naive:
// the graph has an edge from each operator to its inputs, from each alias to the node
// it refers to and from each output to its operator; a node's depth is its breadth-first
// distance from the query's variable (networkx descendants_at_distance for distances
// 0..maxLevel-1), a line's is the least depth of its nodes, and its weight is
// 1 − depth/max_depth (max_depth: the greatest depth found), 0 for lines outside the tree.
func (p *program) lineWeights(maxLevel int) []float64 {
	depth := map[any]int{}
	lineOf := map[any]int{}
	edges := map[any][]any{}
	for i, op := range p.ops {
		lineOf[op] = i + 1
		for _, n := range op.inputs {
			lineOf[n] = i + 1
			edges[op] = append(edges[op], n)
			if n.alias != nil {
				edges[n] = append(edges[n], n.alias)
			}
		}
		for _, n := range op.outputs {
			lineOf[n] = i + 1
			edges[n] = append(edges[n], op)
		}
	}
	src := p.ops[len(p.ops)-1].inputs[0]
	depth[src] = 0
	frontier := []any{src}
	maxDepth := 0
	for d := 1; d < maxLevel && len(frontier) > 0; d++ {
		var next []any
		for _, v := range frontier {
			for _, w := range edges[v] {
				if _, seen := depth[w]; !seen {
					depth[w] = d
					next = append(next, w)
					maxDepth = d
				}
			}
		}
		frontier = next
	}
	minDepth := make([]int, len(p.ops)+1)
	for i := range minDepth {
		minDepth[i] = -1
	}
	for v, d := range depth {
		if l := lineOf[v]; minDepth[l] < 0 || d < minDepth[l] {
			minDepth[l] = d
		}
	}
	w := make([]float64, len(p.ops))
	for l := 1; l <= len(p.ops); l++ {
		if minDepth[l] >= 0 {
			w[l-1] = 1 - float64(minDepth[l])/float64(maxDepth)
		}
	}
	return w
}

// assignmentChain is one prompt of AssignmentChainCreator.create_prompt_and_attention.
func assignmentChain(rng *tasks.PyRandom, a *AssignmentChainArgs) (parts []string, weights []float64, err error) {
	p := &program{rng: rng}
	var available, assigns []*depNode
	var ops []*operator
	for i := 0; i < a.NAssignments; i++ {
		v := p.newNode(fmt.Sprintf("var_%d", i), false)
		val := rng.RandInt(a.InitMinIntValue, a.InitMaxIntValue)
		c := p.newNode(strconv.FormatInt(val, 10), true)
		ops = append(ops, p.newOp("assign", "=", []*depNode{c}, []*depNode{v}))
		assigns = append(assigns, v)
	}
	for _, op := range ops {
		p.safeAppend(op)
	}
	available = append(available, assigns...)
	ops = ops[:0]
	var derived []*depNode
	for i := 0; i < a.NArithmeticOps; i++ {
		info := a.ArithmeticOps[rng.Choice(len(a.ArithmeticOps))]
		hi := info.MinNArgs // the original's randint(min_n_args, min_n_args)
		if a.OriginalNArgs != nil && !*a.OriginalNArgs {
			hi = info.MaxNArgs
		}
		nArgs := int(rng.RandInt(int64(info.MinNArgs), int64(hi)))
		if nArgs > len(available) {
			return nil, nil, fmt.Errorf("operation %d (%s) draws %d operands but only %d variables are defined (sample larger than population)", i, info.Symbol, nArgs, len(available))
		}
		idx := rng.Sample(len(available), nArgs)
		in := make([]*depNode, nArgs)
		for k, j := range idx {
			in[k] = available[j]
		}
		out := p.newNode(fmt.Sprintf("derived_%d", i), false)
		ops = append(ops, p.newOp("infix", info.Symbol, in, []*depNode{out}))
		if a.AllowReuseOfDerivedNodes {
			available = append(available, out)
		}
		derived = append(derived, out)
	}
	for _, op := range ops {
		p.safeAppend(op)
	}
	target := derived[rng.Choice(len(derived))]
	p.safeAppend(p.newOp("query", a.CustomPrompt, []*depNode{target}, nil))
	for _, op := range p.ops {
		if l := op.line(); l != "" {
			parts = append(parts, l)
		}
	}
	p.newNode("ROOT", false) // create_graph's root helper node
	return parts, p.lineWeights(a.MaxLevelOfDepth), nil
}
