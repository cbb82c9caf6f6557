"""Canonical config -> an sd-scripts command line (a POSIX ``sh`` script: ``accelerate launch <script> --opt ...``).

The option values are the ones the ``--config_file`` writer (:func:`lora_compat.migrate.sd_scripts.to_config_file`)
settles, so both sd-scripts targets share every conversion; this module only spells them as argparse reads them:
``store_true`` flags bare (``false`` = not given = the default), lists as ``nargs`` words, everything else one
shell-quoted word. Unlike a ``--config_file`` (whose values argparse never sees), a command line goes through the
script's argparse: a value it would refuse (a ``choices`` miss such as ``dynamo_backend = "no"``) cannot be written
and is reported ``no-equivalent``. Datasets go to ``<OUT stem>_dataset.toml`` as for the TOML target.
"""

from __future__ import annotations

import shlex
from typing import Any

from lora_compat.config.model import CanonicalConfig
from lora_compat.migrate.report import DROPPED, NO_EQUIVALENT, MigrationReport
from lora_compat.migrate.sd_scripts import script_for, to_config_file


def _words(name: str, value: Any, action: str) -> list[str] | None:
    """argparse words for ``--name value``; None when nothing is to be given (a false ``store_true``)."""
    if action == "store_true":
        return [f"--{name}"] if value is True else None
    if action == "store_false":
        return [f"--{name}"] if value is False else None
    if isinstance(value, list):
        return [f"--{name}", *(_scalar(v) for v in value)]
    return [f"--{name}", _scalar(value)]


def value_text(value: Any) -> str:
    """``false`` / ``true`` as TOML writes them, other values as repr."""
    return ("true" if value else "false") if isinstance(value, bool) else repr(value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value) if not isinstance(value, float) else repr(value)


def command_words(cfg: CanonicalConfig, report: MigrationReport,
                  dataset_path: str | None) -> tuple[str, list[list[str]]]:
    """(script, one word list per option) for ``cfg``; what argparse would refuse is reported and left out."""
    from lora_compat.config.cmdline import ArgparseError, Token, argparse_table, parse_sd_scripts_args

    script = script_for(cfg)
    table = argparse_table(script)
    first = len(report.entries)
    flat = to_config_file(cfg, report, dataset_path)
    options: list[list[str]] = []
    dropped: dict[str, str] = {}
    defaults: dict[str, str] = {}   # written as "not given": the same setting
    for key, value in flat.items():
        spec = table.get(f"--{key}")
        if spec is None:
            dropped[key] = f"{script} has no --{key} option"
            continue
        words = _words(key, value, spec.action)
        if key == "max_token_length" and value == 75 and not isinstance(value, bool):
            # CLIP's own length: unset means model_max_length 77 = 75 + 2 (SdTokenizeStrategy), the same setting;
            # argparse's choices (None, 150, 225) refuse 75 on a command line (a --config_file never checks them)
            defaults[key] = ("75: the same as not given (sd-scripts then uses the tokenizer's 77 = 75 + 2); "
                             "argparse's choices (None, 150, 225) refuse 75 on a command line")
            continue
        if words is None:
            defaults[key] = (f"{value_text(value)}: the flag's default, so it is not given (argparse has no "
                             "spelling for it)")
            continue
        try:   # each option alone: argparse's own verdict on exactly these words
            parse_sd_scripts_args([Token(w, 1, 1) for w in words], script=script)
        except ArgparseError as exc:
            dropped[key] = f"sd-scripts' command line refuses {shlex.join(words)}: {exc.message}"
            continue
        options.append(words)
    for e in report.entries[first:]:
        if e.target_key in flat:
            if e.target_key in defaults:
                e.kind, e.loss, e.detail, e.target_key = DROPPED, False, defaults[e.target_key], None
            elif e.target_key in dropped:
                e.kind, e.detail, e.loss = NO_EQUIVALENT, dropped[e.target_key], True
                e.target_key = None
            else:
                e.target_key = f"--{e.target_key}"
    return script, options


def dumps_command_line(cfg: CanonicalConfig, report: MigrationReport, dataset_path: str | None) -> str:
    """The ``sh`` script text: a header, then ``accelerate launch <script>`` and one option per line."""
    script, options = command_words(cfg, report, dataset_path)
    lines = ["#!/bin/sh", f"# sd-scripts command line written by lora-compat from {cfg.source} ({cfg.dialect})",
             f"accelerate launch {script}" + (" \\" if options else "")]
    for i, words in enumerate(options):
        lines.append("  " + shlex.join(words) + (" \\" if i < len(options) - 1 else ""))
    return "\n".join(lines) + "\n"

