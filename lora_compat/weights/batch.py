"""A folder of LoRAs as ``convert SRC_DIR DST_DIR`` sees it: which entries are LoRA files or PEFT adapter
folders, and the name each converted output gets."""

from __future__ import annotations

from pathlib import Path

from lora_compat.errors import UserError
from lora_compat.weights.conversion import PEFT_COMPONENT_DIRS

#: File suffixes of LoRA weights (safetensors, and the pickles ``--allow-pickle`` reads).
WEIGHT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")


def is_batch_folder(src: Path) -> bool:
    """A folder that is not itself a PEFT adapter folder (no ``adapter_config.json`` in it or in a component
    sub-folder) is a batch of LoRAs."""
    if not src.is_dir():
        return False
    if (src / "adapter_config.json").is_file():
        return False
    return not any((src / d / "adapter_config.json").is_file() for d in PEFT_COMPONENT_DIRS)


def batch_items(src: Path) -> list[Path]:
    """The LoRA files and PEFT adapter folders in ``src``, sorted; UserError when it holds none."""
    items = [p for p in sorted(src.iterdir())
             if (p.is_file() and p.suffix.lower() in WEIGHT_SUFFIXES) or (p.is_dir() and not is_batch_folder(p))]
    if not items:
        raise UserError("folder holds no LoRA files (.safetensors) or PEFT folders", file=str(src))
    return items


def output_name(item: Path, to: str) -> str:
    """The name of ``item`` converted to layout ``to``: a folder for PEFT, else ``<stem>.safetensors``."""
    stem = item.stem if item.is_file() else item.name
    return stem if to == "peft" else f"{stem}.safetensors"
