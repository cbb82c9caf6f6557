"""sd-scripts' own argparse + read_config_from_file results (golden/cmdline_parse.json), case by case."""

from __future__ import annotations

import math

import pytest

from lora_compat.config.cmdline import ArgparseError, Token, argparse_defaults, parse_sd_scripts_args
from lora_compat.config.dialects.sd_scripts_toml import flatten_config_toml

from shared_data import GOLDEN, golden

PY_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "NoneType": type(None),
            "tuple": tuple}


def _case_names() -> list[str]:
    import json

    path = GOLDEN / "cmdline_parse.json"
    if not path.is_file():
        return ["golden-missing"]
    return [c["name"] for c in json.loads(path.read_text(encoding="utf-8"))["cases"]]


def _run(case: dict) -> dict:
    sdxl = case["script"] == "sdxl_train_network.py"
    args = dict(argparse_defaults(sdxl))
    if case.get("config_file_toml"):
        from lora_compat.tomlparse import tomllib

        for key, (value, _path) in flatten_config_toml(tomllib.loads(case["config_file_toml"])).items():
            args[key] = value
        # read_config_from_file: config_file is re-parsed; defaults it implies are the golden's concern
    words = [Token(w, 1, i + 1) for i, w in enumerate(case["argv"])]
    args.update(parse_sd_scripts_args(words, sdxl=sdxl).values())
    return args


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-6) or a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b and type(a) is type(b)


@pytest.mark.parametrize("name", _case_names())
def test_cmdline_golden_case(name: str) -> None:
    data = golden("cmdline_parse.json")
    case = next(c for c in data["cases"] if c["name"] == name)
    if case.get("error"):
        with pytest.raises(ArgparseError) as info:
            _run(case)
        expected = case["error"].split(": error: ", 1)[1]
        assert info.value.message == expected
        return
    got = _run(case)
    expected = case["args"]
    # options whose value the golden harness sets itself (config_file path) are not parser facts
    for key in ("config_file",):
        expected.pop(key, None)
        got.pop(key, None)
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    assert not missing and not extra, f"missing {missing}, extra {extra}"
    wrong = {k: (got[k], v) for k, v in expected.items()
             if not _same(got[k], v) or type(got[k]).__name__ != case["types"][k]}
    assert not wrong, wrong
