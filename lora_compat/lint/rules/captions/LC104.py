"""LC104 max-token-length-invalid: max_token_length is not 75, 150 or 225."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class MaxTokenLengthInvalid(Rule):
    """``max_token_length`` must be 75 (i.e. unset), 150 or 225.

    sd-scripts cuts captions into chunks of 75 CLIP tokens: ``max_length = max_token_length + 2`` and the ids are split
    into ``(max_length - 2) / 75`` chunks. The command line accepts only 150 and 225; from a TOML 75 behaves like unset.
    Any other number breaks the chunking. A widely copied option table claimed that "captions that exceed this length
    will be skipped" — they are truncated, never skipped.

    **Anti-pattern**

    ```json
    {"max_clip_token_length": 200}
    ```

    **Best practice**

    ```json
    {"max_clip_token_length": 225}
    ```
    """

    code, name, severity = "LC104", "captions.max_token_length_invalid", "error"
    groups = ("captions",)
    summary = "max_token_length is not 75, 150 or 225."
    message = "max_token_length = {value}: sd-scripts only supports 75 (unset), 150 or 225 tokens"
    reference = ("sd-scripts library/train_util.py add_training_arguments, library/strategy_base.py "
                 "TokenizeStrategy._get_input_ids")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("max_token_length")
        if v is None or isinstance(v, bool):
            return
        if v not in (75, 150, 225):
            yield self.finding(cfg, option="max_token_length", value=v)
