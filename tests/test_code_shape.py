"""The shape issue #11 set for the code: no function in ``lora_compat/train/`` over 150 lines (the engine is made of
stages a reader can name) and no lint rule file over 400 lines (one rule per file)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "lora_compat"


def long_functions(root: Path, limit: int) -> list[str]:
    """``path:function (lines)`` for every function or method under ``root`` longer than ``limit`` lines."""
    out = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > limit:
                    out.append(f"{path.relative_to(root)}:{node.name} ({length} lines)")
    return out


def test_no_function_in_train_is_over_150_lines() -> None:
    assert long_functions(PKG / "train", 150) == []


def test_no_rule_file_is_over_400_lines() -> None:
    long = [f"{p.relative_to(PKG)} ({n} lines)" for p in sorted((PKG / "lint" / "rules").rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400]
    assert long == []


def test_the_length_check_finds_a_long_function(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("class C:\n    def f(self):\n" + "        x = 1\n" * 150
                                   + "\n\ndef g():\n    return 1\n")
    assert long_functions(tmp_path, 150) == ["m.py:f (151 lines)"]
