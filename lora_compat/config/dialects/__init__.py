"""Dialect ids and the lazy reader registry.

A reader is ``read(doc: Document, detection: Detection) -> CanonicalConfig``. Registry values are
``"module:function"`` strings relative to this package so nothing is imported until a file of that
dialect is read (keeps ``show`` start-up fast).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lora_compat.config.detection import Detection
    from lora_compat.config.document import Document
    from lora_compat.config.model import CanonicalConfig

KOHYA_GUI = "kohya-gui"                    # kohya_ss GUI preset/config JSON, eras K0..K5
DERRIAN_ARGSTORE = "derrian-argstore"      # Derrian LoRA_Easy_Training_Scripts ArgStore JSON, eras A1/A2/XTI
DERRIAN_TOML = "derrian-toml"              # Derrian UI TOML, eras U1/U2
SD_SCRIPTS_TOML = "sd-scripts-toml"        # an sd-scripts --config_file TOML (era "K-gen" when GUI-written)
SD_SCRIPTS_DATASET = "sd-scripts-dataset"  # an sd-scripts --dataset_config TOML
COMMAND_LINE = "command-line"              # a shell/batch script or text with the training command line
NATIVE = "native"                          # lora-compat's own TOML

DIALECTS: tuple[str, ...] = (
    KOHYA_GUI, DERRIAN_ARGSTORE, DERRIAN_TOML, SD_SCRIPTS_TOML, SD_SCRIPTS_DATASET, COMMAND_LINE, NATIVE,
)

READERS: dict[str, str] = {
    KOHYA_GUI: "kohya_gui:read",
    DERRIAN_ARGSTORE: "derrian_argstore:read",
    DERRIAN_TOML: "derrian_toml:read",
    NATIVE: "native:read",
    SD_SCRIPTS_TOML: "sd_scripts_toml:read",
    SD_SCRIPTS_DATASET: "dataset_toml:read",
    COMMAND_LINE: "command_line:read",
}


def reader(dialect: str) -> Callable[[Document, Detection], CanonicalConfig]:
    """Import and return the reader function of ``dialect``.

    Raises ``KeyError`` for an unknown id.
    """
    target = READERS[dialect]
    module, func = target.split(":")
    mod = importlib.import_module(f"{__name__}.{module}")
    return getattr(mod, func)
