"""LC313 caption-tag-dropout-high: caption_tag_dropout_rate >= 0.5: it drops that share of tags from EVERY caption."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, subset_scopes
from lora_compat.lint.registry import Rule, register


@register
class CaptionTagDropoutHigh(Rule):
    """``caption_tag_dropout_rate`` drops each *tag* independently, every step.

    A widely copied option table described it as "random dropout of the captions". Wrong: each non-kept tag is removed
    with this probability, every step; whole-caption dropout is ``caption_dropout_rate``. A rate of 0.5 removes half of
    every caption's tags all the time.

    **Anti-pattern**

    ```toml
    caption_tag_dropout_rate = 0.5
    ```

    **Best practice**

    ```toml
    caption_tag_dropout_rate = 0.1
    ```
    """

    code, name, severity = "LC313", "misconceptions.caption_tag_dropout_high", "warning"
    groups = ("misconceptions", "captions")
    summary = "caption_tag_dropout_rate >= 0.5: it drops that share of tags from EVERY caption."
    message = ("caption_tag_dropout_rate = {v:g}{where} removes about {pct:.0f}% of the tags of every caption at "
               "every step")
    reference = "sd-scripts library/train_util.py BaseDataset.process_caption"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for sc in subset_scopes(cfg):
            v = as_number(sc.value(cfg, "caption_tag_dropout_rate", 0)) or 0
            if v >= 0.5:
                yield self.finding(cfg, origin=sc.origin(cfg, "caption_tag_dropout_rate"),
                                   option="caption_tag_dropout_rate", v=v, pct=v * 100, where=sc.where)
