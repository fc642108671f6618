"""The neuron step's statements (:mod:`tinysnn_dse.core.step`) in C: each function's one
``return`` expression translated from its syntax tree into a macro of ``model.h``
(``TSNN_<NAME>``), which ``tinysnn.c`` calls. The C thus holds no form of the step of its
own; tests/core/test_step.py compiles the macros and checks them against the Python."""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

from tinysnn_dse.core import step

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}
_CMPOPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "=="}
_CALLS = {"min": "TSNN_MIN", "max": "TSNN_MAX"}


def c_name(f: Callable[..., Any]) -> str:
    """The C macro of statement ``f``: ``TSNN_`` and its name in capitals."""
    return "TSNN_" + f.__name__.upper()


def _expr(node: ast.expr, args: list[str]) -> str:
    """C99 text of one expression of a statement (every operand parenthesised, each
    argument as the macro's parameter); anything outside the subset is refused."""
    if isinstance(node, ast.Name) and node.id in args:
        return f"({node.id})"
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return str(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return f"({_expr(node.left, args)} {_BINOPS[type(node.op)]} {_expr(node.right, args)})"
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _CMPOPS:
        op = _CMPOPS[type(node.ops[0])]
        return f"({_expr(node.left, args)} {op} {_expr(node.comparators[0], args)})"
    if isinstance(node, ast.IfExp):
        test, yes, no = (_expr(x, args) for x in (node.test, node.body, node.orelse))
        return f"({test} ? {yes} : {no})"
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in _CALLS and not node.keywords):  # fmt: skip
        inner = ", ".join(_expr(a, args) for a in node.args)
        return f"{_CALLS[node.func.id]}({inner})"
    raise ValueError(f"no C for {ast.dump(node)[:80]}")


def c_macro(f: Callable[..., Any]) -> str:
    """``#define TSNN_<NAME>(args) <expression>``: statement ``f`` (a function whose body
    is a docstring and one ``return``) in C."""
    fn = ast.parse(textwrap.dedent(inspect.getsource(f))).body[0]
    assert isinstance(fn, ast.FunctionDef)
    body = [s for s in fn.body if not isinstance(s, ast.Expr)]  # the docstring
    if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        raise ValueError(f"{f.__name__}: a statement is one return expression")
    args = [a.arg for a in fn.args.args]
    return f"#define {c_name(f)}({', '.join(args)}) {_expr(body[0].value, args)}"


def c_macros() -> list[str]:
    """The C of every statement, after the min and max they use."""
    return [
        "#define TSNN_MIN(a, b) ((a) < (b) ? (a) : (b))",
        "#define TSNN_MAX(a, b) ((a) > (b) ? (a) : (b))",
        *(c_macro(f) for f in step.STATEMENTS),
    ]
