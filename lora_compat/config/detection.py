"""The verdict of dialect detection (:func:`lora_compat.config.detect.detect_document`), in a module of its own so
the dialect readers that receive it do not import the detector that imports them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Detection:
    """What a file is: dialect id, era, GUI tab, the reasons for the verdict, and whether it trains.

    ``training`` is False for files that are recognised but are not training configs (kohya GUI settings
    TOML "K-set", LECO prompts, caption metadata JSON, Derrian block-weight presets "A-BW" ...); then
    ``what`` says what the file is, for the refusal message.
    """

    dialect: str | None
    era: str | None = None
    tab: str | None = None
    reasons: list[str] = field(default_factory=list)
    training: bool = True
    what: str | None = None
