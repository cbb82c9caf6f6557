"""LC205 keep-tokens-no-effect: keep_tokens without shuffle_caption, tag dropout or token warmup has no effect."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.captions import caption_branch_runs
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, subset_scopes, truthy
from lora_compat.lint.registry import Rule, register


@register
class KeepTokensNoEffect(Rule):
    """``keep_tokens`` does nothing without caption shuffling, tag dropout or token warmup.

    ``keep_tokens`` protects the first N comma-separated *tags* from shuffling and tag dropout. The caption is only
    split into tags when ``shuffle_caption``, ``caption_tag_dropout_rate > 0`` or ``token_warmup_step > 0`` is set;
    otherwise it is used verbatim and ``keep_tokens`` has no effect.

    **Anti-pattern**

    ```toml
    keep_tokens = 1
    shuffle_caption = false
    ```

    **Best practice**

    ```toml
    keep_tokens = 1
    shuffle_caption = true
    ```
    """

    code, name, severity = "LC205", "captions.keep_tokens_no_effect", "warning"
    groups = ("captions",)
    summary = "keep_tokens without shuffle_caption, tag dropout or token warmup has no effect."
    message = ("keep_tokens = {n}{where} has no effect: no shuffle_caption, caption_tag_dropout_rate or "
               "token_warmup_step")
    reference = "sd-scripts train_network.py NetworkTrainer.train, library/train_util.py BaseDataset.process_caption"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if truthy(cfg.get("cache_text_encoder_outputs")) and cfg.is_sdxl:
            return   # captions are not processed at all (LC212)
        for sc in subset_scopes(cfg):
            n = as_number(sc.value(cfg, "keep_tokens", 0)) or 0
            if n > 0 and not caption_branch_runs(cfg, sc):
                yield self.finding(cfg, origin=sc.origin(cfg, "keep_tokens"), option="keep_tokens",
                                   n=int(n), where=sc.where)
