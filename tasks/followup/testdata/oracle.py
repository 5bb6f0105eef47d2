"""Independent oracle for tasks/followup: followup-attention's creators as the original
runs them, written from their description: CPython's random (seeded once), DepNode and
Operator ids drawn with random.randint(0, 10**10), aliases for reused variables, the
dependency graph in networkx and line depths from networkx.descendants_at_distance.

Usage: oracle.py STRATEGY KWARGS_JSON N_PROMPTS -> JSON list of [parts, weights]."""
import itertools
import json
import os
import random
import sys

import networkx as nx


def new_id():
    return random.randint(0, 10000000000)


class Node:
    def __init__(self, name, literal=False):
        self.id = "n%d" % new_id()
        self.name, self.literal, self.alias = name, literal, None


class Op:
    def __init__(self, kind, symbol, inputs, outputs):
        self.id = "o%d" % new_id()
        self.kind, self.symbol, self.inputs, self.outputs = kind, symbol, inputs, outputs

    def text(self):
        ins = [n.name for n in self.inputs]
        if self.kind == "assign":
            return self.outputs[0].name + " = " + ", ".join(ins)
        if self.kind == "infix":
            return self.outputs[0].name + " = " + (" %s " % self.symbol).join(ins)
        return self.symbol.replace("<RELEVANT_VARIABLE>", ins[0])


def append(ops, op):
    new_inputs = []
    for n in op.inputs:
        last = None
        for prev in reversed(ops):
            for o in prev.outputs:
                if o.name == n.name and o.literal == n.literal:
                    last = o
                    break
            if last is not None:
                break
        if last is None:
            new_inputs.append(n)
        else:
            a = Node(last.name, last.literal)
            a.alias = last
            new_inputs.append(a)
    op.inputs = new_inputs
    ops.append(op)


def weights(ops, max_level):
    g = nx.DiGraph()
    for line, op in enumerate(ops, start=1):
        g.add_node(op.id, line=line)
        for n in op.inputs:
            g.add_node(n.id, line=line)
            g.add_edge(op.id, n.id)
            if n.alias is not None:
                g.add_edge(n.id, n.alias.id)
        for n in op.outputs:
            g.add_node(n.id, line=line)
            g.add_edge(n.id, op.id)
    src = ops[-1].inputs[0].id
    found = []
    for d in range(max_level):
        for v in nx.descendants_at_distance(g, src, d):
            found.append((g.nodes[v]["line"], d))
    max_depth = max(d for _, d in found)
    out = []
    for line in range(1, len(ops) + 1):
        ds = [d for l, d in found if l == line]
        out.append(1 - min(ds) / max_depth if ds else 0)
    return out


def assignment_chain(kw):
    ops = []
    assigns = []
    for i in range(kw["n_assignments"]):
        v = Node("var_%d" % i)
        c = Node(str(random.randint(kw["init_min_int_value"], kw["init_max_int_value"])), True)
        assigns.append(Op("assign", "=", [c], [v]))
    for op in assigns:
        append(ops, op)
    available = [op.outputs[0] for op in assigns]
    derived, ariths = [], []
    for i in range(kw["n_arithmetic_ops"]):
        info = random.choice(kw["arithmetic_ops"])
        hi = info["min_n_args"] if kw.get("original_n_args", True) else info["max_n_args"]
        n_args = random.randint(info["min_n_args"], hi)
        inputs = random.sample(available, k=n_args)
        out = Node("derived_%d" % i)
        ariths.append(Op("infix", info["symbol"], inputs, [out]))
        if kw["allow_reuse_of_derived_nodes"]:
            available.append(out)
        derived.append(out)
    for op in ariths:
        append(ops, op)
    target = random.choice(derived)
    append(ops, Op("query", kw["custom_prompt"], [target], []))
    parts = [p for p in "\n".join(op.text() for op in ops).split("\n") if p != ""]
    Node("ROOT")
    return parts, weights(ops, kw.get("max_level_of_depth", 10))


def gibberish(kw):
    max_lines = kw.get("max_lines", 15)
    max_chars = kw.get("max_char_per_line", 80)
    max_tok = kw.get("max_token_length", 15)
    p_space = kw.get("space_probability", 0.33)
    allowed = kw.get("allowed_characters", "abcdefghijklmnopqrstuvwxyz.,[]():;'\"!?-_=+/\\*&%$#@<>|~")
    text = ""
    for _ in range(1 + int(random.random() * (max_lines - 1))):
        budget = 1 + int(random.random() * (max_chars - 1))
        while budget > 0:
            tok = "".join(random.choice(allowed) for _ in range(int(random.random() * max_tok)))
            if random.random() < p_space:
                tok = " " + tok
            tok = tok[:budget]
            budget -= len(tok)
            text += tok
        text += "\n"
    return text


def two_functions(kw, n):
    funcs = []
    for name in sorted(f for f in os.listdir(kw["folder_with_seed_functions"]) if f.endswith(".py")):
        lines = open(os.path.join(kw["folder_with_seed_functions"], name)).read().split("\n")
        k = next((i for i, l in enumerate(lines) if l.startswith(kw["start_of_test_statement"])), len(lines))
        funcs.append(("\n".join(lines[:k]), "\n".join(lines[k:])))
    pairs = list(itertools.combinations(funcs, 2))
    random.shuffle(pairs)
    out = []
    for i in range(n):
        pair = pairs[i]
        t = random.choice([0, 1])
        f1, f2, test = pair[0][0].split("\n"), pair[1][0].split("\n"), pair[t][1].split("\n")
        w = [float(t == 0)] * len(f1) + [0.0] + [float(t == 1)] * len(f2) + [0.0] + [1.0] * len(test)
        out.append([f1 + [""] + f2 + [""] + test, w])
    return out


def main():
    strategy, kw, n = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    random.seed(kw["seed"])
    if strategy == "assignment_chain":
        out = [list(assignment_chain(kw)) for _ in range(n)]
    elif strategy == "two_functions_one_test":
        out = two_functions(kw, n)
    else:
        out = [[gibberish(kw), None] for _ in range(n)]
    json.dump(out, sys.stdout)


main()
