"""docs/rules.md is generated from the registry (fails on drift); registry integrity."""

from __future__ import annotations

import re

from lora_compat.lint.docs import DEFAULT_PATH, render_rules_markdown
from lora_compat.lint.registry import all_rules, get_rule, select_rules


def test_rules_md_is_up_to_date() -> None:
    assert DEFAULT_PATH.read_text(encoding="utf-8") == render_rules_markdown(), \
        "docs/rules.md drifted: run `python -m lora_compat.lint.docs`"


def test_every_rule_is_documented_with_examples_and_reference() -> None:
    text = render_rules_markdown()
    for r in all_rules():
        assert f"### {r.code} {r.name}" in text
        doc = r.explanation()
        assert "**Anti-pattern**" in doc and "**Best practice**" in doc, r.code
        assert doc.count("```") >= 4, r.code
        assert r.reference and re.search(r"§|seed 003|schemas/", r.reference), r.code
        assert r.summary and len(r.summary) < 120, r.code
        assert r.message


def test_codes_names_unique_and_lookup() -> None:
    rules = all_rules()
    assert len({r.code for r in rules}) == len(rules) == len({r.name for r in rules})
    assert get_rule("lc205").code == "LC205" and get_rule("keep-tokens-no-effect").code == "LC205"
    assert get_rule("LC999") is None
    assert {r.code[:3] for r in select_rules(["LC3"])} == {"LC3"}
    assert "LC301" not in {r.code for r in select_rules(["LC3"], ["alpha-looks-like-learning-rate"])}


def test_pre_commit_hook_declared() -> None:
    hooks = (DEFAULT_PATH.parents[1] / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    assert "id: lora-compat-lint" in hooks and "entry: lora-compat lint" in hooks
