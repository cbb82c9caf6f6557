"""``lora-compat migrate``: load a config, write it in another format atomically, report every key."""

from __future__ import annotations

import os
from pathlib import Path

from lora_compat.config.dialects.kohya_gui import gui_prompt_text
from lora_compat.config.model import CanonicalConfig
from lora_compat.config.validate import refuse_invalid
from lora_compat.errors import UserError
from lora_compat.migrate.report import MigrationReport, add_uncovered, add_unmapped

TARGETS = ("native", "sd-scripts", "kohya-gui", "command-line")


class StrictLossError(UserError):
    """``--strict`` and the migration would lose something: exit 1, nothing written."""

    exit_code = 1


def dataset_path_for(out: str) -> str:
    """Where the sd-scripts dataset config goes: ``<out stem>_dataset.toml`` beside ``out``."""
    p = Path(out)
    return str(p.with_name(p.stem + "_dataset.toml"))




def prompts_path_for(out: str) -> str:
    """Where a prompt text held only in the legacy file goes: ``<out stem>_prompts.txt`` beside ``out``."""
    p = Path(out)
    return str(p.with_name(p.stem + "_prompts.txt"))


def _with_prompt_file(cfg: CanonicalConfig, out: str, files: dict[str, str]) -> CanonicalConfig:
    """For the TOML targets: write the GUI's inline prompt text to a file beside ``out`` and point
    ``sample_prompts`` at it (else the output names a file nobody writes, and sampling silently stops)."""
    import dataclasses

    from lora_compat.config.model import CONVERTED, Provenance, Setting

    text = gui_prompt_text(cfg)
    if text is None:
        return cfg
    path = os.path.abspath(prompts_path_for(out))
    files[prompts_path_for(out)] = text if text.endswith("\n") else text + "\n"
    old = cfg.options["sample_prompts"]
    options = dict(cfg.options)
    options["sample_prompts"] = Setting(path, Provenance(CONVERTED, old.prov.origins,
                                                         f"prompt text of the GUI file -> written to {path}"))
    return dataclasses.replace(cfg, options=options)


def render(cfg: CanonicalConfig, to: str, out: str) -> tuple[dict[str, str], MigrationReport]:
    """The files to write (path -> text) and the report, without touching the disk."""
    if to not in TARGETS:
        raise UserError(f"unknown target {to!r}; expected one of {', '.join(TARGETS)}")
    if to == "sd-scripts" and not out.lower().endswith(".toml"):
        raise UserError("sd-scripts appends .toml to a --config_file name that lacks it; name the output *.toml",
                        file=out)
    if to == "command-line" and not out.lower().endswith(".sh"):
        raise UserError("the command-line target writes a POSIX sh script; name the output *.sh", file=out)
    report = MigrationReport(cfg.source, cfg.dialect, to)
    files: dict[str, str] = {}
    if to in ("native", "sd-scripts", "command-line"):
        cfg = _with_prompt_file(cfg, out, files)
    if to == "native":
        from lora_compat.migrate.native import dumps_native

        files[out] = dumps_native(cfg, report)
    elif to == "sd-scripts":
        from lora_compat.migrate.sd_scripts import dumps_sd_scripts

        ds_path = os.path.abspath(dataset_path_for(out))
        config_text, dataset_text = dumps_sd_scripts(cfg, report, ds_path)
        files[out] = config_text
        if dataset_text is not None:
            files[dataset_path_for(out)] = dataset_text
    elif to == "command-line":
        from lora_compat.migrate.command_line import dumps_command_line
        from lora_compat.migrate.sd_scripts import dumps_dataset_config, needs_dataset_config, report_folder_datasets

        ds_path = os.path.abspath(dataset_path_for(out))
        with_datasets = needs_dataset_config(cfg)
        if not with_datasets:
            report_folder_datasets(cfg, report)
        files[out] = dumps_command_line(cfg, report, ds_path if with_datasets else None)
        if with_datasets:
            files[dataset_path_for(out)] = dumps_dataset_config(cfg, report)
    else:
        from lora_compat.migrate.kohya_gui import dumps_kohya_gui
        from lora_compat.migrate.sd_scripts import dumps_dataset_config, needs_dataset_config

        ds_path = os.path.abspath(dataset_path_for(out))
        files[out] = dumps_kohya_gui(cfg, report, ds_path)
        if needs_dataset_config(cfg):
            files[dataset_path_for(out)] = dumps_dataset_config(cfg, report)
    files = dict(sorted(files.items(), key=lambda kv: kv[0] != out))  # the main output first
    add_unmapped(report, cfg)
    add_uncovered(report, cfg)
    report.scrub(cfg)
    report.outputs = list(files)
    return files, report


def write_atomically(files: dict[str, str]) -> None:
    """Write every file through :func:`lora_compat.atomic.atomic_writer`; all are renamed into place only after
    every one is complete, and a failure leaves no output (and no temp file) behind. Credentials are scrubbed
    (:func:`lora_compat.config.secrets.scrub`)."""
    import contextlib

    from lora_compat.atomic import atomic_writer
    from lora_compat.config.secrets import scrub

    try:
        with contextlib.ExitStack() as stack:
            for path, text in files.items():
                stack.enter_context(atomic_writer(path)).write(scrub(text).encode("utf-8"))
    except (FileExistsError, NotADirectoryError) as exc:  # mkdir/open through a path part that is a file
        raise UserError("cannot write output: this is a file, not a folder", file=exc.filename) from None
    except OSError as exc:
        raise UserError(f"cannot write output: {exc.strerror or exc}", file=getattr(exc, "filename", None)) \
            from None


def migrate_file(path: str, to: str, out: str, *, force: bool = False, strict: bool = False,
                 dialect: str | None = None, image_counts: dict[str, int] | None = None) -> MigrationReport:
    """Migrate ``path`` to ``to`` at ``out``; returns the report (files already written).

    ``image_counts``: images of folders that are not here (``--images``), see :func:`load_config`.
    """
    from lora_compat.arch.families import MIGRATE
    from lora_compat.config.family import require_family
    from lora_compat.config.load import load_config

    cfg = load_config(path, dialect=dialect, image_counts=image_counts)
    require_family(cfg, MIGRATE)
    refuse_invalid(cfg)
    files, report = render(cfg, to, out)
    inputs = {os.path.realpath(f) for f in (cfg.files or [path])}
    for target in files:
        if os.path.realpath(target) in inputs:
            raise UserError("refusing to overwrite an input file; choose another -o", file=target)
        if os.path.isdir(target):
            raise UserError("is a directory; -o names the output file", file=target)
        if os.path.exists(target) and not force:
            raise UserError("output exists; pass --force to overwrite it", file=target)
    if strict and report.losses:
        first = report.losses[0]
        raise StrictLossError(f"--strict: {len(report.losses)} key(s) would be lost, first {first.option}: "
                         f"{first.detail}; nothing written", file=path, line=first.line,
                         key=first.source_key)
    write_atomically(files)
    return report
