"""Lint rules across rules: families, credentials, reader notes and their home rules, retired codes.

Each rule's own cases (must fire / must not / fixed) are data files: tests/lint_cases/<CODE>.toml, collected by
tests/test_lint_cases.py.
"""

from __future__ import annotations

from lora_compat.config.model import Note, Origin
from lora_compat.lint.registry import all_rules, get_rule
from lora_compat.lint.runner import lint_config

SRC = "cfg.toml"
K = "kohya-gui"


def codes(cfg) -> set[str]:
    return {f.code for f in lint_config(cfg, all_rules())}


def test_at_least_forty_rules_and_every_family() -> None:
    rules = all_rules()
    assert len(rules) >= 40
    assert {r.code[:3] for r in rules} == {"LC1", "LC2", "LC3", "LC4", "LC5", "LC6"}
    assert get_rule("LC605") is None   # retired: split (an alias of several rules)


def test_credential_never_in_messages(canonical_config) -> None:
    secret = "wandb-0123456789abcdef"
    cfg = canonical_config(wandb_api_key=secret, unknown={"my_password": secret})
    findings = lint_config(cfg, all_rules())
    assert any(f.code == "LC501" for f in findings)
    assert all(secret not in f.message and secret not in (f.key or "") for f in findings)


def test_notes_are_reported_once_by_their_home_rule(canonical_config) -> None:
    C = canonical_config
    note = Note("kohya-gui-use-wandb-dropped", "use_wandb dropped", Origin(SRC, "use_wandb", 5))
    found = lint_config(C(K, notes=(note,)), all_rules())
    assert [f.code for f in found if f.note == note.code] == ["LC610"]
    # a note whose home rule's own check stays silent still reaches the user, through that rule, tagged with its
    # code (so `lora-compat explain kohya-gui-caption-extension-empty` tells what it means)
    other = Note("kohya-gui-caption-extension-empty", "caption_extension empty", Origin(SRC, "x", 5))
    (f,) = [f for f in lint_config(C("native", caption_extension=".txt", notes=(other,)), all_rules())
            if f.code == "LC234"]
    assert f.note == other.code and f.message == "caption_extension empty [kohya-gui-caption-extension-empty]"


def test_every_reader_note_has_exactly_one_home_rule(canonical_config) -> None:
    from lora_compat.config.notes import NOTE_CODES
    from lora_compat.lint.registry import note_homes

    C = canonical_config
    homes = note_homes()
    assert sorted(homes) == sorted(NOTE_CODES), "give each new note code a home rule (note_codes) in lint/rules"
    for code, rule in homes.items():
        cfg = C(K, notes=(Note(code, "seen", Origin(SRC, "k", 3)),))
        if code in rule.quiet_notes:
            continue
        assert rule.code in codes(cfg), (code, rule.code)


def test_retired_lc605_still_selects_what_it_reported() -> None:
    from lora_compat.lint.registry import select_rules

    split = {r.code for r in select_rules(["LC605"])}
    assert {"LC617", "LC618", "LC621", "LC622", "LC251", "LC409"} <= split
    assert not split & {r.code for r in select_rules(ignore=["frontend-quirk"])}
