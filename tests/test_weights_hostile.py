"""Hostile weights metadata (#12.4): every minimal reproducer of the campaign is a one-line error or a right answer.

Safetensors headers, ``adapter_config.json`` and diffusers' ``lora_adapter_metadata`` all go through one validation
layer (:mod:`lora_compat.weights.untrusted`); PEFT patterns are matched in bounded time
(:mod:`lora_compat.weights.peft_patterns`).
"""

from __future__ import annotations

import json
import math
import re
import struct
import sys
import time
from pathlib import Path

import pytest

from lora_compat.cli import main
from lora_compat.errors import UserError
from lora_compat.weights.peft_patterns import PatternError, PatternIndex, peft_key_regex
from lora_compat.weights.reader import open_lora
from lora_compat.weights.safetensors_io import OutTensor, decode_values, encode_values, write_safetensors

MOD = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k"   # SD1: 768 -> 320
KOHYA = "lora_unet_" + MOD.replace(".", "_")
BIG = "9" * 5001


def lora_tensors(rank: int = 2, dtype: str = "F16", alpha: float | None = 1.0, alpha_dtype: str = "F16",
                 up_dtype: str | None = None) -> list[OutTensor]:
    size = {"F16": 2, "F32": 4, "I16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "BF16": 2}
    out = [OutTensor(f"{KOHYA}.lora_down.weight", dtype, (rank, 768), encode_values([0.01] * rank * 768, dtype)),
           OutTensor(f"{KOHYA}.lora_up.weight", up_dtype or dtype, (320, rank),
                     b"\x01" * (320 * rank * size[up_dtype or dtype]))]
    if alpha is not None:
        data = encode_values([alpha], alpha_dtype) if alpha_dtype in ("F16", "F32") else bytes([int(alpha)])
        out.append(OutTensor(f"{KOHYA}.alpha", alpha_dtype, (), data))
    return out


def peft_dir(tmp: Path, cfg: dict | str, name: str = "peft") -> Path:
    d = tmp / name
    d.mkdir()
    write_safetensors(d / "adapter_model.safetensors", [
        OutTensor(f"base_model.model.{MOD}.lora_A.weight", "F32", (2, 768), encode_values([0.01] * 1536, "F32")),
        OutTensor(f"base_model.model.{MOD}.lora_B.weight", "F32", (320, 2), encode_values([0.02] * 640, "F32"))])
    (d / "adapter_config.json").write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
    return d


def diffusers_file(tmp: Path, adapter_meta: str, name: str = "d.safetensors") -> Path:
    p = tmp / name
    write_safetensors(p, [
        OutTensor(f"unet.{MOD}.lora_A.weight", "F32", (2, 768), encode_values([0.01] * 1536, "F32")),
        OutTensor(f"unet.{MOD}.lora_B.weight", "F32", (320, 2), encode_values([0.02] * 640, "F32"))],
        {"lora_adapter_metadata": adapter_meta})
    return p


def raw_safetensors(path: Path, header_text: str, data: bytes) -> Path:
    raw = header_text.encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def run(argv: list[str], capsys) -> tuple[object, str, str]:
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as exc:
        code = exc.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def assert_one_line_error(argv: list, capsys, *needles: str) -> str:
    code, _, err = run(argv, capsys)
    assert code == 2, (argv, code, err)
    assert err.count("\n") == 1 and err.startswith("error: "), err
    for n in needles:
        assert n in err, (n, err)
    return err


# --- numbers with thousands of digits, deep nesting, wrong types ------------------------------------------------

def test_5001_digit_integers_are_one_line_errors(tmp_path: Path, capsys) -> None:
    p = tmp_path / "ok.safetensors"
    write_safetensors(p, lora_tensors())
    blob = p.read_bytes()
    n = struct.unpack("<Q", blob[:8])[0]
    header, data = blob[8:8 + n].decode(), blob[8 + n:]
    hostile = raw_safetensors(tmp_path / "big.safetensors", re.sub(r'"data_offsets":\[0,', f'"data_offsets":[{BIG},',
                                                                   header, count=1), data)
    assert_one_line_error(["inspect", hostile], capsys, "more than 4300 digits")
    cfg = peft_dir(tmp_path, '{"peft_type": "LORA", "r": ' + BIG + ', "lora_alpha": 1}')
    assert_one_line_error(["inspect", cfg], capsys, "adapter_config.json", "more than 4300 digits")
    d = diffusers_file(tmp_path, '{"unet.r": 2, "unet.lora_alpha": ' + BIG + "}")
    assert_one_line_error(["convert", d, tmp_path / "o.safetensors", "--to", "kohya"], capsys,
                          "lora_adapter_metadata", "4300 digits")
    assert not (tmp_path / "o.safetensors").exists()


def test_deep_nesting_is_refused_without_recursion_error(tmp_path: Path, capsys) -> None:
    deep = "[" * 100000 + "]" * 100000
    assert_one_line_error(["inspect", peft_dir(tmp_path, '{"peft_type": "LORA", "r": 2, "x": ' + deep + "}")],
                          capsys, "nested")
    assert_one_line_error(["check", diffusers_file(tmp_path, deep), "--target", "comfyui"], capsys,
                          "lora_adapter_metadata", "nested")
    # within Python's recursion limit but past ours
    assert_one_line_error(["inspect", peft_dir(tmp_path, '{"peft_type": "LORA", "x": ' + "[" * 40 + "]" * 40 + "}",
                                               "p2")], capsys, "nested more than 32 levels")


@pytest.mark.parametrize("cfg, needle", [
    ({"peft_type": ["LORA"], "r": 2}, "peft_type ['LORA'] is not convertible"),
    ({"peft_type": {"a": 1}, "r": 2}, "peft_type"),
    ({"peft_type": "LORA", "r": 0, "lora_alpha": 1}, "r: must be an integer from 1"),
    ({"peft_type": "LORA", "r": None, "lora_alpha": 1}, "r: must be an integer"),
    ({"peft_type": "LORA", "r": "2", "lora_alpha": 1}, "r: must be an integer"),
    ({"peft_type": "LORA", "r": True, "lora_alpha": 1}, "r: must be an integer"),
    ({"peft_type": "LORA", "r": 2, "lora_alpha": 1e308}, "lora_alpha: 1e+308 is out of range"),
    ({"peft_type": "LORA", "r": 2, "lora_alpha": [1]}, "lora_alpha: must be a number"),
    ({"peft_type": "LORA", "r": 2, "lora_alpha": 1, "use_dora": "yes"}, "use_dora: must be true or false"),
    ({"peft_type": "LORA", "r": 2, "lora_alpha": 1, "rank_pattern": [1]}, "rank_pattern: must be an object"),
    ({"peft_type": "LORA", "r": 2, "lora_alpha": 1, "alpha_pattern": {MOD: 1e39}}, "out of range"),
    ({"peft_type": "LORA", "r": 2, "lora_alpha": 1, "rank_pattern": {MOD: -1}}, "integer from 1"),
    ({"peft_type": "LORA", "r": 2, "lora_alpha": 1, "modules_to_save": {"a": [1]}}, "modules_to_save"),
])
def test_adapter_config_fields_are_validated(cfg, needle, tmp_path: Path, capsys) -> None:
    d = peft_dir(tmp_path, cfg)
    for argv in (["inspect", d, "--format", "json"], ["check", d, "--target", "diffusers"],
                 ["convert", d, tmp_path / "o.safetensors", "--to", "kohya"]):
        assert_one_line_error(argv, capsys, "adapter_config.json", needle)
    assert not (tmp_path / "o.safetensors").exists()


@pytest.mark.parametrize("r, needle", [(0, "integer from 1"), (None, "must be an integer")])
def test_lokr_rank_zero_or_null(r, needle, tmp_path: Path, capsys) -> None:
    d = tmp_path / "lokr"
    d.mkdir()
    write_safetensors(d / "adapter_model.safetensors", [
        OutTensor(f"base_model.model.{MOD}.lokr_w1", "F32", (4, 8), b"\0" * 128),
        OutTensor(f"base_model.model.{MOD}.lokr_w2", "F32", (80, 96), b"\0" * (80 * 96 * 4))])
    (d / "adapter_config.json").write_text(json.dumps({"peft_type": "LOKR", "r": r, "alpha": 4}))
    assert_one_line_error(["inspect", d], capsys, needle)


def test_lora_alpha_1e308_in_metadata_never_reaches_the_packer(tmp_path: Path, capsys) -> None:
    d = diffusers_file(tmp_path, json.dumps({"unet.r": 2, "unet.lora_alpha": 1e308}))
    assert_one_line_error(["convert", d, tmp_path / "k.safetensors", "--to", "kohya"], capsys, "out of range")
    # in range for the config but not once multiplied out (rsLoRA: alpha * sqrt(r)) -> refused, not OverflowError
    d2 = diffusers_file(tmp_path, json.dumps({"unet.r": 2, "unet.lora_alpha": 3e38, "unet.use_rslora": True}),
                        "d2.safetensors")
    assert_one_line_error(["convert", d2, tmp_path / "k.safetensors", "--to", "kohya"], capsys,
                          "does not fit a float32")
    assert not (tmp_path / "k.safetensors").exists()


def test_nan_in_a_config_is_an_error_and_json_output_is_strict(tmp_path: Path, capsys) -> None:
    d = peft_dir(tmp_path, '{"peft_type": "LORA", "r": 2, "lora_alpha": 4, "alpha": NaN}')
    assert_one_line_error(["inspect", d, "--format", "json"], capsys, "NaN")
    ok = peft_dir(tmp_path, {"peft_type": "LORA", "r": 2, "lora_alpha": 4, "alpha": "whatever"}, "ok")
    code, out, _ = run(["inspect", ok, "--format", "json"], capsys)
    assert code == 0

    def no_constants(name: str):
        raise AssertionError(f"bare {name} in JSON output")
    data = json.loads(out, parse_constant=no_constants)
    assert data["peft_configs"]["unet"] == {"peft_type": "LORA", "r": 2, "lora_alpha": 4, "alpha": None,
                                            "use_rslora": False, "use_dora": False}
    assert data["scales"] == {"2": 1}


def test_lone_surrogates_in_metadata_are_refused(tmp_path: Path, capsys) -> None:
    p = tmp_path / "ok.safetensors"
    write_safetensors(p, lora_tensors(), {"ss_output_name": "PLACEHOLDER"})
    blob = p.read_bytes()
    n = struct.unpack("<Q", blob[:8])[0]
    header = blob[8:8 + n].decode().replace("PLACEHOLDER", "\\udcff")
    bad = raw_safetensors(tmp_path / "s.safetensors", header, blob[8 + n:])
    assert_one_line_error(["inspect", bad, "--format", "json"], capsys, "surrogate")


# --- .alpha in 8-bit floats, integer weights --------------------------------------------------------------------

def test_f8_values_decode_like_torch() -> None:
    torch = pytest.importorskip("torch")
    for dtype, tdt in (("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2"), ("F8_E8M0", "float8_e8m0fnu")):
        if not hasattr(torch, tdt):
            continue
        ours = decode_values(bytes(range(256)), dtype)
        theirs = torch.frombuffer(bytearray(range(256)), dtype=getattr(torch, tdt)).to(torch.float64).tolist()
        for b, (x, y) in enumerate(zip(ours, theirs, strict=True)):
            assert (math.isnan(x) and math.isnan(y)) or x == y, (dtype, b, x, y)


@pytest.mark.parametrize("dtype, byte, value", [("F8_E4M3", 0x40, 2.0), ("F8_E4M3", 0x3C, 1.5),
                                                ("F8_E5M2", 0x40, 2.0), ("F8_E5M2", 0x3E, 1.5)])
def test_alpha_stored_as_f8_is_decoded(dtype: str, byte: int, value: float, tmp_path: Path, capsys) -> None:
    p = tmp_path / "f8.safetensors"
    write_safetensors(p, lora_tensors(alpha=byte, alpha_dtype=dtype))
    assert open_lora(p).modules[0].alpha == value
    code, out, _ = run(["inspect", p, "--format", "json"], capsys)
    assert code == 0 and json.loads(out)["alphas"] == {str(int(value) if value.is_integer() else value): 1}
    run(["convert", p, tmp_path / "k.safetensors", "--to", "kohya"], capsys)
    assert open_lora(tmp_path / "k.safetensors").modules[0].alpha == value
    # the NaN encodings are refused like any NaN alpha
    write_safetensors(tmp_path / "nan.safetensors", lora_tensors(alpha=0x7F, alpha_dtype=dtype))
    assert_one_line_error(["inspect", tmp_path / "nan.safetensors"], capsys, "alpha is nan")


def test_integer_lora_up_is_refused_before_anything_is_written(tmp_path: Path, capsys) -> None:
    p = tmp_path / "i16.safetensors"
    write_safetensors(p, lora_tensors(up_dtype="I16"))
    out = tmp_path / "o.safetensors"
    assert_one_line_error(["convert", p, out, "--to", "kohya", "--verify"], capsys, "I16 adapter weights",
                          "lora_up.weight")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["i16.safetensors"]
    assert_one_line_error(["inspect", p], capsys, "I16")


def test_f64_alpha_beyond_float32_is_refused(tmp_path: Path, capsys) -> None:
    p = tmp_path / "a.safetensors"
    ts = [*lora_tensors(alpha=None), OutTensor(f"{KOHYA}.alpha", "F64", (), struct.pack("<d", 1e300))]
    write_safetensors(p, ts)
    assert_one_line_error(["convert", p, tmp_path / "o.safetensors", "--to", "kohya"], capsys,
                          "does not fit a float32")


# --- PEFT patterns in bounded time ------------------------------------------------------------------------------

NAMES = [MOD, "down_blocks.0.attentions.0.proj_in", "up_blocks.1.resnets.2.conv1", "mid_block.attentions.0.proj_out",
         "text_model.encoder.layers.11.self_attn.q_proj", "encoder.layers.3.mlp.fc1", "x", "",
         "a.b.c", "transformer_blocks.0.attn1.to_out.0", "a\nb"]
KEYS = [r".*attn2\.to_[kv]", r"^down_blocks\.\d+\..*", r"to_q|to_k", r"layers\.(1[01])\.self_attn\.q_proj",
        r"\bconv\d", r"[^.]+_in", r"a$", r"(a|ab)*c", r".{3,5}", r"\w+\W\w+", r"to_k\Z", r"x*?", r"(?:proj_)+out",
        r"[a-c]\.b\.c", r"\Ab", r"\B1", r"\d\s?", r"[\w.]+", r"attn[12]?", r"(attn1|attn2)\.to_(q|k|v|out\.0)",
        r"to_out\.0$", r"mlp\.fc[^2]", r"\.0\.", r"(.)(.)", r"a\nb", r"0{0,2}", r"b?", r"[\d]+"]


def test_safe_matcher_agrees_with_python_re_on_peft_patterns() -> None:
    for key in KEYS:
        rx = peft_key_regex(key)
        for name in NAMES:
            want = re.match(rf"(.*\.)?({key})$", name) is not None
            assert rx.match(name) == want, (key, name)


def test_catastrophic_pattern_returns_quickly(tmp_path: Path, capsys) -> None:
    t = time.perf_counter()
    assert not peft_key_regex(r"((.*)*)*x").match("a" * 3000 + "y")
    assert not peft_key_regex(r"(a|a)*b").match("a" * 3000)
    assert not peft_key_regex(r"(.*a){20}").match("a" * 300 + "b")
    assert time.perf_counter() - t < 2.0
    d = peft_dir(tmp_path, {"peft_type": "LORA", "r": 2, "lora_alpha": 1,
                            "alpha_pattern": {"((.*)*)*x": 4, "(.*attn2)+\\.to_k": 8}})
    t = time.perf_counter()
    code, out, err = run(["inspect", d, "--format", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["alphas"] == {"8": 1}   # the second key matches, as in PEFT
    assert time.perf_counter() - t < 5.0


# Python 3.10's re has no atomic groups or possessive repeats (they are invalid syntax there, for PEFT too), and
# it accepts a global flag inside the key's wrapper pattern (3.11 rejects it): refused with another reason.
PY311 = sys.version_info >= (3, 11)


@pytest.mark.parametrize("key, needle", [(r"(a)\1", "back-references"), (r"(?=a)", "look-ahead"),
                                         (r"(?>a)", "atomic" if PY311 else "not a valid regular expression"),
                                         (r"a++", "possessive" if PY311 else "not a valid regular expression"),
                                         ("a{5000}", "over 1000"),
                                         ("(", "not a valid regular expression"), ("x" * 1000 + "*", "1001 characters"),
                                         ("(?i)a", "not a valid" if PY311 else "inline flags")])
def test_unsafe_patterns_are_refused(key: str, needle: str, tmp_path: Path, capsys) -> None:
    with pytest.raises(PatternError, match=re.escape(needle)):
        PatternIndex({key: 1})
    d = peft_dir(tmp_path, {"peft_type": "LORA", "r": 2, "lora_alpha": 1, "rank_pattern": {key: 2}})
    assert_one_line_error(["inspect", d], capsys, "rank_pattern", needle)


def test_pattern_order_is_peft_first_match() -> None:
    idx = PatternIndex({"attn2.to_k": 1, r".*to_k": 2})
    assert idx.lookup(MOD) == 1
    idx = PatternIndex({r".*to_k": 2, "attn2.to_k": 1})
    assert idx.lookup(MOD) == 2
    assert PatternIndex({"to_q": 1}).lookup(MOD, "d") == "d"
    with pytest.raises(PatternError, match="more than 64"):
        PatternIndex({f"a{i}+": i for i in range(65)})


def test_non_safetensors_inputs_are_named(tmp_path: Path, capsys) -> None:
    cases = {"cfg.json": b'{"LoRA_type": "Standard", "epoch": 10}',
             "img.safetensors": b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
             "x.safetensors": b"\x80\x04\x95" + b"\0" * 64, "z.safetensors": b"PK\x03\x04" + b"\0" * 64,
             "readme.safetensors": b"this is not a LoRA at all, just some words\n" * 3}
    want = {"cfg.json": "a JSON file", "img.safetensors": "a PNG image", "x.safetensors": "a Python pickle",
            "z.safetensors": "a zip archive", "readme.safetensors": "a text file"}
    for name, content in cases.items():
        p = tmp_path / name
        p.write_bytes(content)
        for argv in (["inspect", p], ["check", p, "--target", "a1111"],
                     ["convert", p, tmp_path / "o.safetensors", "--to", "peft"]):
            err = assert_one_line_error(argv, capsys, want[name], "not a safetensors file")
            assert "header length" not in err
    with pytest.raises(UserError, match="a JSON file"):
        open_lora(tmp_path / "cfg.json")


def test_casts_that_overflow_are_refused(tmp_path: Path, capsys) -> None:
    pytest.importorskip("numpy")
    p = tmp_path / "big.safetensors"
    write_safetensors(p, [
        OutTensor(f"{KOHYA}.lora_down.weight", "F32", (2, 768), encode_values([1e5] * 1536, "F32")),
        OutTensor(f"{KOHYA}.lora_up.weight", "F32", (320, 2), encode_values([0.01] * 640, "F32"))])
    assert_one_line_error(["convert", p, tmp_path / "h.safetensors", "--to", "kohya", "--dtype", "fp16"], capsys,
                          "casting F32 weights as F16 overflows")
    assert run(["convert", p, tmp_path / "b.safetensors", "--to", "kohya", "--dtype", "bf16"], capsys)[0] == 0
    q = tmp_path / "scale.safetensors"
    write_safetensors(q, lora_tensors(alpha=1e10, alpha_dtype="F32", rank=1, dtype="F16"))
    assert_one_line_error(["convert", q, tmp_path / "k.safetensors", "--to", "kohya", "--bake-scale"], capsys,
                          "baking the scale 1e+10 into F16 weights as F16 overflows")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["b.safetensors", "big.safetensors", "scale.safetensors"]


def test_names_with_control_characters_stay_on_one_line(tmp_path: Path, capsys) -> None:
    # a tensor name with a newline or an ANSI escape is quoted in the error: escaped, never a second line or a colour
    for bad in ("\n", "\x1b[31m", "\u2028"):
        p = tmp_path / "c.safetensors"
        write_safetensors(p, [OutTensor(f"lora_unet_down_blocks_0_at{bad}tn.lora_down.weight", "F16", (1, 4),
                                        b"\0" * 8)])
        for argv in (["inspect", p], ["convert", p, tmp_path / "o.safetensors", "--to", "kohya"]):
            err = assert_one_line_error(argv, capsys, "unknown module names")
            assert "\x1b" not in err and "\u2028" not in err


def test_text_output_prints_file_strings_literally(tmp_path: Path, capsys) -> None:
    # rich markup in metadata ('[/]' raised MarkupError) or in a path ('[v2]' vanished) is printed as written
    p = tmp_path / "my [v2] lora.safetensors"
    write_safetensors(p, lora_tensors(), {"ss_output_name": "[/bold] x \x1b[31m", "k[/]": "[red]v"})
    code, out, err = run(["inspect", p], capsys)
    assert code == 0, err
    assert "[v2]" in out and "[/bold] x \\x1b[31m" in out and "k[/]" in out and "[red]v" in out
    assert "\x1b" not in out
    code, out, err = run(["check", p, "--target", "comfyui"], capsys)
    assert code == 0 and "my [v2] lora.safetensors" in " ".join(out.split())  # rich wraps long lines
