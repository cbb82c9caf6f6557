"""Bucket list and bucket selection against sd-scripts' BucketManager (golden/buckets.json)."""

from __future__ import annotations

import pytest

from lora_compat.semantics import BucketSelector, crop_ltrb, make_bucket_resolutions, round_bucket_limits, select_bucket

from shared_data import golden

EXPECTED_CASES = 7


def _cases() -> list[dict]:
    cases = golden("buckets.json")["cases"]
    assert len(cases) == EXPECTED_CASES
    return cases


def test_every_golden_bucket_case() -> None:
    checked = 0
    for case in _cases():
        sel = BucketSelector(tuple(case["resolution"]), min_bucket_reso=case["min_bucket_reso"],
                             max_bucket_reso=case["max_bucket_reso"], bucket_reso_steps=case["bucket_reso_steps"],
                             no_upscale=case["bucket_no_upscale"])
        if case["predefined_buckets"] is not None:
            assert [list(b) for b in sel.predefined] == case["predefined_buckets"], case["name"]
        else:
            assert sel.predefined == []
        for s in case["selections"]:
            bucket, resized, err = sel.select(*s["image"])
            assert list(bucket) == s["bucket"], (case["name"], s)
            assert list(resized) == s["resized"], (case["name"], s)
            assert err == pytest.approx(s["ar_error"], rel=1e-12, abs=1e-12), (case["name"], s)
            checked += 1
    assert checked == sum(len(c["selections"]) for c in _cases())


def test_functional_select_bucket_matches_class() -> None:
    sel = BucketSelector((1024, 1024), min_bucket_reso=256, max_bucket_reso=2048, bucket_reso_steps=64)
    for size in [(1920, 1080), (333, 777), (64, 2048)]:
        assert select_bucket(size, (1024, 1024), max_bucket_reso=2048) == sel.select(*size)


def test_bucket_area_never_exceeds_resolution_area() -> None:
    for reso in [(512, 512), (768, 512), (1024, 1024)]:
        for w, h in make_bucket_resolutions(reso, 256, 2048, 64):
            assert w * h <= reso[0] * reso[1]
            assert w % 64 == 0 and h % 64 == 0


def test_round_bucket_limits() -> None:
    assert round_bucket_limits(300, 1000, 64) == (256, 1024)
    assert round_bucket_limits(256, 1024, 64) == (256, 1024)


def test_crop_ltrb_is_letterbox_not_actual_crop() -> None:
    # A wide image trimmed left/right in reality reports a top offset (letterbox formula of sd-scripts).
    assert crop_ltrb((512, 512), (1024, 512)) == (0, 128, 512, 384)
    assert crop_ltrb((512, 512), (512, 1024)) == (128, 0, 384, 512)
    assert crop_ltrb((640, 384), (640, 384)) == (0, 0, 640, 384)
