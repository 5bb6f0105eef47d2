"""A small stack-based expression evaluator, used as attnscope's bundled sample."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Iterator

TOKEN_RE = re.compile(r"\s*(?:(\d+\.?\d*)|(.))")

PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "^": 3}


@dataclass
class Stack:
    """A last-in, first-out stack."""

    items: list = field(default_factory=list)

    def push(self, x) -> None:
        self.items.append(x)

    def pop(self):
        if not self.items:
            raise IndexError("pop from an empty stack")
        return self.items.pop()

    def peek(self):
        return self.items[-1] if self.items else None

    def __len__(self) -> int:
        return len(self.items)


def tokenize(expr: str) -> Iterator[str]:
    for number, op in TOKEN_RE.findall(expr):
        if number:
            yield number
        elif op.strip():
            yield op


def to_postfix(expr: str) -> list[str]:
    """Shunting-yard: infix to postfix (reverse Polish) notation."""
    out, ops = [], Stack()
    for tok in tokenize(expr):
        if tok[0].isdigit():
            out.append(tok)
        elif tok == "(":
            ops.push(tok)
        elif tok == ")":
            while ops.peek() != "(":
                out.append(ops.pop())
            ops.pop()
        else:
            while ops.peek() in PRECEDENCE and PRECEDENCE[ops.peek()] >= PRECEDENCE[tok]:
                out.append(ops.pop())
            ops.push(tok)
    while len(ops):
        out.append(ops.pop())
    return out


def evaluate(expr: str) -> float:
    stack = Stack()
    for tok in to_postfix(expr):
        if tok in PRECEDENCE:
            b, a = stack.pop(), stack.pop()
            stack.push({"+": a + b, "-": a - b, "*": a * b, "/": a / b, "^": a ** b}[tok])
        else:
            stack.push(float(tok))
    return stack.pop()


if __name__ == "__main__":
    for e in ["1 + 2 * 3", "(1 + 2) * 3", "2 ^ 10 / 4", "3.5 * (2 - 0.5)"]:
        print(f"{e:>20} = {evaluate(e):g}")
    print("√2 ≈", math.sqrt(2))  # non-ASCII: √ and ≈
