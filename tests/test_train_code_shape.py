"""The engine stays readable (issue #11): no function in ``lora_compat/train/`` is longer than 150 lines, and the
engine reads nothing from the config but the Plan (its stages take the plan, never a CanonicalConfig)."""

from __future__ import annotations

import ast
from pathlib import Path

TRAIN = Path(__file__).resolve().parent.parent / "lora_compat" / "train"
MAX_LINES = 150


def _functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            out.append((node.name, node.end_lineno - start + 1))
    return out


def test_no_function_in_train_over_150_lines():
    files = sorted(TRAIN.rglob("*.py"))
    assert len(files) > 10  # the package is where this test thinks it is
    long = [f"{p.relative_to(TRAIN)}::{name} ({n} lines)" for p in files for name, n in _functions(p) if n > MAX_LINES]
    assert not long, "functions over 150 lines in lora_compat/train/: " + ", ".join(long)


def test_the_length_check_sees_long_functions(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    f = tmp_path / "m.py"
    f.write_text(f"@staticmethod\ndef long():\n{body}\n", encoding="utf-8")
    assert _functions(f) == [("long", MAX_LINES + 2)]


CONFIG_MODULES = ("lora_compat.config.model", "lora_compat.config.options", "lora_compat.config.load",
                  "lora_compat.config.validate")


def test_engine_never_reads_a_canonical_config():
    """Only ``training_plan`` (which builds the plan) touches the config: nothing else in the engine names
    CanonicalConfig or imports the config model, its options/defaults, the loader or the validator."""
    offenders = []
    for p in sorted(TRAIN.rglob("*.py")):
        tree = ast.parse(p.read_text(encoding="utf-8"))
        allowed: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == "training_plan" and p.name == "engine.py":
                allowed.update(range(node.lineno, node.end_lineno + 1))
        for node in ast.walk(tree):
            where = f"{p.relative_to(TRAIN)}:{getattr(node, 'lineno', 0)}"
            if getattr(node, "lineno", 0) in allowed:
                continue
            if isinstance(node, ast.Name) and node.id == "CanonicalConfig":
                offenders.append(f"{where} CanonicalConfig")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(CONFIG_MODULES):
                offenders.append(f"{where} imports {node.module}")
    assert not offenders, offenders
