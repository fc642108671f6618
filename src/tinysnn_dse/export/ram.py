"""The RAM an exported design's C takes (issue 26 item 2), read from the generated
sources themselves: every file-scope ``static`` array that is not ``const`` (the state;
``const`` data stays in flash), with its sizes from the ``#define`` s of ``model.h`` and
the conditions (``#if``) the design's macros select, so that the memory map says what
the compiler will lay out. tests/export/test_ram.py compares it, array by array, with the
symbol sizes (``nm -S``) of the compiled object.

This is a reader of the C this package writes, not of C in general: object-like
``#define`` s whose value is an integer expression, ``typedef`` s of the fixed-width
integer types, ``#if`` / ``#ifdef`` / ``#ifndef`` / ``#elif`` / ``#else`` / ``#endif``,
and declarations of the form ``static TYPE NAME[DIM]...;`` on one line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: bytes of each C integer type the sources use
CTYPES = {
    "int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4, "uint32_t": 4,
    "int64_t": 8, "uint64_t": 8, "char": 1,
}  # fmt: skip

_DEFINE = re.compile(r"^\s*#\s*define\s+(\w+)(?!\()\s+(.*?)\s*(?:/\*.*)?$")
_TYPEDEF = re.compile(r"^\s*typedef\s+(\w+)\s+(\w+)\s*;")
_STATIC = re.compile(
    r"^static\s+(?!const\b)(\w+)\s+(\w+)((?:\s*\[[^\]]+\])+)\s*;\s*(?:/\*\s*(.*?)\s*\*/)?"
)
_CAST = re.compile(r"\(\s*(?:u?int(?:8|16|32|64)_t|unsigned|signed|int|long)\s*\)")
_INT = re.compile(r"\b(0[xX][0-9a-fA-F]+|\d+)(?:[uUlL]+)\b")


@dataclass(frozen=True)
class RamArray:
    """One state array: its name, C type, element count and bytes, and its comment."""

    name: str
    ctype: str
    elements: int
    bytes: int
    what: str
    base: str = ""  # the integer type a typedef'd ``ctype`` stands for


class _Env:
    def __init__(self, defines: Mapping[str, str]) -> None:
        self.defines = dict(defines)

    def value(self, expr: str, depth: int = 0) -> int:
        """The integer value of a preprocessor expression (an undefined name is 0, as C's
        preprocessor reads it)."""
        if depth > 20:
            raise ValueError(f"macro nesting too deep in {expr!r}")
        expr = re.sub(r"defined\s*\(\s*(\w+)\s*\)|defined\s+(\w+)",
                      lambda m: "1" if (m.group(1) or m.group(2)) in self.defines else "0",
                      expr)  # fmt: skip
        expr = _CAST.sub("", expr)
        expr = re.sub(r"\bU?INT\d+_C\s*\(", "(", expr)  # stdint's constant macros
        expr = _INT.sub(lambda m: m.group(1), expr)

        def name(m: re.Match[str]) -> str:
            n = m.group(0)
            if n in ("and", "or", "not"):
                return n
            if n not in self.defines:
                return "0"
            return f"({self.value(self.defines[n], depth + 1)})"

        expr = re.sub(r"[A-Za-z_]\w*", name, expr)
        py = (expr.replace("&&", " and ").replace("||", " or ").replace("/", "//")
              .replace("!=", "<>"))  # fmt: skip
        py = py.replace("!", " not ").replace("<>", "!=")
        if not re.fullmatch(r"[\d\s()+\-*/%<>=!&|^~andortx]*", py):
            raise ValueError(f"not an integer expression: {expr!r}")
        try:
            return int(eval(py, {"__builtins__": {}}, {}))  # noqa: S307 (digits and operators)
        except (SyntaxError, TypeError, ValueError, ZeroDivisionError) as e:
            raise ValueError(f"not an integer expression: {expr!r} ({e})") from None


def defines_of(texts: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """The object-like ``#define`` s and the ``typedef`` s of the given sources, in order."""
    defines: dict[str, str] = {}
    typedefs: dict[str, str] = {}
    for text in texts:
        for line in text.splitlines():
            m = _DEFINE.match(line)
            if m and m.group(2):
                defines[m.group(1)] = m.group(2)
            t = _TYPEDEF.match(line)
            if t:
                typedefs[t.group(2)] = t.group(1)
    return defines, typedefs


def ram_arrays(c_source: str, headers: Iterable[str]) -> list[RamArray]:
    """The state arrays of ``c_source`` that the design's macros (from ``headers``, then
    the source's own) keep in, with their sizes."""
    defines, typedefs = defines_of([*headers, c_source])
    env = _Env(defines)
    out: list[RamArray] = []
    stack: list[tuple[bool, bool]] = []  # (this branch taken, some branch already taken)

    def active() -> bool:
        return all(taken for taken, _ in stack)

    for line in c_source.splitlines():
        s = line.strip()
        if s.startswith("#"):
            d = s[1:].strip()
            word, _, rest = d.partition(" ")
            rest = rest.split("/*")[0].strip()
            if word == "if":
                v = bool(env.value(rest))
                stack.append((v, v))
            elif word in ("ifdef", "ifndef"):
                v = (rest in defines) == (word == "ifdef")
                stack.append((v, v))
            elif word == "elif":
                _, done = stack.pop()
                v = not done and bool(env.value(rest))
                stack.append((v, done or v))
            elif word == "else":
                _, done = stack.pop()
                stack.append((not done, True))
            elif word == "endif":
                stack.pop()
            continue
        if not active():
            continue
        m = _STATIC.match(line)
        if not m:
            continue
        ctype, name, dims, what = m.group(1), m.group(2), m.group(3), m.group(4) or ""
        base = typedefs.get(ctype, ctype)
        if base not in CTYPES:
            raise ValueError(f"{name}: unknown C type {ctype!r}")
        n = 1
        for dim in re.findall(r"\[([^\]]+)\]", dims):
            n *= env.value(dim)
        out.append(RamArray(name, ctype, n, n * CTYPES[base], what,
                            base if base != ctype else ""))  # fmt: skip
    return out


def of_export(cdir: Any, source: str, headers: Iterable[str]) -> list[RamArray]:
    """The state arrays of ``source`` in an export's C folder ``cdir`` (a path), with the
    macros of the ``headers`` there."""
    d = Path(cdir)
    return ram_arrays((d / source).read_text(), [(d / h).read_text() for h in headers])


def rows(arrays: Iterable[RamArray]) -> list[str]:
    """The memory map's rows of the state arrays."""
    return [f"| `{a.name}` | {a.what or '-'} | {a.elements:,} x "
            f"{a.ctype}{f' ({a.base})' if a.base else ''} | {a.bytes:,} |"
            for a in arrays]  # fmt: skip
