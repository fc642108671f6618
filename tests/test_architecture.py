"""Layering: a module imports only its own layer or lower ones (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "tinysnn_dse"

FORBIDDEN = {
    "core": {
        "typer",
        "rich",
        "yaml",
        "optuna",
        "tinysnn_dse.data",
        "tinysnn_dse.runner",
        "tinysnn_dse.cli",
        "tinysnn_dse.bench",
        "open",
    },  # fmt: skip
    "data": {
        "typer",
        "rich",
        "optuna",
        "torch",
        "tinysnn_dse.core",
        "tinysnn_dse.runner",
        "tinysnn_dse.cli",
    },  # fmt: skip
    "runner": {"typer", "rich", "yaml", "optuna", "tinysnn_dse.cli", "tinysnn_dse.explore"},
    "meter": {"typer", "rich", "yaml", "optuna", "torch", "tinysnn_dse.cli"},
    "explore": {"typer", "rich", "yaml", "tinysnn_dse.cli", "tinysnn_dse.report"},
    "report": {
        "typer",
        "rich",
        "yaml",
        "optuna",
        "torch",
        "tinysnn_dse.cli",
        "tinysnn_dse.explore",
        "tinysnn_dse.runner",
        "tinysnn_dse.core",
    },
    "bench": {"typer", "rich", "yaml", "tinysnn_dse.cli"},
}


def imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
            out.add("open")
    return out


def layer(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def test_layers_import_only_downwards() -> None:
    bad = []
    for path in SRC.rglob("*.py"):
        rules = FORBIDDEN.get(layer(path), set())
        for mod in imports(path):
            if any(mod == f or mod.startswith(f + ".") for f in rules):
                bad.append(f"{path.relative_to(SRC)} imports {mod}")
    assert not bad, bad


def test_only_cli_imports_typer_and_rich() -> None:
    users = {
        p.relative_to(SRC).as_posix()
        for p in SRC.rglob("*.py")
        if any(m.split(".")[0] in ("typer", "rich") for m in imports(p))
    }
    assert users == {"cli.py"}


def test_only_cli_imports_yaml() -> None:
    users = {
        p.relative_to(SRC).as_posix()
        for p in SRC.rglob("*.py")
        if any(m.split(".")[0] == "yaml" for m in imports(p))
    }
    assert users <= {"cli.py"}
