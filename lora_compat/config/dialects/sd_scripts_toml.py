"""sd-scripts ``--config_file`` TOML (reference sd-scripts-reference.md §2), incl. K-gen files.

sd-scripts flattens sections one level (later sections win), keeps values exactly as typed in the TOML
(no argparse conversion, no choices check), accepts unknown keys silently, and lets the command line
override the file. The kohya_ss GUI (>= 2024-04-14) writes such files at train time ("K-gen") with a
few leftover GUI keys.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from lora_compat.config.document import Document, join_key
from lora_compat.config.model import (
    DERIVED,
    KEPT,
    CanonicalConfig,
    FrontendOnlyKey,
    Note,
    Origin,
    Provenance,
    Setting,
    UnknownKey,
)

if TYPE_CHECKING:
    from lora_compat.config.detection import Detection

# Keys the kohya_ss GUI writes into its generated TOML that sd-scripts ignores (legacy-dialects.md §1 step 4).
K_GEN_LEFTOVERS = {
    "epoch": "kohya_ss GUI field (number of epochs used to compute max_train_steps); sd-scripts ignores it",
    "noise_offset_type": "kohya_ss GUI selector (Original/Multires); sd-scripts ignores it",
}


def flatten_config_toml(data: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    """sd-scripts' one-level flattening: key -> (value, key path as written). Later sections win."""
    flat: dict[str, tuple[Any, str]] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            for sub, subval in value.items():
                flat.pop(sub, None)  # re-insert so dict order follows "last one wins"
                flat[sub] = (subval, join_key(key, sub))
        else:
            flat.pop(key, None)
            flat[key] = (value, key)
    return flat


def read(doc: Document, detection: Detection) -> CanonicalConfig:
    """Normalize an sd-scripts ``--config_file`` TOML into the canonical model."""
    cfg = CanonicalConfig(dialect="sd-scripts-toml", source=doc.path, era=detection.era, tab=detection.tab,
                          files=[doc.path])
    apply_config_toml(cfg, doc, k_gen=detection.era == "K-gen")
    apply_script_comment(cfg, doc)
    complete_training_config(cfg, doc)
    return cfg


# A --config_file cannot say which script runs it; lora-compat's writer records it in a comment.
_SCRIPT_COMMENT = re.compile(r'^#\s*lora-compat:\s*script\s*=\s*"(?P<script>[\w.-]+)"\s*$', re.M)


def apply_script_comment(cfg: CanonicalConfig, doc: Document) -> None:
    """Set the pseudo-option ``sdxl`` from a ``# lora-compat: script = "sdxl_train_network.py"`` comment."""
    m = _SCRIPT_COMMENT.search(doc.text)
    if not m or m.group("script") != "sdxl_train_network.py":  # train_network.py is the default (sdxl unset)
        return
    line = doc.text.count("\n", 0, m.start()) + 1
    origin = Origin(doc.path, "# lora-compat: script", line, 1, m.group("script"))
    cfg.options["sdxl"] = Setting(True,
                                  Provenance(DERIVED, (origin,), "script sdxl_train_network.py named in a comment"))


def complete_training_config(cfg: CanonicalConfig, doc: Document) -> None:
    """Load the referenced dataset config, else derive datasets from the kohya image folders.

    ``doc.meta["resolve_dataset"]`` (default False): a missing dataset config is an error, else a Note.
    """
    import os

    base_dir = os.path.dirname(os.path.abspath(doc.path))
    dataset_config = cfg.get("dataset_config")
    if dataset_config:
        from lora_compat.config.dialects.dataset_toml import load_dataset_reference

        load_dataset_reference(cfg, dataset_config, cfg.locate("dataset_config"), base_dir=base_dir,
                               required=doc.meta.get("resolve_dataset", False))
    else:
        from lora_compat.config.kohya_folder import apply_kohya_folder

        apply_kohya_folder(cfg, base_dir=base_dir)


def apply_config_toml(cfg: CanonicalConfig, doc: Document, *, k_gen: bool = False) -> None:
    """Put the file's options into ``cfg`` (values unconverted, as sd-scripts keeps them)."""
    from lora_compat.config import options

    for key, (value, path) in flatten_config_toml(doc.data).items():
        origin = doc.origin(path, value)
        if k_gen and key in K_GEN_LEFTOVERS:
            cfg.frontend_only.append(FrontendOnlyKey(key, value, origin, K_GEN_LEFTOVERS[key]))
            continue
        spec = options.spec(key)
        if spec is None or spec.get("x-pseudo"):
            cfg.unknown_keys.append(UnknownKey(
                key, value, origin,
                "not an sd-scripts option: sd-scripts accepts unknown --config_file keys silently and ignores them"))
            continue
        if isinstance(value, dict):
            # [a.b] sub-tables survive flattening as dict values, which no sd-scripts option accepts
            cfg.notes.append(Note("config-file-nested-table",
                                  f"[{path}] is a nested table; sd-scripts flattens only one level, so "
                                  f"'{key}' receives a dict", origin))
        cfg.options[key] = Setting(value, Provenance(KEPT, (origin,)))
        if key == "text_encoder_lr" and isinstance(value, list) and len(value) > 1:
            cfg.notes.append(Note("text-encoder-lr-list",
                                  "text_encoder_lr is a list; sd-scripts' networks.lora uses only the first value "
                                  "(networks.lora_flux: one per text encoder, [CLIP-L, T5-XXL])",
                                  origin, {"values": value}))
