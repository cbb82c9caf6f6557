"""A training command line (shell/batch script or text): sd-scripts options exactly as argparse parses them.

The loader (:mod:`lora_compat.config.cmdline`) already ran sd-scripts' argparse; this reader turns its
result into canonical options: ``sdxl`` from the script name, the ``--config_file`` TOML merged under the
command line (command line > TOML > default, reference §2.1), the ``--dataset_config`` loaded, and the
``accelerate launch`` options recorded (they are not sd-scripts options).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from lora_compat.config.document import Document
from lora_compat.config.model import (
    DERIVED,
    KEPT,
    RENAMED,
    CanonicalConfig,
    FrontendOnlyKey,
    InvalidValue,
    Note,
    Origin,
    Provenance,
    Setting,
    UnknownKey,
)
from lora_compat.errors import UserError

if TYPE_CHECKING:
    from lora_compat.config.cmdline import ParsedArgs
    from lora_compat.config.detection import Detection


def read(doc: Document, detection: Detection) -> CanonicalConfig:
    """Normalize a parsed command line into the canonical model.

    ``doc.meta["resolve_dataset"]`` (default False): a missing ``--dataset_config`` file is an error;
    False records a Note instead (lint).
    """
    resolve_dataset = doc.meta.get("resolve_dataset", False)
    cfg = CanonicalConfig(dialect="command-line", source=doc.path, era=detection.era, files=[doc.path])
    parsed: ParsedArgs = doc.meta["parsed"]
    base_dir = os.path.dirname(os.path.abspath(doc.path))
    line, col = doc.meta.get("script_pos", (None, None))
    script_origin = Origin(doc.path, doc.meta.get("script", ""), line, col, doc.meta.get("script"))
    _launcher(cfg, doc)

    given = {g.dest: g for g in parsed.given}  # last occurrence wins, as argparse
    config_file = given.get("config_file")
    if config_file is not None and not config_file.unresolved:
        _merge_config_file(cfg, config_file.value, _origin(doc, config_file), base_dir, resolve_dataset)

    for dest, g in given.items():
        origin = _origin(doc, g)
        if g.unresolved:
            _unresolved(cfg, origin, g.unresolved, f"{g.written}")
            continue
        if g.written != f"--{dest}":
            prov = Provenance(RENAMED, (origin,), f"{g.written} is argparse's abbreviation of --{dest}")
        else:
            prov = Provenance(KEPT, (origin,))
        cfg.options[dest] = Setting(g.value, prov)
    script = doc.meta.get("script")
    for g in parsed.unmodelled:
        cfg.unknown_keys.append(UnknownKey(
            g.dest, g.value, Origin(doc.path, g.written, g.token.line, g.token.col, g.value),
            f"an option of {script} that lora-compat does not read yet (train_network.py has no such option)"))
    _refused(cfg, doc, parsed)
    for tok in parsed.unresolved:
        _unresolved(cfg, Origin(doc.path, tok.text, tok.line, tok.col, tok.text), tok.unresolved, None)
    _other_commands(cfg, doc, script_origin)
    cfg.options["sdxl"] = Setting(bool(doc.meta.get("sdxl")), Provenance(
        DERIVED, (script_origin,), f"script {doc.meta.get('script')} -> sdxl={bool(doc.meta.get('sdxl'))}"))

    dataset_config = cfg.get("dataset_config")
    if dataset_config:
        from lora_compat.config.dialects.dataset_toml import load_dataset_reference

        o = cfg.locate("dataset_config")
        ds_base = os.path.dirname(os.path.abspath(o.file)) if o and o.file else base_dir
        load_dataset_reference(cfg, dataset_config, o, base_dir=ds_base, required=resolve_dataset)
    else:
        from lora_compat.config.kohya_folder import apply_kohya_folder

        apply_kohya_folder(cfg, base_dir=base_dir)
    return cfg


def _origin(doc: Document, g) -> Origin:
    raw = g.raw[0] if len(g.raw) == 1 else (list(g.raw) if g.raw else True)
    return Origin(doc.path, f"--{g.dest}", g.token.line, g.token.col, raw)


UNRESOLVED_NOTE = "shell-expression-unresolved"


def _unresolved(cfg: CanonicalConfig, origin: Origin, exprs: tuple[str, ...], option: str | None) -> None:
    """A Note for a value the script does not define (set outside it, or computed when it runs)."""
    shown = ", ".join(f"`{e}`" for e in dict.fromkeys(exprs))
    plural = "s" if len(set(exprs)) > 1 else ""
    if option:
        msg = f"unresolved shell expression{plural} {shown} in {option}: value unknown (the option is left unset)"
    else:
        msg = (f"unresolved shell expression{plural} {shown}: value unknown (it may stand for further options, "
               "which are not read)")
    cfg.notes.append(Note(UNRESOLVED_NOTE, msg, origin, {"expressions": list(dict.fromkeys(exprs)),
                                                         "option": option.lstrip("-") if option else None}))


def _refused(cfg: CanonicalConfig, doc: Document, parsed: ParsedArgs) -> None:
    """What sd-scripts' argparse would refuse: invalid values, shown and marked (show exits 1, lint reports)."""
    from lora_compat.config.secrets import redact_words

    for err in parsed.errors:
        tok = err.token
        key = f"--{err.dest}" if err.dest else (tok.text.split("=", 1)[0] if tok else "command line")
        raw = " ".join(redact_words(err.message.split(" "))) if err.message.startswith("unrecognized") else \
            (tok.text if tok else None)
        origin = Origin(doc.path, key, tok.line if tok else None, tok.col if tok else None, raw)
        message = " ".join(redact_words(err.message.split(" ")))
        cfg.invalid.append(InvalidValue(err.dest or "command_line", raw, origin,
                                        f"sd-scripts would refuse this command line: {message}"))


def _other_commands(cfg: CanonicalConfig, doc: Document, origin: Origin) -> None:
    others = doc.meta.get("other_commands") or []
    if others:
        where = ", ".join(f"{name} on line {line}" for name, line in others)
        cfg.notes.append(Note("several-training-commands",
                              f"this file runs {len(others) + 1} training commands; the last one (line {origin.line}) "
                              f"is read, not: {where}", origin, {"others": [list(o) for o in others]}))


def _merge_config_file(cfg: CanonicalConfig, value: str, origin: Origin, base_dir: str, required: bool) -> None:
    """Load ``--config_file`` (sd-scripts appends ``.toml`` when missing) under the command line.

    A file that is not on this machine is an error only when ``required`` (train); otherwise a Note says its
    options are unknown.
    """
    from lora_compat.config.dialects.sd_scripts_toml import apply_config_toml
    from lora_compat.config.loaders import parse_toml, read_text

    path = value if value.endswith(".toml") else value + ".toml"
    if not os.path.isabs(path) and not os.path.exists(path):
        path = os.path.join(base_dir, path)
    if not os.path.isfile(path):
        if not required:
            cfg.notes.append(Note("config-file-missing", f"--config_file {value!r} is not on this machine: the "
                                  "options it sets are unknown (sd-scripts itself exits with 'not found')", origin,
                                  {"path": value}))
            return
        raise UserError(f"--config_file {value!r} not found (sd-scripts exits with 'not found')",
                        file=origin.file, line=origin.line, col=origin.col)
    doc = parse_toml(path, read_text(path))
    cfg.files.append(path)
    apply_config_toml(cfg, doc)


def _launcher(cfg: CanonicalConfig, doc: Document) -> None:
    """Record ``accelerate launch`` options; they configure the launcher, not sd-scripts."""
    opts = doc.meta.get("launcher_options") or []
    for name, value, line, col in opts:
        key = name.lstrip("-")
        origin = Origin(doc.path, name, line, col, value)
        cfg.frontend_only.append(FrontendOnlyKey(
            f"accelerate:{key}", value if value is not None else True, origin,
            "accelerate launch option (configures the launcher: processes, CPU threads, precision of "
            "accelerate's own state), not an sd-scripts option"))
        if key == "mixed_precision":
            cfg.notes.append(Note(
                "accelerate-mixed-precision",
                f"accelerate launch --mixed_precision {value} does not reach sd-scripts: sd-scripts creates its "
                "Accelerator with its own --mixed_precision (default 'no'), which wins",
                origin, {"accelerate": value}))
    launcher = doc.meta.get("launcher") or []
    if launcher:
        cfg.notes.append(Note("command-line-launcher", "launched with: " + " ".join(launcher), None,
                              {"launcher": launcher}))
