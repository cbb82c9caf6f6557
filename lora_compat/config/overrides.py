"""Command-line overrides of a config (``train`` / ``plan`` ``--set KEY=VALUE``), applied with provenance."""

from __future__ import annotations

from typing import Any

from lora_compat.config.model import CanonicalConfig
from lora_compat.errors import UserError


def parse_set(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``--set key=value`` pairs -> {option: value}; values are TOML literals (1, 0.5, true, "x"), else strings.

    Only known sd-scripts option names are accepted (the schema lists them).
    """
    from lora_compat.config.options import is_option, spec
    from lora_compat.tomlparse import tomllib

    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        key = key.strip().lstrip("-")
        if not is_option(key) and key != "sdxl":
            raise UserError(f"--set {key}: not an sd-scripts option (see lora-compat explain)")
        types = (spec(key) or {}).get("type")
        if types == "string" or (isinstance(types, list) and types and types[0] == "string"):
            value: Any = raw  # e.g. resolution "512,768": sd-scripts reads it as a string
        else:
            try:
                value = tomllib.loads(f"v = {raw}")["v"]
            except tomllib.TOMLDecodeError:
                value = raw
        out[key] = value
    return out


def apply_overrides(cfg: CanonicalConfig, values: dict[str, Any]) -> None:
    """Set command-line overrides on ``cfg`` with provenance naming the flag; re-validate them."""
    from lora_compat.config.model import Origin, Provenance
    from lora_compat.config.validate import validate_options

    for key, value in values.items():
        cfg.set(key, value, Provenance("kept", (Origin("<command line>", f"--set {key}", raw=value),)))

    for iv in validate_options(cfg):
        if iv.option in values:
            raise UserError(f"--set {iv.option}: {iv.reason}")
