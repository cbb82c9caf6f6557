"""Imports flow down (DESIGN.md, house rules; CONTRIBUTING.md "Layering"), and no module imports itself round.

The face (``cli``, ``demo``) calls the wings (``lint``, ``migrate``, ``plan``, ``train``, ``weights``, ``plots``);
the wings read the spine (``config``) and the shared facts (``arch``, ``semantics``) and the foundation
(``errors``, ``atomic``, ``resources``, ``tomlparse``, the package's ``__version__``). Wings never import each
other, except ``train`` -> ``plan`` (the Plan is the engine's only input) and ``train`` -> ``plots`` (training
curves). ``weights`` reads ``config`` only for credential redaction.

The graph is read from the source with ``ast`` (every import: module level, inside functions and under
``TYPE_CHECKING``), so a lazy import cannot hide a dependency or a circle.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from shared_data import ROOT

PACKAGE = ROOT / "lora_compat"

FOUNDATION = frozenset({"errors", "atomic", "resources", "tomlparse", "__init__"})
WINGS = frozenset({"lint", "migrate", "plan", "train", "weights", "plots"})

#: top-level part of lora_compat -> the parts it may import (besides itself)
ALLOWED: dict[str, frozenset[str]] = {
    "__init__": frozenset(),
    "errors": frozenset(),
    "tomlparse": frozenset(),
    "resources": frozenset(),
    "atomic": frozenset({"errors"}),
    "arch": FOUNDATION | {"semantics"},  # semantics' pure parsers (network_reg_dims patterns)
    "semantics": FOUNDATION,
    "config": FOUNDATION | {"arch", "semantics"},
    "lint": FOUNDATION | {"config", "arch", "semantics"},
    "migrate": FOUNDATION | {"config", "arch", "semantics"},
    "plan": FOUNDATION | {"config", "arch", "semantics"},
    "train": FOUNDATION | {"config", "arch", "semantics", "plan", "plots"},
    "weights": FOUNDATION | {"config", "arch"},
    "plots": FOUNDATION,
    "demo": FOUNDATION | {"config", "arch", "semantics"} | WINGS,
    "cli": FOUNDATION | {"config", "arch", "semantics", "demo"} | WINGS,
    "__main__": frozenset({"cli"}),
}

#: (importing part, imported module) pairs narrower than ALLOWED: weights may read config only for secrets.
ONLY_MODULES: dict[tuple[str, str], frozenset[str]] = {
    ("weights", "config"): frozenset({"lora_compat.config.secrets"}),
}

#: Known exceptions, each with its reason (importer module, imported module).
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("lora_compat.semantics.samples", "lora_compat.config.loaders"):
        "a TOML sample-prompt file is read with the spine's one TOML reader (one-line errors with positions)",
    ("lora_compat.train.flux.family", "lora_compat.weights.convert"):
        "the FLUX engine writes --peft folders through the weights converter (one PEFT writer)",
}


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module of ``name`` (``lora_compat.a.b.attr`` -> ``lora_compat.a.b``), None outside the package."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(modules: dict[str, Path] | None = None) -> dict[str, dict[str, int]]:
    """module -> {imported lora_compat module: first line}, from every import statement of the package."""
    modules = modules or _modules()
    graph: dict[str, dict[str, int]] = defaultdict(dict)
    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".")
                    if not is_pkg:
                        base = base[:-1]
                    base = base[:len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets = [f"{source}.{a.name}" for a in node.names]
            for t in targets:
                if t.split(".")[0] != "lora_compat":
                    continue
                found = _resolve(t, modules)
                if found and found != mod:
                    graph[mod].setdefault(found, node.lineno)
    return graph


def part_of(module: str) -> str:
    """The top-level part of the package a module belongs to (``lora_compat.config.load`` -> ``config``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layering_violations(graph: dict[str, dict[str, int]]) -> list[str]:
    out = []
    for mod, deps in graph.items():
        a = part_of(mod)
        for dep, line in deps.items():
            b = part_of(dep)
            if a == b or (mod, dep) in EXCEPTIONS:
                continue
            only = ONLY_MODULES.get((a, b))
            if b not in ALLOWED[a] or (only is not None and dep not in only):
                out.append(f"{mod} (line {line}) imports {dep}: {a} may not import {b}")
    return sorted(out)


def import_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0
    for root in sorted(set(graph) | {d for deps in graph.values() for d in deps}):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, {}))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    cycles.append(sorted(comp))
    return cycles


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {part_of(m) for m in _modules()}
    assert parts <= set(ALLOWED), f"add {sorted(parts - set(ALLOWED))} to ALLOWED (and CONTRIBUTING.md)"


def test_imports_flow_down() -> None:
    violations = layering_violations(import_graph())
    assert not violations, "imports against the layering:\n" + "\n".join(violations)


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles = import_cycles(graph)
    detail = ["  " + " <-> ".join(c) for c in cycles]
    assert not cycles, "modules that import each other (directly or round a circle):\n" + "\n".join(detail)


def test_exceptions_are_still_needed() -> None:
    graph = import_graph()
    stale = [pair for pair in EXCEPTIONS if pair[1] not in graph.get(pair[0], {})]
    assert not stale, f"exceptions no longer used, remove them: {stale}"


def test_tests_never_import_conftest() -> None:
    """pytest loads conftest.py itself (importing it as a module can load it twice); helpers live in shared_data."""
    offenders = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n.split(".")[-1] == "conftest" for n in names):
                offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, f"import helpers from shared_data, fixtures by name: {offenders}"


def test_the_checks_find_what_they_look_for(tmp_path: Path) -> None:
    """Self-test on a made-up package: a wing importing another wing, and a circle through a lazy import."""
    pkg = tmp_path / "lora_compat"
    for rel, text in {
        "__init__.py": "",
        "weights/__init__.py": "",
        "weights/a.py": "from lora_compat.train.engine import run\n",
        "train/__init__.py": "",
        "train/engine.py": "def run():\n    from lora_compat.train import loop\n",
        "train/loop.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .engine import run\n",
    }.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    modules = {_module_name(p, tmp_path): p for p in pkg.rglob("*.py")}
    graph = import_graph(modules)
    assert layering_violations(graph) == [
        "lora_compat.weights.a (line 1) imports lora_compat.train.engine: weights may not import train"]
    assert import_cycles(graph) == [["lora_compat.train.engine", "lora_compat.train.loop"]]

