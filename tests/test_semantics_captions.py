"""process_caption against sd-scripts' own outputs (golden/captions.json) plus behaviour checks."""

from __future__ import annotations

import random

import pytest

from lora_compat.semantics import CaptionParams, effective_token_warmup_step, process_caption

from shared_data import golden

EXPECTED_CASES = 810


def test_every_golden_caption_case() -> None:
    data = golden("captions.json")
    cases = data["cases"]
    assert len(cases) == EXPECTED_CASES
    failures = []
    for case in cases:
        random.seed(case["seed"])
        got = process_caption(case["caption"], case["subset"], epoch=case["epoch"], step=case["step"],
                              max_train_steps=100)
        if got != case["result"]:
            failures.append((case["variant"], case["caption"], case["epoch"], case["step"], case["seed"], got,
                             case["result"]))
    assert not failures, failures[:5]


def test_private_rng_gives_same_result_as_seeded_global_random() -> None:
    params = {"shuffle_caption": True, "keep_tokens": 1, "caption_tag_dropout_rate": 0.3}
    caption = "a, b, c, d, e, f, g"
    random.seed(7)
    via_global = process_caption(caption, params, epoch=1, step=0, max_train_steps=10)
    via_private = process_caption(caption, params, epoch=1, step=0, max_train_steps=10, rng=random.Random(7))
    assert via_global == via_private


def test_keep_tokens_separator_left_literally_without_token_block() -> None:
    # sd-scripts only splits on the separator inside the shuffle/warmup/tag-dropout branch.
    caption = "trigger ||| red hair, blue eyes"
    assert process_caption(caption, {"keep_tokens_separator": "|||"}, epoch=1, step=0,
                           max_train_steps=10) == caption


def test_keep_tokens_separator_fixed_prefix_and_suffix_stay_in_place() -> None:
    caption = "trigger, style ||| a, b, c, d ||| tail"
    params = {"keep_tokens_separator": "|||", "shuffle_caption": True}
    for seed in range(20):
        out = process_caption(caption, params, epoch=1, step=0, max_train_steps=10, rng=random.Random(seed))
        tags = out.split(", ")
        assert tags[:2] == ["trigger", "style"] and tags[-1] == "tail"
        assert sorted(tags[2:-1]) == ["a", "b", "c", "d"]


def test_caption_dropout_every_n_epochs_uses_epoch_modulo() -> None:
    params = {"caption_dropout_every_n_epochs": 2, "caption_prefix": "ohwx"}
    assert process_caption("x", params, epoch=2, step=0, max_train_steps=10) == ""
    assert process_caption("x", params, epoch=0, step=0, max_train_steps=10) == ""  # lagging worker epoch 0
    assert process_caption("x", params, epoch=3, step=0, max_train_steps=10) == "ohwx x"


def test_token_warmup_ratio_is_resolved_against_max_train_steps() -> None:
    assert effective_token_warmup_step(0.5, 100) == 50
    assert effective_token_warmup_step(10, 100) == 10
    params = {"token_warmup_step": 0.5, "token_warmup_min": 1}
    caption = "a, b, c, d, e"
    assert process_caption(caption, params, epoch=1, step=0, max_train_steps=100) == "a"
    assert process_caption(caption, params, epoch=1, step=50, max_train_steps=100) == caption


def test_custom_caption_separator_is_rejoined_with_comma_space() -> None:
    params = {"caption_separator": ";", "keep_tokens": 3, "caption_tag_dropout_rate": 1e-9}
    assert process_caption("a;b;c", params, epoch=1, step=0, max_train_steps=1,
                           rng=random.Random(0)) == "a, b, c"


@pytest.mark.parametrize("rate", [0.0, 0.25])
def test_from_mapping_ignores_foreign_keys_and_none(rate: float) -> None:
    p = CaptionParams.from_mapping({"num_repeats": 3, "caption_tag_dropout_rate": rate, "keep_tokens": None})
    assert p.caption_tag_dropout_rate == rate and p.keep_tokens == 0
    assert p.uses_token_block is (rate > 0)


def test_semantics_module_imports_no_heavy_dependency() -> None:
    import subprocess
    import sys

    code = ("import sys, lora_compat.semantics; "
            "bad = [m for m in ('torch', 'numpy', 'diffusers', 'transformers') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_caption_defaults_agree_with_the_dataset_blueprint_defaults() -> None:
    from dataclasses import fields

    from lora_compat.config.dataset import DREAMBOOTH, SUBSET_PARAMS

    spine = SUBSET_PARAMS[DREAMBOOTH]
    for f in fields(CaptionParams):
        assert getattr(CaptionParams(), f.name) == spine[f.name], f.name


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_TAG = st.text(alphabet="abcdefgh xyz", min_size=1, max_size=6).map(str.strip).filter(bool)


@settings(max_examples=150, deadline=None)
@given(tags=st.lists(_TAG, min_size=1, max_size=12), keep=st.integers(0, 4), shuffle=st.booleans(),
       drop=st.sampled_from([0.0, 0.3]), seed=st.integers(0, 2**16))
def test_token_block_only_permutes_or_drops_flexible_tags(tags, keep, shuffle, drop, seed) -> None:
    caption = ", ".join(tags)
    params = {"shuffle_caption": shuffle, "keep_tokens": keep, "caption_tag_dropout_rate": drop}
    out = process_caption(caption, params, epoch=1, step=0, max_train_steps=10, rng=random.Random(seed))
    if not CaptionParams.from_mapping(params).uses_token_block:
        assert out == caption
        return
    got = out.split(", ") if out else []                  # every tag may be dropped
    assert got[:keep] == tags[:keep]                      # kept tags stay first, in order
    rest, pool = got[keep:], list(tags[keep:])
    for tag in rest:                                      # the others are a sub-multiset of the input
        pool.remove(tag)
    if drop == 0.0:
        assert pool == []
