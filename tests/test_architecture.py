"""Layering as allow-lists (docs/architecture.md): each layer names what it may import;
anything else, a new dependency included, fails here until the table says why it may.

Standard-library modules are allowed everywhere except in ``core``, which is pure: no file
system, process, network or clock access (``os``, ``pathlib``, ``tempfile``, ``time``,
...), and no file access by call either (``open``, ``Path.read_text``, ``torch.save``,
``np.load``, ...).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "tinysnn_dse"

T = "tinysnn_dse."
#: layer -> the third-party packages and project modules it may import
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    # the one table of design axes: standard library and the modes' own declarations (a
    # module of core that imports nothing else), for every layer
    "axes": {T + "errors", T + "core.modes"},
    "records": {T + "errors", T + "axes"},  # the one record type: likewise
    "files": {T + "errors"},  # writing outputs whole or not at all: for every layer that writes
    "__init__": set(),
    "core": {
        "numpy",
        "torch",
        "numba",
        "triton",
        T + "core",
        T + "errors",
        T + "records",
        T + "axes",
    },  # fmt: skip
    "data": {"numpy", "sklearn", T + "errors", T + "event_data"},
    # event data sets through tonic (optional: a one-line error without it), h5py for SHD
    "event_data": {"numpy", "tonic", "h5py", T + "errors"},
    "meter": {"pynvml", T + "errors"},
    "runner": {
        "numpy",
        "torch",
        T + "core",
        T + "data",
        T + "meter",
        T + "errors",
        T + "records",
        T + "files",
        "tinysnn_dse",
        "torchattacks",  # runner/robustness.py alone (optional; a one-line error without it)
    },  # fmt: skip
    "bench": {"numpy", "torch", T + "core", T + "data", T + "runner", T + "errors", "tinysnn_dse"},
    "explore": {
        "matplotlib",  # Optuna's hypervolume history is a matplotlib plot (its line is the data)
        "optuna",
        "sqlalchemy",
        "numpy",
        "torch",
        T + "core",
        T + "data",
        T + "runner",
        T + "errors",
        T + "files",
        T + "explore",
        "tinysnn_dse",
    },  # fmt: skip
    # a chosen design as files: NIR (the declared `nir` package) and integer C; norse and
    # nirtorch are the optional consumer the NIR check imports (tests, docs), never the CLI
    "export": {
        "numpy",
        "torch",
        "nir",
        "norse",
        "nirtorch",
        "unicorn",  # export/mcu.py alone, with elftools (optional: the mcu extra)
        "elftools",
        T + "core",
        T + "runner",
        T + "errors",
        T + "records",
        T + "files",
        T + "export",
        "tinysnn_dse",
    },  # fmt: skip
    "report": {"matplotlib", T + "errors", T + "report", T + "records", T + "axes", T + "files"},
    "cli": {"typer", "rich", "yaml", "torch", "numpy", "tinysnn_dse"},
}

#: standard-library modules the pure core may use
CORE_STDLIB = {
    "__future__", "collections", "contextlib", "dataclasses", "enum", "fractions", "functools",
    "math", "types", "typing", "weakref",
}  # fmt: skip

#: calls that touch files, wherever they appear in core: methods of paths and files ...
FILE_METHODS = {
    "open", "read_text", "write_text", "read_bytes", "write_bytes", "unlink", "mkdir",
    "rename", "touch", "tofile", "rmdir", "iterdir", "glob",
}  # fmt: skip
#: ... and the (de)serialisers of these modules
FILE_MODULES = {"torch", "np", "numpy", "pickle", "json", "shutil"}
FILE_FUNCS = {"save", "load", "savez", "savetxt", "loadtxt", "fromfile", "dump", "copy", "move"}


def imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def file_calls(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id == "open":
            out.add("open")
        elif isinstance(f, ast.Attribute):
            owner = f.value.id if isinstance(f.value, ast.Name) else ""
            if f.attr in FILE_METHODS or (owner in FILE_MODULES and f.attr in FILE_FUNCS):
                out.add(f"{owner}.{f.attr}" if owner else f.attr)
    return out


def layer(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def allowed(lay: str, mod: str) -> bool:
    top = mod.split(".")[0]
    if top in sys.stdlib_module_names:
        return lay != "core" or top in CORE_STDLIB
    return any(mod == a or mod.startswith(a + ".") for a in ALLOWED[lay])


def test_every_module_has_a_layer() -> None:
    missing = {layer(p) for p in SRC.rglob("*.py")} - ALLOWED.keys()
    assert not missing, f"add these layers to ALLOWED with what they may import: {missing}"


def test_layers_import_only_what_they_are_allowed() -> None:
    bad = [
        f"{p.relative_to(SRC)} imports {m}"
        for p in SRC.rglob("*.py")
        for m in sorted(imports(p))
        if not allowed(layer(p), m)
    ]
    assert not bad, bad


def test_core_touches_no_files() -> None:
    bad = {p.name: file_calls(p) for p in (SRC / "core").glob("*.py") if file_calls(p)}
    assert not bad, bad


def test_the_check_catches_what_it_should() -> None:
    """The rules themselves: core may not reach a file, the clock, the CLI or explore."""
    for mod in ("os", "pathlib", "time", "tinysnn_dse.explore", "tinysnn_dse.report", "yaml"):
        assert not allowed("core", mod)
    assert not allowed("report", "torch") and not allowed("explore", "typer")
    assert allowed("data", "gzip") and allowed("core", "numba")
    probe = SRC.parent.parent / "tests" / "_probe_file_calls.py"
    probe.write_text(
        "import torch\nfrom pathlib import Path\nopen('x')\ntorch.save(1, 'y')\n"
        "Path('z').read_text()\nimport dataclasses\ndataclasses.replace(1)\n"
    )
    try:
        assert file_calls(probe) == {"open", "torch.save", "read_text"}
    finally:
        probe.unlink()


def test_core_tests_import_only_what_core_may() -> None:
    """Tests mirror the package: a test under tests/core tests the core alone, so it
    imports only what core itself may (a test of the runner belongs in test_runner.py)."""
    tests = SRC.parent.parent / "tests" / "core"
    bad = [
        f"{p.name} imports {m}"
        for p in sorted(tests.glob("*.py"))
        for m in sorted(imports(p))
        if m.startswith(T) and not allowed("core", m)
    ]
    assert not bad, bad


def test_only_cli_imports_typer_rich_and_yaml() -> None:
    users = {
        p.relative_to(SRC).as_posix()
        for p in SRC.rglob("*.py")
        if any(m.split(".")[0] in ("typer", "rich", "yaml") for m in imports(p))
    }
    assert users == {"cli.py"}
