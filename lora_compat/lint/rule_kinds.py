"""Kinds of rule that share one way of checking (bases for rule classes; a rule file picks one).

- :class:`RawShapeRule`: the value of an option *as written* has a shape that betrays a misconception.
- :class:`QuirkRule`: a front-end quirk, reported from the reader's note when there is one, else detected.
- :class:`NoteRule`: a rule that only reports reader notes (``note_codes``); its docstring explains them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from lora_compat.lint.query import raw_as_written
from lora_compat.lint.registry import Rule

if TYPE_CHECKING:
    from lora_compat.config.model import CanonicalConfig
    from lora_compat.lint.finding import Finding


class RawShapeRule(Rule):
    """The raw value of ``option`` (or a ``legacy`` key) has a type that matches a misconception."""

    option: str = ""
    legacy: tuple[str, ...] = ()

    def shaped(self, v: object) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        raw = raw_as_written(cfg, self.option, *self.legacy)
        if raw is not None and self.shaped(raw.value):
            yield self.finding(cfg, origin=raw.origin, option=self.option, value=raw.value)


class QuirkRule(Rule):
    """A front-end quirk: reported from the reader's Note when present, else detected from raw keys."""

    def detect(self, cfg: CanonicalConfig) -> Iterable[Finding]:  # pragma: no cover - abstract
        raise NotImplementedError

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        notes = self.claimed_notes(cfg)
        if notes:
            for n in notes:
                yield self.finding(cfg, origin=n.origin, detail=n.message, note=n.code)
            return
        yield from self.detect(cfg)


class NoteRule(Rule):
    """Reports the reader notes listed in ``note_codes`` (through :meth:`Rule.run`); nothing else to detect."""

    message = "{detail} [{note}]"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        return ()
