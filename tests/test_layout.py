"""The package's import graph, read from the source with ast (nothing is imported): no import cycles, counting the
imports deferred into functions too; the device side (runtime, the bench harness) never reaches torch, even through
a deferred import; and the modules the CLI and the API load at start-up do not import torch at import time."""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import REPO

PACKAGE = REPO / "edgerec"
# what a device does not have: torch and the exporters (the runtimes, tensorrt among them, are its backends)
HEAVY = ("torch", "torch_pruning", "litert_torch", "litert_quantizer", "ai_edge_quantizer", "onnx", "jax")
TORCH_FREE_EVEN_DEFERRED = (
    "edgerec.runtime",
    "edgerec.benchmarking.latency",
    "edgerec.artifact",
    "edgerec.manifest",
    "edgerec.metrics",
    "edgerec.updates.delta",
    "edgerec.importers.pickled",  # reads untrusted pickles: not even torch's code runs on them
    "edgerec.data.align",
    "edgerec.serving",  # the server, its client and load generator run where no torch is installed
    "edgerec.apps",  # the web client's site builder reads a bundle, never a model
)
TORCH_FREE_AT_IMPORT = (
    "edgerec",
    "edgerec.api",
    "edgerec.entry",
    "edgerec.cli.main",
    "edgerec.model.config",
    "edgerec.compression.config",
    "edgerec.exporters.config",
    "edgerec.updates.config",
    "edgerec.importers.config",
    "edgerec.profiles.schema",
    "edgerec.profiles.pipeline",
    "edgerec.data",
    "edgerec.gates",
    "edgerec.targets",
    # a target's exporter module is read for its record and options before anything is exported
    "edgerec.exporters.onnx",
    "edgerec.exporters.onnx_server",
    "edgerec.exporters.tensorrt",
    "edgerec.exporters.triton",
    "edgerec.exporters.tflite",
    "edgerec.exporters.tflite_bundle",
)
# what edgerec/cli/ may import: the verbs, the config modules (a profile's schema is one), the errors, and its own
# modules; everything else is reached through edgerec.api
CLI_MAY_IMPORT = (
    "edgerec",
    "edgerec.api",
    "edgerec.errors",
    "edgerec.config",
    "edgerec.gates",
    "edgerec.data.config",
    "edgerec.model.config",
    "edgerec.compression.config",
    "edgerec.exporters.config",
    "edgerec.updates.config",
    "edgerec.importers.config",
    "edgerec.serving.config",
    "edgerec.benchmarking.config",
    "edgerec.runtime.config",
    "edgerec.experiments.config",
    "edgerec.profiles.schema",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _enclosing(node: ast.AST, parents: dict[ast.AST, ast.AST], kinds: tuple[type, ...]) -> ast.AST | None:
    while node in parents:
        node = parents[node]
        if isinstance(node, kinds):
            return node
    return None


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    block = _enclosing(node, parents, (ast.If,))
    while block is not None:
        if "TYPE_CHECKING" in ast.unparse(block.test):  # type: ignore[attr-defined]
            return True
        block = _enclosing(block, parents, (ast.If,))
    return False


def imports(path: Path, known: set[str], deferred: bool) -> set[str]:
    """The modules `path` imports (edgerec modules by full name, others by top-level name). deferred=False counts
    only the imports that run when the module itself is imported (none inside a function)."""
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    out = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom) or _type_checking_only(node, parents):
            continue
        if not deferred and _enclosing(node, parents, (ast.FunctionDef, ast.AsyncFunctionDef)) is not None:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            assert node.level == 0, f"{path}: relative import"  # the package uses absolute imports only
            base = node.module or ""
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        out |= {name if name.split(".")[0] == "edgerec" else name.split(".")[0] for name in names}
    return out


def graph(deferred: bool, with_packages: bool) -> dict[str, set[str]]:
    """module -> the modules it imports. with_packages: importing a.b.c also runs a's and a.b's __init__."""
    mods = modules()
    known = set(mods)
    g = {m: imports(p, known, deferred) for m, p in mods.items()}
    if with_packages:
        for m, targets in g.items():
            for t in [*targets, m]:
                parts = t.split(".")
                targets |= {".".join(parts[:k]) for k in range(1, len(parts))} & known
            targets.discard(m)
    return g


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(g.get(v, ())):
            if w not in g:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = [stack.pop()]
            while comp[-1] != v:
                comp.append(stack.pop())
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def path_to_heavy(g: dict[str, set[str]], start: str) -> list[str] | None:
    """The shortest import path from `start` to a heavy backend, or None."""
    seen, todo = {start}, [[start]]
    while todo:
        trail = todo.pop(0)
        for nxt in sorted(g.get(trail[-1], ())):
            if nxt in HEAVY:
                return [*trail, nxt]
            if nxt in g and nxt not in seen:
                seen.add(nxt)
                todo.append([*trail, nxt])
    return None


def test_the_checks_below_can_fail() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert path_to_heavy({"a": {"b"}, "b": {"torch"}}, "a") == ["a", "b", "torch"]
    g = graph(deferred=True, with_packages=False)
    assert "edgerec.model.training" in g["edgerec.api"]  # a deferred import is counted
    assert "torch" in g["edgerec.model.ncf"]


def test_the_package_has_no_import_cycle_even_through_deferred_imports() -> None:
    assert cycles(graph(deferred=True, with_packages=False)) == []


def test_the_device_side_never_reaches_torch() -> None:
    g = graph(deferred=True, with_packages=True)
    starts = [m for m in g if m.startswith(TORCH_FREE_EVEN_DEFERRED)]
    assert {"edgerec.runtime.foldin", "edgerec.runtime.fold", "edgerec.benchmarking.latency"} <= set(starts)
    assert {"edgerec.serving.server", "edgerec.serving.load", "edgerec.serving.triton_model"} <= set(starts)
    assert {m: path for m in starts if (path := path_to_heavy(g, m))} == {}


def test_start_up_modules_import_no_backend() -> None:
    g = graph(deferred=False, with_packages=True)
    assert set(TORCH_FREE_AT_IMPORT) <= set(g)
    assert {m: path for m in TORCH_FREE_AT_IMPORT if (path := path_to_heavy(g, m))} == {}


def cli_reaches_past_the_verbs(g: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(a module of edgerec.cli, an edgerec module it imports that is not a verb, a config, an error or the CLI)."""
    return sorted(
        (m, t)
        for m, targets in g.items()
        if m.startswith("edgerec.cli")
        for t in targets
        if t.startswith("edgerec") and t not in CLI_MAY_IMPORT and not t.startswith("edgerec.cli")
    )


def test_the_cli_imports_only_the_verbs_the_configs_and_the_errors() -> None:
    assert cli_reaches_past_the_verbs({"edgerec.cli.x": {"edgerec.api", "edgerec.model.checkpoint"}}) == [
        ("edgerec.cli.x", "edgerec.model.checkpoint")
    ]
    assert cli_reaches_past_the_verbs(graph(deferred=True, with_packages=False)) == []


def test_the_exporters_use_litert_quantizer_not_its_unmaintained_former_name() -> None:
    g = graph(deferred=True, with_packages=False)
    assert "litert_quantizer" in g["edgerec.exporters.tflite_model"]  # the check below sees deferred imports
    assert sorted(m for m, targets in g.items() if "ai_edge_quantizer" in targets) == []
