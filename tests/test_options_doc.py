"""docs/options.md is generated from the schemas and must not drift from them."""

from __future__ import annotations

from lora_compat.config import options, options_doc


def test_docs_options_md_is_up_to_date():
    current = options_doc.DOC_PATH.read_text(encoding="utf-8")
    assert current == options_doc.render(), (
        "docs/options.md is stale: run `python -m lora_compat.config.options_doc --write`")


def test_every_option_and_dataset_key_is_documented_with_its_facts():
    text = options_doc.render()
    for name in options.option_names():
        section = text.split(f"### `{name}`\n", 1)
        assert len(section) == 2, name
        body = section[1].split("\n### ", 1)[0]
        assert options.description(name) in body
        assert f"| default | {options_doc._code(options.default(name))} |" in body
        for m in options.misconceptions(name):
            assert m["truth"] in body
    for key in options.dataset_param_names():
        assert f"| `{key}` |" in text


def test_check_mode_detects_drift_and_write_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "options.md"
    target.write_text("stale\n", encoding="utf-8")
    monkeypatch.setattr(options_doc, "DOC_PATH", target)
    assert options_doc.main(["--check"]) == 1
    options_doc.write(target)
    assert options_doc.main(["--check"]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["options.md"]  # no temp file left behind
