"""docs/rules.md is generated from the registry (fails on drift); registry integrity."""

from __future__ import annotations

import re

import pytest

from lora_compat.lint.docs import DEFAULT_PATH, main, render_rules_markdown
from lora_compat.lint.registry import all_rules, get_rule, select_rules


def test_rules_md_is_up_to_date() -> None:
    assert DEFAULT_PATH.read_text(encoding="utf-8") == render_rules_markdown(), \
        "docs/rules.md drifted: run `python -m lora_compat.lint.docs`"


# the project's ../shared reference files do not ship: rule pages never send users there
_SHARED_CITATION = re.compile(r"§|reference\.md|legacy-dialects|peers-and-users|lora-key-layouts|modern-archs|golden/|"
                              r"[Ss]eeds? ?00\d")


def test_every_rule_is_documented_with_examples_and_reference() -> None:
    text = render_rules_markdown()
    for r in all_rules():
        assert f"### {r.code} {r.slug()}" in text
        doc = r.explanation()
        assert "**Anti-pattern**" in doc and "**Best practice**" in doc, r.code
        assert doc.count("```") >= 4, r.code
        # citations name what a user has: sd-scripts / front-end / PEFT source files and functions, our docs
        assert r.reference and re.search(r"^(sd-scripts|kohya_ss|LoRA_Easy_Training|peft|docs/)", r.reference), r.code
        for cited in (r.reference, doc):
            assert not _SHARED_CITATION.search(cited), (r.code, _SHARED_CITATION.search(cited).group(0))
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


# -- the examples of every rule page, run through the real readers ---------------------------------------

_FENCE = re.compile(r"\*\*(Anti-pattern|Best practice)\*\*\s*```(\w*)\n(.*?)```", re.S)
_SUFFIX = {"json": ".json", "toml": ".toml", "bash": ".sh", "sh": ".sh", "bat": ".bat"}
# Anti-patterns that cannot fire from a snippet alone: LC103 (through a reader every schema violation is already
# LC101 or a specific rule), LC322 (a folder layout, not a file), LC252 (the refused dataset config must exist).
# Their per-rule cases (tests/lint_cases/) build the files they need.
_ANTI_NEEDS_CONTEXT = {"LC103", "LC322", "LC252"}


def _examples(kind: str):
    for r in all_rules():
        for k, lang, body in _FENCE.findall(r.explanation()):
            if k == kind and lang in _SUFFIX:
                yield r, lang, body


_DIALECTS = {".json": (None, "kohya-gui", "derrian-argstore"),
             ".toml": (None, "sd-scripts-toml", "derrian-toml", "sd-scripts-dataset"), ".sh": (None,), ".bat": (None,)}


def _load_example(tmp_path, lang: str, body: str, dialect: str | None = None):
    from lora_compat.config.load import load_config
    from lora_compat.config.model import Setting
    from lora_compat.errors import UserError

    p = tmp_path / f"example{_SUFFIX[lang]}"
    p.write_text(body, encoding="utf-8")
    try:
        cfg = load_config(str(p), dialect=dialect, resolve_dataset=False)
    except UserError:
        return None
    if body.startswith("# sdxl_train_network.py"):   # the pages' way to say "an SDXL run"
        cfg.options["sdxl"] = Setting(True)
        cfg.family = "sdxl"
    return cfg


def test_every_anti_pattern_example_triggers_its_rule(tmp_path) -> None:
    # snippets are too small to detect a dialect from, so each dialect of the snippet's format is tried
    from lora_compat.lint.runner import lint_config

    silent = []
    for r, lang, body in _examples("Anti-pattern"):
        if r.code in _ANTI_NEEDS_CONTEXT:
            continue
        cfgs = [_load_example(tmp_path, lang, body, d) for d in _DIALECTS[_SUFFIX[lang]]]
        if not any(c is not None and r.code in {f.code for f in lint_config(c, all_rules())} for c in cfgs):
            silent.append(r.code)
    assert not silent, f"anti-pattern examples that do not trigger their rule: {silent}"


def test_no_best_practice_example_is_an_error(tmp_path) -> None:
    # a "best practice" that sd-scripts would refuse (e.g. a warmup with the default constant scheduler) teaches
    # the next mistake
    from lora_compat.lint.runner import lint_config

    bad = []
    for r, lang, body in _examples("Best practice"):
        cfg = _load_example(tmp_path, lang, body)
        if cfg is not None:
            bad += [(r.code, f.code) for f in lint_config(cfg, all_rules()) if f.severity == "error"]
    assert not bad, bad


def test_docs_script_prints_help_and_refuses_unknown_options(tmp_path, monkeypatch, capsys) -> None:
    """``--help`` is help, never a file named ``--help``; ``--check`` compares without writing."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0 and "--check" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SystemExit) as done:
        main(["--chek"])
    assert done.value.code == 2
    assert main([str(tmp_path / "rules.md"), "--check"]) == 1 and not (tmp_path / "rules.md").exists()
    assert main([str(tmp_path / "rules.md")]) == 0
    assert main([str(tmp_path / "rules.md"), "--check"]) == 0
