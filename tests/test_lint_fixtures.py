"""Lint file fixtures through the real readers: misconceptions are detected from values AS WRITTEN in each dialect."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lora_compat.lint.registry import all_rules
from lora_compat.lint.runner import lint_file

from shared_data import FIXTURES

LINT = FIXTURES / "lint"

EXPECTED = {
    # seed-003-shaped values in a Derrian ArgStore (A2) file: each one found from the raw value, at its own key
    "derrian_a2_misconceptions.json": {
        "LC301": "alpha", "LC302": "keep_tokens", "LC303": "clip_skip", "LC304": "xformers", "LC305": "buckets",
        "LC306": "vae", "LC307": "v_parameterization", "LC308": "save_precision", "LC309": "mixed_precision",
        "LC310": "tag_occurrence_txt_file", "LC311": "warmup_lr_ratio", "LC314": "scheduler",
        "LC319": "lora_model_for_resume", "LC321": "change_output_name", "LC324": "net_dim",
        "LC104": "max_clip_token_length", "LC112": "save_as", "LC317": "bucket_reso_steps", "LC501": "wandb_api_key",
    },
    # Derrian A1 quirks, reported from the reader's notes
    "derrian_a1_quirks.json": {"LC606": "text_only", "LC607": "gradient_acc_steps", "LC608": "random_crop"},
    "derrian_ui_sdxl.toml": {
        "LC210": "subsets[0].shuffle_caption", "LC211": "network_args.args.cache_text_encoder_outputs",
        "LC402": "general_args.args.mixed_precision", "LC504": "optimizer_args.args.lr_scheduler_type",
        "LC506": "saving_args.args.save_model_as",
    },
    "kohya_sdxl_bad.json": {"LC209": "color_aug", "LC205": "keep_tokens", "LC401": "clip_skip",
                            "LC402": "mixed_precision", "LC501": "wandb_api_key", "LC609": "conv_dim",
                            "LC611": "epoch"},
    "sdscripts_bad.toml": {"LC105": "lr_warmup_steps", "LC106": "resolution", "LC218": "lr_warmup_steps",
                           "LC503": "optimizer_type", "LC506": "save_model_as", "LC601": "caption_extention",
                           "LC202": "network_dim", "LC501": "wandb_api_key"},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_findings_at_keys_as_written(name: str) -> None:
    res = lint_file(str(LINT / name), all_rules())
    assert res.error is None, res.error
    got = {(f.code, f.key) for f in res.findings}
    for code, key in EXPECTED[name].items():
        assert (code, key) in got, f"{code} at {key!r} missing; got {sorted(got)}"
    assert all(f.line for f in res.findings if f.code in EXPECTED[name]), "findings must carry the line"


def test_generic_invalid_value_is_not_repeated_where_a_misconception_rule_explains_it() -> None:
    res = lint_file(str(LINT / "derrian_a2_misconceptions.json"), all_rules())
    keys_with_specific = {f.key for f in res.findings if f.code.startswith("LC3")}
    assert not [f for f in res.findings if f.code == "LC101" and f.key in keys_with_specific]


def test_clean_fixture_has_no_findings() -> None:
    res = lint_file(str(LINT / "clean.toml"), all_rules())
    assert res.error is None and res.findings == []


def test_fix_nested_derrian_toml_key(tmp_path: Path) -> None:
    from lora_compat.lint.fixes import apply_fixes

    src = tmp_path / "u.toml"
    shutil.copy(LINT / "derrian_ui_sdxl.toml", src)
    res = lint_file(str(src), all_rules())
    fixes = [f.fix for f in res.findings if f.fix is not None]
    assert [f.key for f in fixes] == ["saving_args.args.save_model_as"]
    text = apply_fixes(str(src), fixes)
    assert 'save_model_as = "safetensors"' in text and "# Derrian UI TOML" in text
    assert text.count("\n") == src.read_text(encoding="utf-8").count("\n")


def test_fix_save_precision_number(tmp_path: Path) -> None:
    from lora_compat.lint.fixes import apply_fixes

    src = tmp_path / "d.json"
    shutil.copy(LINT / "derrian_a2_misconceptions.json", src)
    res = lint_file(str(src), all_rules())
    (fx,) = [f.fix for f in res.findings if f.code == "LC308"]
    text = apply_fixes(str(src), [fx])
    assert '"save_precision": "fp16"' in text and text.count("\n") == src.read_text(encoding="utf-8").count("\n")
