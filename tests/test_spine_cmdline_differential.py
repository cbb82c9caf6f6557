"""Differential test: our argparse emulation vs Python's own argparse built from the same x-cli facts.

The golden file pins 22 sd-scripts cases; this checks thousands of generated command lines against the real
``argparse`` module (values, or the exact error text) — abbreviations, unknown options, ``--``, nargs, flags.
"""

from __future__ import annotations

import argparse
import contextlib
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from lora_compat.config.cmdline import (
    MODELLED_SCRIPTS,
    ArgparseError,
    Token,
    argparse_table,
    int_or_float,
    parse_sd_scripts_args,
)


def _real_int_or_float(raw: str):
    try:
        return int_or_float(raw)
    except ArgparseError as exc:  # same message text, raised the way sd-scripts' type function does
        raise argparse.ArgumentTypeError(exc.message.split(": ", 1)[1]) from None


def real_parser(script: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="p")
    types = {"int": int, "float": float, "str": str, "int_or_float": _real_int_or_float}
    for opt, spec in argparse_table(script).items():
        if spec.action == "help":
            continue
        kwargs: dict = {"default": spec.default}
        if spec.action in ("store_true", "store_false"):
            kwargs["action"] = spec.action
        else:
            kwargs["type"] = types[spec.type]
            if spec.nargs is not None:
                kwargs["nargs"] = spec.nargs
            if spec.choices is not None:
                kwargs["choices"] = list(spec.choices)
        parser.add_argument(opt, **kwargs)
    return parser


PARSERS = {script: real_parser(script) for script in MODELLED_SCRIPTS}

WORDS = st.one_of(
    st.sampled_from(["--network_dim", "--network_d", "--network_alp", "--network_args", "--text_encoder_lr",
                     "--lr_warmup_steps", "--lr_sched", "--lr_scheduler", "--shuffle_caption", "--shuffle",
                     "--mixed_precision", "--save_model_as", "--max_token_length", "--cache_text_encoder_outputs",
                     "--xformers", "--seed", "--resolution", "--nope", "-x", "--", "--network_dim=4",
                     "--xformers=1", "--optimizer_args=a=1", "--caption_extention",
                     # flux_train_network.py's own options and the abbreviations they change
                     "--clip", "--clip_l", "--guidance", "--guidance_scale", "--model", "--model_t", "--t5xxl",
                     "--t5", "--weight", "--text_encoder", "--cache_text", "--ae", "--split_mode", "--timestep_s",
                     "--disc", "--apply_t5_attn_mask=1", "--blocks_to_swap"]),
    st.sampled_from(["4", "-1", "0.5", "1.0", "10%", "abc", "fp16", "fp8", "150", "75", "a=b", "-", "x y",
                     "sigma", "shift", "chroma", "raw"]),
)


def ours(argv: list[str], script: str):
    try:
        return "ok", parse_sd_scripts_args([Token(a, 1, i) for i, a in enumerate(argv)], script=script).values()
    except ArgparseError as exc:
        return "error", exc.message


def theirs(argv: list[str], script: str):
    err = io.StringIO()
    parser = PARSERS[script]
    try:
        with contextlib.redirect_stderr(err):
            ns = parser.parse_args(argv)
    except SystemExit:
        return "error", err.getvalue().strip().splitlines()[-1].split("p: error: ", 1)[1]
    defaults = parser.parse_args([])
    return "ok", {k: v for k, v in vars(ns).items() if v != getattr(defaults, k)}


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(argv=st.lists(WORDS, max_size=7), script=st.sampled_from(MODELLED_SCRIPTS))
def test_emulation_matches_python_argparse(argv: list[str], script: str) -> None:
    kind, got = ours(argv, script)
    real_kind, want = theirs(argv, script)
    assert kind == real_kind, (argv, got, want)
    if kind == "error":
        assert got == want
    else:
        # argparse shows only values different from the default; ours lists every given option
        defaults = vars(PARSERS[script].parse_args([]))
        assert {k: v for k, v in got.items() if v != defaults[k]} == want
