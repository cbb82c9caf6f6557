"""LC207 keep-tokens-with-separator: keep_tokens is ignored for captions that contain keep_tokens_separator."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, subset_scopes
from lora_compat.lint.registry import Rule, register


@register
class KeepTokensWithSeparator(Rule):
    """``keep_tokens`` is ignored for every caption that contains ``keep_tokens_separator``.

    When the separator appears in a caption, the part before it is the fixed part and ``keep_tokens`` is not used for
    that caption. Setting both usually means one of them is redundant or the captions are inconsistent.

    **Anti-pattern**

    ```toml
    keep_tokens = 2
    keep_tokens_separator = "|||"
    ```

    **Best practice**

    ```toml
    keep_tokens_separator = "|||"   # captions: "trigger, style ||| tag1, tag2"
    ```
    """

    code, name, severity = "LC207", "captions.keep_tokens_with_separator", "info"
    groups = ("captions",)
    summary = "keep_tokens is ignored for captions that contain keep_tokens_separator."
    message = "keep_tokens = {n}{where} is ignored for captions containing keep_tokens_separator {sep!r}"
    reference = "sd-scripts train_network.py NetworkTrainer.train, library/train_util.py BaseDataset.process_caption"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for sc in subset_scopes(cfg):
            n = as_number(sc.value(cfg, "keep_tokens", 0)) or 0
            sep = sc.value(cfg, "keep_tokens_separator", "")
            if n > 0 and isinstance(sep, str) and sep:
                yield self.finding(cfg, origin=sc.origin(cfg, "keep_tokens"), option="keep_tokens", n=int(n),
                                   sep=sep, where=sc.where)
