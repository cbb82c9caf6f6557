"""Value coercion shared by the dialect readers (string numbers, "" = unset, int_or_float, args strings)."""

from __future__ import annotations

import pytest

from lora_compat.config.dialects.coerce import (
    BOOL,
    FLOAT,
    INT,
    INT_OR_FLOAT,
    STR,
    STR_LIST,
    UNSET,
    args_table_to_list,
    canonical_kind,
    coerce,
    is_zero_like,
    split_args_string,
)


@pytest.mark.parametrize("raw,kind,value,changed", [
    ("0.0001", FLOAT, 0.0001, True), (1, FLOAT, 1.0, False), ("8", INT, 8, True), (64.0, INT, 64, True),
    (8, INT, 8, False), ("True", BOOL, True, True), (False, BOOL, False, False), (5, STR, "5", True),
    ("", INT, UNSET, True), (None, FLOAT, UNSET, True), ("  ", STR, UNSET, True),
    (10, INT_OR_FLOAT, 10, False), (0.1, INT_OR_FLOAT, 0.1, False), (1.0, INT_OR_FLOAT, 1.0, False),
    ("10", INT_OR_FLOAT, 10, True), ("0.05", INT_OR_FLOAT, 0.05, True), ("10%", INT_OR_FLOAT, 0.1, True),
    (["a", "", "b"], STR_LIST, ["a", "b"], True), (False, INT, 0, True),
])
def test_coerce(raw, kind, value, changed):
    c = coerce(raw, kind)
    assert c.ok and c.value == value and type(c.value) is type(value) and c.changed == changed


@pytest.mark.parametrize("raw,kind", [("abc", INT), ("0.5", INT), (1.5, INT), ("x", FLOAT), ("yes", BOOL),
                                      ("1.0", INT_OR_FLOAT), ("1e2", INT_OR_FLOAT), ({}, FLOAT), (True, STR)])
def test_coerce_errors(raw, kind):
    assert not coerce(raw, kind).ok


def test_split_args_string_like_the_gui():
    assert split_args_string('"decouple=True" "weight_decay=0.01"') == ["decouple=True", "weight_decay=0.01"]
    assert split_args_string("betas=0.9, 0.99") == ["betas=0.9,", "0.99"]   # falls apart, as in the GUI
    assert split_args_string("") == []


def test_args_table_to_list():
    assert args_table_to_list({"a": "1", "b": [1, 2], "c": True}) == ["a=1", "b=1,2", "c=True"]


def test_canonical_kind_from_schema():
    assert canonical_kind("network_dim") == INT and canonical_kind("xformers") == BOOL
    assert canonical_kind("lr_warmup_steps") == INT_OR_FLOAT and canonical_kind("optimizer_args") == STR_LIST
    assert canonical_kind("text_encoder_lr") == "list[float]"


def test_is_zero_like():
    assert is_zero_like(0) and is_zero_like("") and is_zero_like(False) and is_zero_like([]) and is_zero_like(UNSET)
    assert not is_zero_like(0.1) and not is_zero_like("0") and not is_zero_like(True)


def test_python_int_truncation_of_front_ends() -> None:
    from lora_compat.config.dialects.coerce import coerce_like_python_int

    assert coerce_like_python_int(1.9, INT).value == 1 and coerce_like_python_int("1.9", INT).changed
    assert coerce_like_python_int(-2.5, INT).value == -2          # int() truncates toward zero
    assert coerce_like_python_int(8, INT).value == 8
    assert coerce_like_python_int(1.9, FLOAT).value == 1.9        # only int options truncate
    for bad in ("abc", float("inf"), float("nan")):                # no OverflowError / ValueError escapes
        assert not coerce_like_python_int(bad, INT).ok
