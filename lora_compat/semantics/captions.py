"""Caption processing: sd-scripts' ``BaseDataset.process_caption`` (library/train_util.py).

Python's ``random`` is consumed in sd-scripts' order, so ``random.seed(s)`` before the call gives
sd-scripts' result (golden/captions.json)."""

from __future__ import annotations

import math
import random as _random_module
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol


class RandomLike(Protocol):
    """The part of :mod:`random` that caption processing uses (the module itself or a ``random.Random``)."""

    def random(self) -> float: ...
    def shuffle(self, x: list[Any]) -> None: ...
    def choice(self, seq: Sequence[Any]) -> Any: ...


@dataclass(frozen=True)
class CaptionParams:
    """The subset parameters :func:`process_caption` reads, with sd-scripts' ``BaseSubset`` defaults.

    Names are sd-scripts' dataset-config keys. ``token_warmup_step`` may be a ratio (< 1) of
    ``max_train_steps``, exactly as in sd-scripts.
    """

    shuffle_caption: bool = False
    caption_separator: str = ","
    keep_tokens: int = 0
    keep_tokens_separator: str | None = ""
    secondary_separator: str | None = None
    enable_wildcard: bool = False
    caption_dropout_rate: float = 0.0
    caption_dropout_every_n_epochs: int = 0
    caption_tag_dropout_rate: float = 0.0
    caption_prefix: str | None = None
    caption_suffix: str | None = None
    token_warmup_min: int = 1
    token_warmup_step: float = 0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> CaptionParams:
        """Build from a dict of dataset-config keys; keys that are not caption parameters are ignored,
        and ``None`` values take the default (as sd-scripts' config blueprint does)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names and v is not None})

    @property
    def uses_token_block(self) -> bool:
        """True when sd-scripts re-splits and re-joins the tags (shuffle, warmup or tag dropout set).

        Only then do ``keep_tokens`` / ``keep_tokens_separator`` have an effect."""
        return bool(self.shuffle_caption or self.token_warmup_step > 0 or self.caption_tag_dropout_rate > 0)


def effective_token_warmup_step(token_warmup_step: float, max_train_steps: int) -> int | float:
    """``token_warmup_step`` as sd-scripts uses it: a value < 1 is a ratio of ``max_train_steps``
    (``floor(ratio * max_train_steps)``); other values are step counts."""
    if token_warmup_step < 1:
        return math.floor(token_warmup_step * max_train_steps)
    return token_warmup_step


_WILDCARD = re.compile(r"\{([^}]+)\}")


def _expand_wildcards(caption: str, rng: RandomLike) -> str:
    # `{{` / `}}` are literal braces: hide them behind placeholders that cannot occur in the caption.
    open_mark, close_mark = "\u2985", "\u2986"
    while open_mark in caption or close_mark in caption:
        open_mark += "\u2985"
        close_mark += "\u2986"
    caption = caption.replace("{{", open_mark).replace("}}", close_mark)
    caption = _WILDCARD.sub(lambda m: rng.choice(m.group(1).split("|")), caption)
    return caption.replace(open_mark, "{").replace(close_mark, "}")


def process_caption(
    caption: str,
    params: CaptionParams | Mapping[str, Any],
    *,
    epoch: int,
    step: int,
    max_train_steps: int,
    rng: RandomLike | None = None,
) -> str:
    """Apply sd-scripts' per-sample caption processing (``BaseDataset.process_caption``).

    ``epoch`` is the dataset's ``current_epoch`` (1-based in training, 0 for the lagging first batch of a
    worker, see the reference §4.4.4), ``step`` its ``current_step`` (the optimizer step), and
    ``max_train_steps`` resolves a ratio ``token_warmup_step``. ``rng`` defaults to the global
    :mod:`random` module; draws happen in sd-scripts' order (caption dropout, line choice, wildcards,
    shuffle, tag dropout), so seeding it the same way gives the same caption.
    """
    p = params if isinstance(params, CaptionParams) else CaptionParams.from_mapping(params)
    r: RandomLike = rng if rng is not None else _random_module

    if p.caption_prefix:
        caption = p.caption_prefix + " " + caption
    if p.caption_suffix:
        caption = caption + " " + p.caption_suffix

    # Whole-caption dropout: the rate draws a random number only when it is > 0 (consumes the RNG).
    drop = p.caption_dropout_rate > 0 and r.random() < p.caption_dropout_rate
    drop = drop or (p.caption_dropout_every_n_epochs > 0 and epoch % p.caption_dropout_every_n_epochs == 0)
    if drop:
        return ""

    if p.enable_wildcard:
        if "\n" in caption:
            caption = r.choice(caption.split("\n"))
        caption = _expand_wildcards(caption, r)
    else:
        caption = caption.split("\n")[0]

    if p.uses_token_block:
        sep = p.caption_separator
        fixed: list[str] = []
        flex: list[str] = []
        fixed_suffix: list[str] = []
        kts = p.keep_tokens_separator
        if kts and kts in caption:
            fixed_part, flex_part = caption.split(kts, 1)
            if kts in flex_part:
                flex_part, suffix_part = flex_part.split(kts, 1)
                fixed_suffix = [t.strip() for t in suffix_part.split(sep) if t.strip()]
            fixed = [t.strip() for t in fixed_part.split(sep) if t.strip()]
            flex = [t.strip() for t in flex_part.split(sep) if t.strip()]
        else:
            # Empty tags are kept on this path (sd-scripts does not filter them here).
            tokens = [t.strip() for t in caption.strip().split(sep)]
            flex = tokens[:]
            if p.keep_tokens > 0:
                fixed = tokens[: p.keep_tokens]
                flex = tokens[p.keep_tokens :]

        warmup = effective_token_warmup_step(p.token_warmup_step, max_train_steps)
        if warmup and step < warmup:
            n = math.floor(step * ((len(flex) - p.token_warmup_min) / warmup)) + p.token_warmup_min
            flex = flex[:n]

        if p.shuffle_caption:
            r.shuffle(flex)
        if p.caption_tag_dropout_rate > 0:
            flex = [t for t in flex if r.random() >= p.caption_tag_dropout_rate]

        # The joiner is always ", " whatever caption_separator is (sd-scripts behaviour).
        caption = ", ".join(fixed + flex + fixed_suffix)

    if p.secondary_separator:
        caption = caption.replace(p.secondary_separator, p.caption_separator)
    return caption
