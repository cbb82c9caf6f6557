"""The weights wing's entry point: decide the model family and layout of a LoRA file or PEFT folder, and read it.

Family readers (SD3/SD3.5 in :mod:`~lora_compat.weights.sd3_layouts`; FLUX.1 and Chroma in
:mod:`~lora_compat.weights.flux_layouts`, where the other families are named and refused) are tried first; the
SD1/SD2/SDXL readers of :mod:`~lora_compat.weights.layouts` take the rest. This module sits above them, so none
imports another at run time. No torch here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from lora_compat import arch as archmod
from lora_compat.errors import UserError
from lora_compat.weights import flux_layouts, layouts, sd3_layouts
from lora_compat.weights.layouts import LoraFile
from lora_compat.weights.safetensors_io import SafetensorsFile, read_header
from lora_compat.weights.untrusted import require_regular_file


class FamilyReader(Protocol):
    """What a family's reader module provides (see :mod:`~lora_compat.weights.flux_layouts`)."""

    @property
    def ARCHS(self) -> tuple[str, ...]: ...  # noqa: N802 (a module constant)

    def read_header_family(self, sf: SafetensorsFile, arch_opt: str) -> LoraFile | None: ...
    def owns_peft_dir(self, path: Path, arch_opt: str) -> bool: ...
    def read_peft_dir(self, path: Path, arch_opt: str) -> LoraFile: ...


PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


#: Readers of model families beyond SD1/SD2/SDXL (SD3, FLUX.1, Chroma; the rest named and refused), tried on every
#: input before the SD readers. Each module provides ``ARCHS``, ``read_header_family(sf, arch)`` (a LoraFile, a
#: UserError naming a refused family, or None), ``owns_peft_dir(path, arch)`` and ``read_peft_dir(path, arch)``.
FAMILY_READERS: tuple[FamilyReader, ...] = (sd3_layouts, flux_layouts)  # SD3 first: FLUX claims MM-DiT names


def all_archs() -> tuple[str, ...]:
    """Every ``--arch`` value the readers accept (SD archs first)."""
    return tuple(archmod.ARCHS) + tuple(a for mod in FAMILY_READERS for a in mod.ARCHS)


def open_lora(path: Path | str, *, arch: str = "auto", allow_pickle: bool = False) -> LoraFile:
    """Detect the layout of ``path`` (file or PEFT folder) and read it; UserError on anything unexpected."""
    path = Path(path)
    if not path.exists():
        raise UserError("no such file or folder", file=str(path))
    if arch != "auto" and arch not in all_archs():
        raise UserError(f"unknown --arch {arch!r}; expected auto, {', '.join(all_archs())}")
    if path.is_dir():
        for mod in FAMILY_READERS:
            if mod.owns_peft_dir(path, arch):
                return mod.read_peft_dir(path, arch)
        return layouts.read_sd_peft_dir(path, arch)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise UserError("pickle checkpoints can run code when loaded; refusing (convert it with "
                            "--allow-pickle, which uses torch.load(weights_only=True))", file=str(path))
        require_regular_file(path)  # a FIFO would block torch.load
        from lora_compat.weights.pickle_input import pickle_to_safetensors  # lazy: imports torch
        lf = _open_safetensors(pickle_to_safetensors(path), arch)
        lf.path = path  # name the user's file in messages and provenance
        return lf
    return _open_safetensors(path, arch)


def _open_safetensors(path: Path, arch: str) -> LoraFile:
    sf = read_header(path)
    if not sf.tensors:
        raise UserError("the file holds no tensors", file=str(path))
    for mod in FAMILY_READERS:
        other = mod.read_header_family(sf, arch)
        if other is not None:
            return other
    keys = list(sf.tensors)
    kohya = [k for k in keys if k.startswith(layouts.KOHYA_PREFIXES)]
    if kohya and len(kohya) == len(keys):
        return layouts.read_sd_kohya(sf, arch)
    if kohya:
        rest = [k for k in keys if not k.startswith(layouts.KOHYA_PREFIXES)]
        raise UserError(f"mixes kohya keys with {len(rest)} other keys (e.g. {rest[0]}); cannot tell the layout",
                        file=str(path))
    return layouts.read_sd_named(sf, arch, layout=None)
