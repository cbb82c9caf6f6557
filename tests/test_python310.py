"""Python 3.10 is supported (``requires-python = ">=3.10"``): no 3.11-only standard-library name or syntax.

The real check runs the test suite under Python 3.10 (``.ci/run`` does so when a ``python3.10`` is installed);
this static scan catches the usual slips on machines without one: ``tomllib`` (use ``lora_compat.tomlparse``),
``datetime.UTC``, ``typing.Self``/``Never``/…, ``enum.StrEnum``, ``ExceptionGroup``, ``except*``, ``.add_note``,
``importlib.resources.abc``, ``contextlib.chdir``, ``hashlib.file_digest``, ``asyncio.TaskGroup``/``timeout``.
Code under ``if sys.version_info >= (3, 11):`` is allowed to use them.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from shared_data import ROOT

# module -> names added in 3.11 or later (None: the whole module is new)
NEW_IN_311: dict[str, set[str] | None] = {
    "tomllib": None,
    "wsgiref.types": None,
    "importlib.resources.abc": None,
    "typing": {"Self", "LiteralString", "Never", "assert_never", "assert_type", "reveal_type", "Required",
               "NotRequired", "TypeVarTuple", "Unpack", "dataclass_transform", "get_overloads", "clear_overloads",
               "override", "TypeAliasType", "ReadOnly", "TypeIs"},
    "datetime": {"UTC"},
    "enum": {"StrEnum", "ReprEnum", "verify", "EnumCheck", "member", "nonmember", "global_enum", "show_flag_values"},
    "asyncio": {"TaskGroup", "Runner", "timeout", "timeout_at", "Barrier"},
    "contextlib": {"chdir"},
    "hashlib": {"file_digest"},
    "operator": {"call"},
    "itertools": {"batched"},
}
NEW_BUILTINS = {"ExceptionGroup", "BaseExceptionGroup"}
NEW_METHODS = {"add_note"}

FILES = sorted(p for folder in ("lora_compat", "tests", "benchmarks", "scripts", ".ci")
               for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def _version_guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """True when the node sits in the body of ``if sys.version_info >= (3, 11)`` (or higher)."""
    child, parent = node, parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.If) and child in parent.body and "version_info" in ast.unparse(parent.test):
            return True
        child, parent = parent, parents.get(parent)
    return False


def _problems(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    module_aliases: dict[str, str] = {}   # local name -> module, for `datetime.UTC` style attribute use
    found: list[str] = []

    def report(node: ast.AST, what: str) -> None:
        if not _version_guarded(node, parents):
            found.append(f"{path.relative_to(root)}:{getattr(node, 'lineno', '?')}: {what}")

    for node in ast.walk(tree):
        if type(node).__name__ == "TryStar":
            report(node, "except* (3.11)")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                module_aliases[alias.asname or alias.name] = alias.name
                if NEW_IN_311.get(alias.name, ()) is None:
                    report(node, f"import {alias.name} (3.11)")
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            new = NEW_IN_311.get(node.module, set())
            if new is None:
                report(node, f"from {node.module} import … (3.11)")
            else:
                for alias in node.names:
                    if alias.name in new:
                        report(node, f"from {node.module} import {alias.name} (3.11)")
        elif isinstance(node, ast.Name) and node.id in NEW_BUILTINS:
            report(node, f"{node.id} (3.11)")
        elif isinstance(node, ast.Attribute):
            if node.attr in NEW_METHODS:
                report(node, f".{node.attr}() (3.11)")
            elif isinstance(node.value, ast.Name):
                new = NEW_IN_311.get(module_aliases.get(node.value.id, ""), set())
                if new and node.attr in new:
                    report(node, f"{node.value.id}.{node.attr} (3.11)")
    return found


def test_the_scan_finds_what_it_looks_for(tmp_path):
    sample = tmp_path / "sample.py"
    code = ("import tomllib\nimport datetime\nfrom typing import Self\nx = datetime.UTC\n"
            "e = ExceptionGroup('m', [])\ne.add_note('n')\n"
            "import sys\nif sys.version_info >= (3, 11):\n    import tomllib as ok\n")
    expected = {"import tomllib (3.11)", "from typing import Self (3.11)", "datetime.UTC (3.11)",
                "ExceptionGroup (3.11)", ".add_note() (3.11)"}
    if sys.version_info >= (3, 11):   # Python 3.10 cannot parse except* at all (its test run fails on it)
        code += "try:\n    pass\nexcept* ValueError:\n    pass\n"
        expected.add("except* (3.11)")
    sample.write_text(code, encoding="utf-8")
    assert {p.split(": ", 1)[1] for p in _problems(sample, tmp_path)} == expected


def test_no_python_311_only_constructs():
    problems = [problem for path in FILES for problem in _problems(path)]
    assert not problems, "\n".join(problems)
