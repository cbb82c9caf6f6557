"""Every lint rule's cases, as data: tests/lint_cases/<CODE>.toml (format: tests/lint_cases/README.md).

``bad`` cases must make the rule fire (with the key, line, severity, message ... a case names), ``good`` cases must
not, ``fixed`` cases are a file before and after the rule's fixes. A case is a canonical config built directly
(``config``) or a file read by the real readers (``text``, with ``files`` beside it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lora_compat.lint.registry import all_rules, get_rule
from lora_compat.lint.runner import lint_config, lint_file
from lora_compat.tomlparse import tomllib

CASES_DIR = Path(__file__).parent / "lint_cases"
KINDS = ("bad", "good", "fixed")
CASE_KEYS = {"about", "config", "text", "file", "dialect", "files", "key", "keys", "line", "severity", "message",
             "count", "fixed"}


def _load_cases() -> dict[str, dict[str, list[dict[str, Any]]]]:
    out = {}
    for path in sorted(CASES_DIR.glob("LC*.toml")):
        with open(path, "rb") as fh:
            out[path.stem] = tomllib.load(fh)
    return out


CASES = _load_cases()
PARAMS = [pytest.param(code, kind, i, id=f"{code}-{kind}-{i}")
          for code, doc in CASES.items() for kind in KINDS for i in range(len(doc.get(kind, [])))]


def _findings(case: dict[str, Any], tmp_path: Path, canonical_config) -> list:
    """All rules' findings for the case (as `lint` reports them: dedup, generic-vs-specific, suppressions)."""
    if "config" in case:
        return lint_config(canonical_config(**case["config"]), all_rules())
    path = _write_case(case, tmp_path)
    res = lint_file(str(path), all_rules(), dialect=case.get("dialect"))
    assert res.error is None, res.error
    return res.findings


def _write_case(case: dict[str, Any], tmp_path: Path) -> Path:
    for rel, content in case.get("files", {}).items():
        p = tmp_path / rel
        if rel.endswith("/"):
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(content, encoding="utf-8")
    path = tmp_path / case.get("file", "config.toml")
    path.write_text(case["text"], encoding="utf-8")
    return path


def test_every_rule_has_bad_and_good_cases_and_fixable_rules_a_fixed_case() -> None:
    codes = [r.code for r in all_rules()]
    assert sorted(CASES) == codes, "each rule needs tests/lint_cases/<CODE>.toml (and no file without a rule)"
    for r in all_rules():
        doc = CASES[r.code]
        assert doc.get("bad") and doc.get("good"), f"{r.code}: at least one bad and one good case"
        assert bool(doc.get("fixed")) == r.fixable, f"{r.code}: fixable rules (only) have fixed cases"
        assert set(doc) <= set(KINDS), f"{r.code}: unknown sections {set(doc) - set(KINDS)}"
        for kind in KINDS:
            for case in doc.get(kind, []):
                assert set(case) <= CASE_KEYS, f"{r.code}: unknown case keys {set(case) - CASE_KEYS}"
                assert ("config" in case) != ("text" in case), f"{r.code}: a case has either config or text"


@pytest.mark.parametrize(("code", "kind", "index"), PARAMS)
def test_case(code: str, kind: str, index: int, tmp_path: Path, monkeypatch, canonical_config) -> None:
    case = CASES[code][kind][index]
    monkeypatch.chdir(tmp_path)      # relative paths in a case (image folders, dataset configs) resolve beside it
    found = [f for f in _findings(case, tmp_path, canonical_config) if f.code == code]
    if kind == "good":
        assert not found, f"{code} fired on a good case: {[f.message for f in found]}"
        return
    assert found, f"{code} did not fire"
    if "count" in case:
        assert len(found) == case["count"], [f.message for f in found]
    if "keys" in case:
        assert [f.key for f in found] == case["keys"]
    # `message` picks the finding the other expectations are about (else the rule's first finding)
    first = next((f for f in found if case.get("message", "") in f.message), None)
    assert first is not None, (case["message"], [f.message for f in found])
    for field in ("key", "line", "severity"):
        if field in case:
            assert getattr(first, field) == case[field], (field, getattr(first, field))
    if kind == "fixed":
        _check_fixed(code, case, found, tmp_path, canonical_config)


def _check_fixed(code: str, case: dict[str, Any], found: list, tmp_path: Path, canonical_config) -> None:
    from lora_compat.lint.fixes import apply_fixes

    fixes = [f.fix for f in found if f.fix is not None]
    assert fixes, f"{code}: a fixed case must offer a fix"
    path = tmp_path / case.get("file", "config.toml")
    text = apply_fixes(str(path), fixes)
    assert text == case["fixed"]
    path.write_text(text, encoding="utf-8")
    assert not [f for f in _findings(case | {"text": text}, tmp_path, canonical_config) if f.code == code], \
        f"{code} still fires on the fixed file"


def test_cases_use_existing_rules_only() -> None:
    assert all(get_rule(code) is not None for code in CASES)
