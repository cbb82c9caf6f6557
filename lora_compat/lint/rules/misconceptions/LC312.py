"""LC312 shuffle-without-keep-tokens."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, subset_scopes, truthy
from lora_compat.lint.registry import Rule, register


@register
class ShuffleWithoutKeepTokens(Rule):
    """``shuffle_caption`` shuffles the *tags inside each caption* — including your trigger word.

    A widely copied option table says: "shuffle_captions — whether the training data should be shuffled between epochs".
    Wrong: the data order is always shuffled; this option shuffles the comma-separated tags of every caption each step.
    Without ``keep_tokens`` (or ``keep_tokens_separator``) the trigger word moves too, which weakens its binding.

    **Anti-pattern**

    ```json
    {"shuffle_captions": true, "keep_tokens": 0}
    ```

    **Best practice**

    ```json
    {"shuffle_captions": true, "keep_tokens": 1}
    ```
    """

    code, name, severity = "LC312", "misconceptions.shuffle_without_keep_tokens", "info"
    groups = ("misconceptions", "captions")
    summary = "shuffle_caption shuffles tags within captions (trigger word too) when keep_tokens is 0."
    message = ("shuffle_caption{where} shuffles the tags of each caption (the first tag too): set keep_tokens to pin "
               "a trigger word")
    reference = "sd-scripts library/train_util.py BaseDataset.process_caption"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.is_sdxl and truthy(cfg.get("cache_text_encoder_outputs")):
            return
        for sc in subset_scopes(cfg):
            if (truthy(sc.value(cfg, "shuffle_caption", False))
                    and not (as_number(sc.value(cfg, "keep_tokens", 0)) or 0)
                    and not sc.value(cfg, "keep_tokens_separator")):
                yield self.finding(cfg, origin=sc.origin(cfg, "shuffle_caption"), option="shuffle_caption",
                                   where=sc.where)
