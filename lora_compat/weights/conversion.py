"""What every family's converter shares (SD in :mod:`~lora_compat.weights.convert`, FLUX.1 / Chroma in
:mod:`~lora_compat.weights.flux_convert`): the options and report, the output dtypes, the metadata provenance,
what ``--force`` may replace, the atomic write and the ``--verify`` hook. No torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_compat import __version__
from lora_compat.atomic import staged_file
from lora_compat.config.secrets import is_secret_key
from lora_compat.errors import UserError
from lora_compat.weights.layouts import LoraFile
from lora_compat.weights.reader import open_lora
from lora_compat.weights.safetensors_io import ByteRange, OutTensor, Pieces, write_safetensors
from lora_compat.weights.untrusted import open_input

#: The component sub-folders of a PEFT output (SD: unet, text encoders; FLUX.1: transformer).
PEFT_COMPONENT_DIRS = ("unet", "text_encoder", "text_encoder_2", "transformer")


DTYPES = {"keep": None, "fp16": "F16", "bf16": "BF16", "fp32": "F32"}


FLOAT_DTYPES = ("F32", "F16", "BF16")


SOURCE_META_KEY = "lora_compat.source_metadata"


@dataclass
class ConvertOptions:
    """Knobs of one conversion (the CLI flags)."""

    to: str
    arch: str = "auto"
    dtype: str = "keep"
    bake_scale: bool = False
    force: bool = False
    allow_pickle: bool = False
    te_naming: int = 5  # PEFT output only: transformers major whose CLIPTextModel paths the keys use
    verify: bool = False  # compare every module's delta weight before the output is renamed into place (torch)
    drop_t5: bool = False  # FLUX: leave T5-XXL (lora_te3_) modules out of the output


@dataclass
class ConvertReport:
    """What a conversion did (for the CLI and tests)."""

    src: Path
    dst: Path
    src_layout: str
    arch: str
    algo: str
    to: str
    modules: int
    parts: dict[str, int]
    bytes_copied: int = 0
    bytes_rewritten: int = 0
    outputs: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verify: Any = None          # a lora_compat.weights.verify.VerifyResult with ConvertOptions.verify
    written: bool = False       # False when --verify failed: nothing was written


class VerificationError(Exception):
    """``--verify`` found a difference: the output was not written. Carries the report (with ``verify``)."""

    def __init__(self, report: ConvertReport) -> None:
        super().__init__(f"{report.dst}: verification failed; nothing was written")
        self.report = report


def fmt_alpha(a: float) -> float | int:
    return int(a) if float(a).is_integer() else float(a)


def source_metadata(lf: LoraFile) -> dict[str, str]:
    """The kohya-side metadata of the source (restored from our private key when the source is PEFT/diffusers)."""
    meta = dict(lf.metadata)
    if lf.layout != "kohya" and SOURCE_META_KEY in meta:
        try:
            restored = json.loads(meta[SOURCE_META_KEY])
            if isinstance(restored, dict) and all(isinstance(v, str) for v in restored.values()):
                return restored
        except json.JSONDecodeError:
            pass
    if lf.layout != "kohya":
        return {k: v for k, v in meta.items() if k.startswith(("ss_", "modelspec."))}
    return meta


def provenance(lf: LoraFile, opts: ConvertOptions) -> dict[str, str]:
    return {"lora_compat.converted_from": f"{lf.layout}:{lf.path.name}",
            "lora_compat.version": __version__,
            "lora_compat.conversion": json.dumps({"to": opts.to, "dtype": opts.dtype, "bake_scale": opts.bake_scale,
                                                  "arch": lf.arch}, sort_keys=True)}


def path_metadata(lf: LoraFile, opts: ConvertOptions) -> dict[str, str]:
    """Metadata for PEFT/diffusers files: format pt, provenance, and the source's kohya metadata kept privately."""
    src = source_metadata(lf)
    # sshs_* stay in the private copy only as a marker: a later conversion back to kohya recomputes them.
    keep = {k: v for k, v in src.items() if not k.startswith("lora_compat.")
            and k not in ("format", "lora_adapter_metadata") and not is_secret_key(k)}
    meta = {"format": "pt"}
    if keep:
        meta[SOURCE_META_KEY] = json.dumps(keep, sort_keys=True, ensure_ascii=False)
    meta.update(provenance(lf, opts))
    return meta


def count_bytes(tensors: list[OutTensor], report: ConvertReport) -> None:
    for t in tensors:
        src = t.source
        for part in (src.parts if isinstance(src, Pieces) else (src,)):
            if isinstance(part, ByteRange):
                report.bytes_copied += part.length
            elif not isinstance(part, (bytes, bytearray)):
                report.bytes_rewritten += part.length  # casts, bakes, assembled rows, zero fill


def write_file(dst: Path, tensors: list[OutTensor], meta: dict[str, str],
                check: Callable[[Path], None] | None) -> None:
    with staged_file(dst, durable=False) as tmp:  # no fsync: ~5x the copy itself for a 150 MB LoRA; cp skips it
        write_safetensors(tmp, tensors, meta, order="source", atomic=False)
        if check is not None:
            check(tmp)


def verifier(lf: LoraFile, report: ConvertReport) -> Callable[[Path], None]:
    """The ``--verify`` step: compare the staged output with the source; raise to keep it from being written."""
    from lora_compat.weights.verify import verify_loaded
    from lora_compat.weights.verify_result import require_torch

    require_torch()

    def check(staged: Path) -> None:
        report.verify = verify_loaded(lf, open_lora(staged, arch=lf.arch))
        if not report.verify.ok:
            raise VerificationError(report)
    return check


_ADAPTER_FILES = {"adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "README.md"}


def _foreign_entries(folder: Path) -> list[str] | None:
    """Entries of ``folder`` that a PEFT adapter folder does not hold (None when it cannot be listed)."""
    subdirs = set(PEFT_COMPONENT_DIRS)
    foreign: list[str] = []
    try:
        for e in os.scandir(folder):
            if e.name in subdirs and e.is_dir(follow_symlinks=False):
                foreign += [f"{e.name}/{x.name}" for x in os.scandir(e.path)
                            if x.name not in _ADAPTER_FILES or not x.is_file(follow_symlinks=False)]
            elif e.name not in _ADAPTER_FILES or not e.is_file(follow_symlinks=False):
                foreign.append(e.name + ("/" if e.is_dir(follow_symlinks=False) else ""))
    except OSError:
        return None
    return foreign


def replaceable_output(dst: Path, to: str) -> str | None:
    """Why ``--force`` must not replace ``dst`` (None when it may): only what this tool could have written goes.

    A PEFT output may replace an empty folder or a PEFT adapter folder (``adapter_config.json``,
    ``adapter_model.safetensors``, ``README.md``, optionally in ``unet/``, ``text_encoder/``, ``text_encoder_2/``
    sub-folders, nothing else); a kohya/diffusers output may replace an empty file or a safetensors file.
    """
    if to == "peft":
        if not dst.is_dir() or dst.is_symlink():
            return "it is not a folder (a PEFT output is a folder); remove it first"
        foreign = _foreign_entries(dst)
        if foreign is None:
            return "it cannot be listed"
        if foreign:
            shown = ", ".join(sorted(foreign)[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            return f"it is not a PEFT adapter folder (it holds {shown})"
        return None
    if dst.is_dir():
        return "it is a folder and a kohya/diffusers output is one file (end DST with / to write into the folder)"
    try:
        fd = open_input(dst)
    except UserError as err:
        return err.reason
    try:
        head = os.pread(fd, 9, 0) if hasattr(os, "pread") else os.read(fd, 9)
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    if size == 0:
        return None
    n = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
    if len(head) == 9 and 0 < n <= size - 8 and head[8:9] == b"{":
        return None
    from lora_compat.weights.untrusted import what_is

    return f"it is {what_is(head) or 'not a safetensors file'}, not a LoRA this tool could have written"


def check_dst(lf: LoraFile, dst: Path, opts: ConvertOptions) -> None:
    if os.path.lexists(dst):
        srcs = [lf.path] + [f.path for f in lf.files]
        for s in srcs:
            try:
                if os.path.samefile(s, dst) or Path(s).resolve().is_relative_to(dst.resolve()):
                    raise UserError("destination is the source itself; refusing to overwrite the input",
                                    file=str(dst))
            except FileNotFoundError:
                pass
        if not opts.force:
            raise UserError("already exists; pass --force to replace it", file=str(dst))
        why = replaceable_output(dst, opts.to)
        if why:
            raise UserError(f"--force replaces only a LoRA file or PEFT folder; refusing: {why}", file=str(dst))
    if not dst.parent.is_dir():
        raise UserError("parent folder does not exist", file=str(dst))
