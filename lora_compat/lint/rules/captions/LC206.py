"""LC206 keep-tokens-separator-literal: keep_tokens_separator without the shuffle branch stays literally in captions."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.captions import caption_branch_runs
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import subset_scopes
from lora_compat.lint.registry import Rule, register


@register
class KeepTokensSeparatorLiteral(Rule):
    """``keep_tokens_separator`` without shuffling/tag dropout/warmup stays *in the caption text*.

    The separator (e.g. ``|||``) is only consumed when captions are split into tags; without shuffle, tag dropout or
    token warmup the caption is used as written and the separator string is tokenized literally.

    **Anti-pattern**

    ```toml
    keep_tokens_separator = "|||"
    shuffle_caption = false
    ```

    **Best practice**

    ```toml
    keep_tokens_separator = "|||"
    shuffle_caption = true
    ```
    """

    code, name, severity = "LC206", "captions.keep_tokens_separator_literal", "warning"
    groups = ("captions",)
    summary = "keep_tokens_separator without the shuffle branch stays literally in captions."
    message = ("keep_tokens_separator {sep!r}{where} is never consumed (no shuffle/tag dropout/warmup): it stays in "
               "the caption text")
    reference = "sd-scripts library/train_util.py BaseDataset.process_caption"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for sc in subset_scopes(cfg):
            sep = sc.value(cfg, "keep_tokens_separator", "")
            if isinstance(sep, str) and sep and not caption_branch_runs(cfg, sc):
                yield self.finding(cfg, origin=sc.origin(cfg, "keep_tokens_separator"),
                                   option="keep_tokens_separator", sep=sep, where=sc.where)
